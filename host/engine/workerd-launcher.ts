// Launches workerd processes for the host. Miniflare runs on a thread of its own
// (host/engine/workerd-launch-thread.ts): its synchronous start (~120 ms per launch) would otherwise
// stall every runtime, heartbeat and HTTP request on the host's event loop. Handles come
// back as plain pid + URL; killing is a SIGKILL from here, then Miniflare's clean-up there.
import { SHARE_ENV, Worker } from "node:worker_threads";
import { builtHostModule } from "../package-files.js";
import { acquireLauncherScript, releaseLauncherScript } from "./launcher-script.js";
import type { StaticWorkerdOptions, WorkerdExit, WorkerdHandle } from "./miniflare-adapter.js";

export type { StaticWorkerdOptions, WorkerdExit, WorkerdHandle } from "./miniflare-adapter.js";

export const LAUNCH_THREAD_ROLE = "secure-exec-workerd-launcher";

/** `launcher`: the script Miniflare runs as workerd (host/engine/launcher-script.ts). */
export type LaunchRequest = { kind: "cell"; hostAddress: string; launcher: string } | { kind: "static"; options: StaticWorkerdOptions; launcher: string };

export type ToLaunchThread = { type: "launch"; id: number; request: LaunchRequest } | { type: "kill"; id: number };

export type FromLaunchThread =
  | { type: "pid"; id: number; pid: number }
  | { type: "launched"; id: number; pid: number; url: string }
  | { type: "failed"; id: number; error: string }
  | { type: "exited"; id: number; stderrTail: string }
  | { type: "killed"; id: number };


interface Launching {
  resolve: (handle: WorkerdHandle) => void;
  reject: (error: Error) => void;
  pid?: number;
}

interface Live {
  pid: number;
  exit: (exit: WorkerdExit) => void;
  killed?: () => void;
}

/**
 * Pids of every workerd process launched and not yet gone: killed if the host exits first
 * (the one such hook; setpriv's death signal covers hosts that die without running it).
 */
const knownPids = new Set<number>();
process.once("exit", () => {
  for (const pid of [...knownPids]) kill(pid);
});

class LaunchThread {
  private readonly worker: Worker;
  private readonly launching = new Map<number, Launching>();
  private readonly live = new Map<number, Live>();
  private nextId = 1;
  private gone = false;

  constructor(script: URL, onGone: (thread: LaunchThread) => void) {
    // SHARE_ENV: Miniflare reads settings (workerd path, debug flags) from the environment.
    this.worker = new Worker(script, { env: SHARE_ENV, execArgv: [], workerData: { role: LAUNCH_THREAD_ROLE } });
    this.worker.unref();
    this.worker.on("message", (message: FromLaunchThread) => this.receive(message));
    const gone = (error: unknown): void => {
      if (this.gone) return;
      this.gone = true;
      onGone(this);
      const reason = new Error(`secure-exec: the workerd launch thread stopped (${error instanceof Error ? error.message : String(error)})`);
      for (const launching of this.launching.values()) {
        if (launching.pid !== undefined) kill(launching.pid);
        launching.reject(reason);
      }
      this.launching.clear();
      // Their Miniflare instances are gone with the thread: the processes go too.
      for (const live of this.live.values()) {
        kill(live.pid);
        live.exit({ stderrTail: "" });
        live.killed?.();
      }
      this.live.clear();
    };
    this.worker.on("error", gone);
    this.worker.on("exit", (code) => gone(new Error(`exit code ${code}`)));
  }

  launch(request: LaunchRequest): Promise<WorkerdHandle> {
    const id = this.nextId++;
    return new Promise<WorkerdHandle>((resolve, reject) => {
      this.launching.set(id, { resolve, reject });
      this.updateRef();
      this.post({ type: "launch", id, request });
    });
  }

  private post(message: ToLaunchThread): void {
    this.worker.postMessage(message);
  }

  /** The thread keeps the host alive only while it launches or holds live processes. */
  private updateRef(): void {
    if (this.launching.size + this.live.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  private receive(message: FromLaunchThread): void {
    switch (message.type) {
      case "pid": {
        const launching = this.launching.get(message.id);
        if (!launching) return;
        launching.pid = message.pid;
        knownPids.add(message.pid);
        return;
      }
      case "failed": {
        const launching = this.launching.get(message.id);
        this.launching.delete(message.id);
        if (launching?.pid !== undefined) knownPids.delete(launching.pid);
        launching?.reject(new Error(message.error));
        this.updateRef();
        return;
      }
      case "launched": {
        const launching = this.launching.get(message.id);
        this.launching.delete(message.id);
        if (!launching) {
          kill(message.pid);
          return;
        }
        knownPids.add(message.pid);
        let resolveExit!: (exit: WorkerdExit) => void;
        const exited = new Promise<WorkerdExit>((resolve) => (resolveExit = resolve));
        const live: Live = { pid: message.pid, exit: resolveExit };
        this.live.set(message.id, live);
        let killing: Promise<void> | undefined;
        launching.resolve({
          pid: message.pid,
          url: new URL(message.url),
          exited,
          kill: () => {
            killing ??= new Promise<void>((resolve) => {
              kill(message.pid);
              live.killed = resolve;
              if (!this.live.has(message.id)) resolve();
              else this.post({ type: "kill", id: message.id });
            });
            return killing;
          },
        });
        this.updateRef();
        return;
      }
      case "exited": {
        const live = this.live.get(message.id);
        if (live) knownPids.delete(live.pid);
        live?.exit({ stderrTail: message.stderrTail });
        if (live && !live.killed) {
          this.live.delete(message.id);
          this.updateRef();
        }
        return;
      }
      case "killed": {
        const live = this.live.get(message.id);
        this.live.delete(message.id);
        live?.killed?.();
        this.updateRef();
        return;
      }
    }
  }
}

function kill(pid: number): void {
  knownPids.delete(pid);
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

let thread: LaunchThread | undefined;

type LaunchTarget = { kind: "cell"; hostAddress: string } | { kind: "static"; options: StaticWorkerdOptions };

/** The launcher script exists only while some launch needs it. */
async function launch(target: LaunchTarget): Promise<WorkerdHandle> {
  const request: LaunchRequest = { ...target, launcher: acquireLauncherScript() };
  try {
    if (!thread) {
      const script = builtHostModule("engine/workerd-launch-thread.js");
      // Without the build (running from source), launch on this thread.
      if (!script) return await launchOnThisThread(request);
      thread = new LaunchThread(script, (stopped) => {
        if (thread === stopped) thread = undefined;
      });
    }
    return await thread.launch(request);
  } finally {
    releaseLauncherScript();
  }
}

async function launchOnThisThread(request: LaunchRequest): Promise<WorkerdHandle> {
  const adapter = await import("./miniflare-adapter.js");
  let launchedPid: number | undefined;
  const onPid = (pid: number): void => {
    launchedPid = pid;
    knownPids.add(pid);
  };
  try {
    const handle = await (request.kind === "cell"
      ? adapter.launchWorkerd(request.hostAddress, request.launcher, onPid)
      : adapter.launchStaticWorkerd(request.options, request.launcher, onPid));
    void handle.exited.then(() => knownPids.delete(handle.pid));
    return handle;
  } catch (error) {
    if (launchedPid !== undefined) knownPids.delete(launchedPid);
    throw error;
  }
}

/** A workerd process running one sandbox cell; its HOST binding reaches `hostAddress`. */
export function launchWorkerd(hostAddress: string): Promise<WorkerdHandle> {
  return launch({ kind: "cell", hostAddress });
}

/** A workerd process running one static worker (the resident runner). */
export function launchStaticWorkerd(options: StaticWorkerdOptions): Promise<WorkerdHandle> {
  return launch({ kind: "static", options });
}
