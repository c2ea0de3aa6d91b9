// Starts one workerd process from a built configuration (host/engine/workerd-config-cache.ts): the
// configuration goes in on stdin, and workerd reports the port of each socket it listens
// on over a control pipe (fd 3), which is how the direct socket is found.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { workerdBinary, type BuiltConfig } from "./workerd-config-cache.js";

export interface WorkerdExit {
  /** Last lines workerd wrote to stderr, for telling an OOM from other deaths. */
  stderrTail: string;
}

export interface WorkerdHandle {
  pid: number;
  url: URL;
  exited: Promise<WorkerdExit>;
  /** SIGKILL the process; resolves once it is gone. */
  kill(): Promise<void>;
  /** How the start went, for `onBootTiming`. */
  bootPhases: { phase: string; durationMs: number }[];
}

const STDERR_TAIL_BYTES = 8192;
/** A workerd that has not listened by then is not going to. */
const LISTEN_TIMEOUT_MS = 60_000;

let setprivPath: string | null | undefined;

/**
 * setpriv (util-linux) makes the kernel SIGKILL workerd when the thread that started it dies,
 * however the host ends (SIGTERM, SIGKILL, crash); it execs workerd, so the pid is workerd's.
 */
function setpriv(): string | undefined {
  if (setprivPath === undefined) setprivPath = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path)) ?? null;
  return setprivPath ?? undefined;
}

export interface SpawnSettings {
  /** The loopback address the configuration's host services reach (host-router.ts). */
  hostAddress?: string;
  /** Called with the pid as soon as the process exists. */
  onPid?: (pid: number) => void;
}

/** Scratch directories of live processes: removed when their process closes, or at the host's exit. */
const scratchDirectories = new Set<string>();
process.once("exit", () => {
  for (const dir of scratchDirectories) rmSync(dir, { recursive: true, force: true });
});

export function spawnWorkerd({ plan, config }: BuiltConfig, settings: SpawnSettings = {}): Promise<WorkerdHandle> {
  const args = [...plan.args];
  const extra: string[] = [];
  if (plan.hostServices.length > 0) {
    if (!settings.hostAddress) return Promise.reject(new Error("secure-exec: this workerd configuration needs the host's address"));
    for (const name of plan.hostServices) extra.push(`--external-addr=${name}=${settings.hostAddress}`);
  }
  // Directories of its own (Miniflare's cache storage): nothing is shared between processes.
  const scratch = plan.diskDirectories.length > 0 ? mkdtempSync(join(tmpdir(), "secure-exec-workerd-")) : undefined;
  if (scratch) scratchDirectories.add(scratch);
  plan.diskDirectories.forEach((name, index) => {
    const dir = join(scratch!, String(index));
    mkdirSync(dir);
    extra.push(`--directory-path=${name}=${dir}`);
  });
  // Before the final "-" (the configuration on stdin).
  args.splice(args.length - 1, 0, ...extra);
  const wrapper = setpriv();
  const command = wrapper ?? workerdBinary();
  const commandArgs = wrapper ? ["--pdeathsig", "KILL", "--", workerdBinary(), ...args] : args;
  const child = spawn(command, commandArgs, {
    stdio: ["pipe", "pipe", "pipe", "pipe"],
    // workerd needs nothing from the host's environment, and gets none of its secrets.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });

  let stderrTail = "";
  const debug = Boolean(process.env.SECURE_EXEC_DEBUG);
  const exited = new Promise<WorkerdExit>((resolve) => {
    child.once("close", () => {
      if (scratch) {
        rmSync(scratch, { recursive: true, force: true });
        scratchDirectories.delete(scratch);
      }
      resolve({ stderrTail });
    });
  });
  child.stdout!.on("data", (chunk: Buffer) => {
    if (debug) process.stderr.write(`[workerd ${child.pid}] ${chunk.toString()}`);
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    if (debug) process.stderr.write(`[workerd ${child.pid}] ${chunk.toString()}`);
  });
  // A workerd that dies early closes its stdin: that shows as its exit, not as EPIPE here.
  child.stdin!.on("error", () => {});
  child.stdin!.end(config);

  let killing: Promise<void> | undefined;
  const kill = (): Promise<void> => {
    killing ??= (async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await exited;
    })();
    return killing;
  };

  return new Promise<WorkerdHandle>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void kill();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`secure-exec: workerd did not listen within ${LISTEN_TIMEOUT_MS} ms`)), LISTEN_TIMEOUT_MS);
    timer.unref();
    child.once("error", (error) => fail(new Error(`secure-exec: cannot start workerd: ${error.message}`)));
    if (child.pid !== undefined) settings.onPid?.(child.pid);
    void exited.then(({ stderrTail: tail }) =>
      fail(new Error(`secure-exec: workerd exited before it listened${tail ? `:\n${tail.trim()}` : ""}`)),
    );
    const control = createInterface({ input: child.stdio[3] as Readable });
    control.on("line", (line) => {
      let message: { event?: unknown; socket?: unknown; port?: unknown };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        return;
      }
      if (settled || message.event !== "listen" || message.socket !== plan.directSocket || typeof message.port !== "number") return;
      settled = true;
      clearTimeout(timer);
      resolve({ pid: child.pid!, url: new URL(`http://127.0.0.1:${message.port}`), exited, kill, bootPhases: [] });
    });
  });
}
