// The script Miniflare runs in place of workerd: it reports workerd's pid, then execs it
// (same pid), through setpriv so that workerd dies with the thread that launched it. It is
// needed only while a launch is under way: written to a temp folder of its own when a launch
// starts, and removed when none is left, and at exit, so a host leaves nothing behind.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What the script prints before the exec; the launch reads the pid from it. */
export const PID_MARKER = "secure-exec-workerd-pid ";

let folder: string | undefined;
let launchesUnderWay = 0;

function scriptSource(): string {
  const require = createRequire(import.meta.url);
  const workerdBinary: string = process.env.SECURE_EXEC_WORKERD_PATH ?? (require("workerd") as { default: string }).default;
  const quoted = (path: string) => `'${path.replace(/'/g, "'\\''")}'`;
  // setpriv (util-linux) makes the kernel SIGKILL workerd when the thread that launched it
  // dies, however the host ends (SIGTERM, SIGKILL, crash); both execs keep the pid.
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path));
  const exec = setpriv ? `exec ${quoted(setpriv)} --pdeathsig KILL -- ${quoted(workerdBinary)} "$@"` : `exec ${quoted(workerdBinary)} "$@"`;
  return `#!/bin/sh\necho "${PID_MARKER}$$"\n${exec}\n`;
}

function removeFolder(): void {
  if (folder === undefined) return;
  rmSync(folder, { recursive: true, force: true });
  folder = undefined;
}

process.once("exit", removeFolder);

/** Path of the launcher script for one launch; pair with `releaseLauncherScript` once it settled. */
export function acquireLauncherScript(): string {
  launchesUnderWay += 1;
  folder ??= mkdtempSync(join(tmpdir(), "secure-exec-"));
  const script = join(folder, "workerd-launcher.sh");
  if (!existsSync(script)) {
    writeFileSync(script, scriptSource());
    chmodSync(script, 0o755);
  }
  return script;
}

/** A launch settled (workerd exec'd, or it failed): the last one removes the folder. */
export function releaseLauncherScript(): void {
  launchesUnderWay = Math.max(0, launchesUnderWay - 1);
  if (launchesUnderWay === 0) removeFolder();
}
