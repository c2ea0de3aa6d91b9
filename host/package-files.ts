// Files of the installed package found at run time: the templates that run inside workerd
// (worker-templates/) and the compiled host modules that worker threads start from. The host
// runs from source (tests) or from the build (dist/host/), so both are found from the
// package root rather than from this module's depth.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "worker-templates"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("secure-exec: cannot find the package root (package.json beside worker-templates/)");
    dir = parent;
  }
  return dir;
}

/** The directory holding package.json, worker-templates/ and dist/. */
export const packageRoot = findPackageRoot();

/** Absolute path of `worker-templates/<name>`. */
export function templatePath(name: string): string {
  return join(packageRoot, "worker-templates", name);
}

const found = new Map<string, URL | undefined>();

/** URL of the compiled `host/<path>` (e.g. "compile/guest-compiler-worker.js"), or undefined without a build. */
export function builtHostModule(path: string): URL | undefined {
  if (!found.has(path)) {
    const file = join(packageRoot, "dist", "host", path);
    found.set(path, existsSync(file) ? pathToFileURL(file) : undefined);
  }
  return found.get(path);
}
