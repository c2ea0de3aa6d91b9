// Launches workerd processes for the host. Each kind of process is defined through Miniflare
// (host/engine/miniflare-adapter.ts), which builds its configuration once; the configuration is
// cached (host/engine/workerd-config-cache.ts) and every process is spawned straight from it
// (host/engine/workerd-spawn.ts). Miniflare is loaded only to build a configuration the cache does
// not hold, on a thread of its own (host/engine/workerd-launch-thread.ts): importing and running it
// takes about a second of synchronous work that would otherwise stall the host's event loop.
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { builtHostModule, templatePath } from "../package-files.js";
import { cellDefinition } from "./cell-definition.js";
import { forgetConfig, resolveConfig, type BuiltConfig, type ConfigRequest, type StaticWorkerdOptions } from "./workerd-config-cache.js";
import { spawnWorkerd, type WorkerdHandle } from "./workerd-spawn.js";

export type { StaticWorkerdOptions } from "./workerd-config-cache.js";
export type { WorkerdExit, WorkerdHandle } from "./workerd-spawn.js";

export const LAUNCH_THREAD_ROLE = "secure-exec-workerd-config-builder";

export type ToBuildThread = { type: "build"; id: number; request: ConfigRequest };

export type FromBuildThread =
  | { type: "built"; id: number; built: BuiltConfig }
  | { type: "failed"; id: number; error: string };

/**
 * Pids of every workerd process launched and not yet gone: killed if the host exits first
 * (the one such hook; setpriv's death signal covers hosts that die without running it).
 */
const knownPids = new Set<number>();
process.once("exit", () => {
  for (const pid of [...knownPids]) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** The thread Miniflare runs on while it builds configurations; it ends when they are built. */
class BuildThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (built: BuiltConfig) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private gone = false;

  constructor(script: URL, private readonly onGone: (thread: BuildThread) => void) {
    this.worker = new Worker(script, { execArgv: [], workerData: { role: LAUNCH_THREAD_ROLE } });
    this.worker.on("message", (message: FromBuildThread) => this.receive(message));
    const stop = (error: unknown): void => {
      this.markGone();
      const reason = new Error(`secure-exec: the workerd configuration thread stopped (${error instanceof Error ? error.message : String(error)})`);
      for (const { reject } of this.pending.values()) reject(reason);
      this.pending.clear();
    };
    this.worker.on("error", stop);
    this.worker.on("exit", (code) => stop(new Error(`exit code ${code}`)));
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    this.onGone(this);
  }

  build(request: ConfigRequest): Promise<BuiltConfig> {
    const id = this.nextId++;
    return new Promise<BuiltConfig>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: "build", id, request } satisfies ToBuildThread);
    });
  }

  private receive(message: FromBuildThread): void {
    const waiting = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (message.type === "built") waiting?.resolve({ plan: message.built.plan, config: new Uint8Array(message.built.config) });
    else waiting?.reject(new Error(message.error));
    // Builds are rare (a new version, new options): Miniflare's memory goes with the thread.
    if (this.pending.size === 0) {
      this.markGone();
      void this.worker.terminate();
    }
  }
}

let buildThread: BuildThread | undefined;

/** Miniflare builds the configuration: on its thread, or here when running from source. */
function buildConfig(request: ConfigRequest): Promise<BuiltConfig> {
  const script = builtHostModule("engine/workerd-launch-thread.js");
  if (!script) return import("./miniflare-adapter.js").then((adapter) => adapter.buildWorkerdConfig(request));
  buildThread ??= new BuildThread(script, (stopped) => {
    if (buildThread === stopped) buildThread = undefined;
  });
  return buildThread.build(request);
}

let cellRequest: ConfigRequest | undefined;

/** The sandbox cell with its sources: part of the cache key, so edited templates rebuild. */
function cellConfigRequest(): ConfigRequest {
  cellRequest ??= {
    kind: "cell",
    supervisorSource: readFileSync(templatePath(cellDefinition.supervisor.mainModule), "utf8"),
    guestTemplates: Object.fromEntries(cellDefinition.guestTemplates.map((name) => [name, readFileSync(templatePath(name), "utf8")])),
    v8Flags: [...cellDefinition.v8Flags],
  };
  return cellRequest;
}

async function launch(request: ConfigRequest, hostAddress?: string): Promise<WorkerdHandle> {
  const started = performance.now();
  let config = await resolveConfig(request, buildConfig);
  const configured = performance.now();
  const spawnTracked = async (built: BuiltConfig): Promise<WorkerdHandle> => {
    let spawnedPid: number | undefined;
    try {
      return await spawnWorkerd(built, {
        hostAddress,
        onPid: (pid) => {
          spawnedPid = pid;
          knownPids.add(pid);
        },
      });
    } catch (error) {
      // spawnWorkerd killed it.
      if (spawnedPid !== undefined) knownPids.delete(spawnedPid);
      throw error;
    }
  };
  let handle: WorkerdHandle;
  try {
    handle = await spawnTracked(config.built);
  } catch (error) {
    // A cached configuration that no longer starts (say, a workerd swapped in place) is
    // rebuilt once; a fresh one that fails is a real failure.
    if (config.source === "built") throw error;
    forgetConfig(config.key);
    config = await resolveConfig(request, buildConfig);
    handle = await spawnTracked(config.built);
  }
  const pid = handle.pid;
  void handle.exited.then(() => knownPids.delete(pid));
  handle.bootPhases.push(
    // "workerd-config-built" is the only phase in which Miniflare was loaded.
    { phase: `workerd-config-${config.source}`, durationMs: configured - started },
    { phase: "workerd-spawn", durationMs: performance.now() - configured },
  );
  return handle;
}

/** A workerd process running one sandbox cell; its HOST binding reaches `hostAddress`. */
export function launchWorkerd(hostAddress: string): Promise<WorkerdHandle> {
  return launch(cellConfigRequest(), hostAddress);
}

/** A workerd process running one static worker (the resident runner). */
export function launchStaticWorkerd(options: StaticWorkerdOptions): Promise<WorkerdHandle> {
  return launch({ kind: "static", options });
}
