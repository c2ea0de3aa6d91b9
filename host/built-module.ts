// Worker threads run compiled JavaScript: the host's thread entries are found beside this
// module in the build (dist/host/), or in the build when the host runs from source (tests
// build first, see test/global-setup.ts).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const found = new Map<string, URL | undefined>();

/** URL of the compiled `host/<name>` (e.g. "guest-compiler-worker.js"), or undefined without a build. */
export function builtHostModule(name: string): URL | undefined {
  if (!found.has(name)) {
    const url = [`./${name}`, `../dist/host/${name}`]
      .map((candidate) => new URL(candidate, import.meta.url))
      .find((candidate) => existsSync(fileURLToPath(candidate)));
    found.set(name, url);
  }
  return found.get(name);
}
