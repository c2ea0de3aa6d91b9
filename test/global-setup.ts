// Some code under test runs from the build: the CLI (as a process) and the guest compiler's
// worker thread. Compile the current sources first when they are newer than the build.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** True when some source is newer than its compiled file (or that is missing). */
function buildIsStale(): boolean {
  for (const folder of ["host", "runtime"]) {
    for (const name of readdirSync(join(root, folder), { recursive: true, encoding: "utf8" })) {
      if (!name.endsWith(".ts") || name.endsWith(".d.ts")) continue;
      const built = join(root, "dist", folder, name.replace(/\.ts$/, ".js"));
      if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(root, folder, name)).mtimeMs) return true;
    }
  }
  return false;
}

export default function setup(): void {
  if (!buildIsStale()) return;
  const build = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", root], { encoding: "utf8" });
  if (build.status !== 0 || buildIsStale()) throw new Error(`the build failed:\n${build.stdout}\n${build.stderr}`);
}
