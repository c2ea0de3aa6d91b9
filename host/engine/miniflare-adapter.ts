// The only module that talks to Miniflare: it launches one workerd process running the
// cell's supervisor and hands back its pid, direct URL and exit notice. The host calls it
// through host/engine/workerd-launcher.ts, which runs it on a thread of its own: building
// Miniflare's configuration takes ~120 ms of synchronous work per launch.
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { Miniflare, type WorkerOptions } from "miniflare";
import { cellDefinition } from "./cell-definition.js";
import { templatePath } from "../package-files.js";
import { PID_MARKER } from "./launcher-script.js";

interface CellSources {
  supervisorSource: string;
  /** Template file name → source. */
  guestTemplates: Record<string, string>;
}

let cachedSources: CellSources | undefined;

function loadCellSources(): CellSources {
  cachedSources ??= {
    supervisorSource: readFileSync(templatePath("supervisor.js"), "utf8"),
    guestTemplates: Object.fromEntries(
      cellDefinition.guestTemplates.map((name) => [name, readFileSync(templatePath(name), "utf8")]),
    ),
  };
  return cachedSources;
}

export interface WorkerdExit {
  /** Last lines workerd wrote to stderr, for telling an OOM from other deaths. */
  stderrTail: string;
}

export interface WorkerdHandle {
  pid: number;
  url: URL;
  exited: Promise<WorkerdExit>;
  /** SIGKILL the process and release Miniflare's resources. */
  kill(): Promise<void>;
}

const STDERR_TAIL_BYTES = 8192;

/**
 * Starts one workerd process through Miniflare with `workers`, and answers once `workerName`
 * is reachable on its direct socket: pid (from the launcher), exit notice with the stderr
 * tail, and a kill that also releases Miniflare.
 */
async function startWorkerd(workers: WorkerOptions[], workerName: string, launcher: string, onPid?: (pid: number) => void): Promise<WorkerdHandle> {
  let resolvePid: (pid: number) => void = () => {};
  const pidKnown = new Promise<number>((resolve) => (resolvePid = resolve));
  let stderrTail = "";
  let pidForLogs = 0;
  let resolveExit: (exit: WorkerdExit) => void = () => {};
  const exited = new Promise<WorkerdExit>((resolve) => (resolveExit = resolve));

  process.env.MINIFLARE_WORKERD_PATH = launcher;
  const miniflare = new Miniflare({
    log: undefined,
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      stdout.on("data", (chunk: Buffer) => {
        const match = new RegExp(`${PID_MARKER}(\\d+)`).exec(chunk.toString());
        if (match) {
          pidForLogs = Number(match[1]);
          onPid?.(pidForLogs);
          resolvePid(pidForLogs);
        }
        else if (process.env.SECURE_EXEC_DEBUG) process.stderr.write(`[workerd ${pidForLogs}] ${chunk.toString()}`);
      });
      stderr.on("data", (chunk: Buffer) => {
        stderrTail = (stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
        if (process.env.SECURE_EXEC_DEBUG) process.stderr.write(`[workerd ${pidForLogs}] ${chunk.toString()}`);
      });
      stderr.on("close", () => resolveExit({ stderrTail }));
      stderr.on("end", () => resolveExit({ stderrTail }));
    },
    workers,
  });
  try {
    await miniflare.ready;
    const url = await miniflare.unsafeGetDirectURL(workerName);
    const pid = await pidKnown;
    let killed: Promise<void> | undefined;
    return {
      pid,
      url,
      exited,
      kill() {
        killed ??= (async () => {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
          // SIGKILL is final: report the exit now (Miniflare's dispose also detaches the stdio
          // streams before they report the end).
          resolveExit({ stderrTail });
          await miniflare.dispose().catch(() => {});
        })();
        return killed;
      },
    };
  } catch (error) {
    await miniflare.dispose().catch(() => {});
    throw error;
  }
}

/**
 * `hostAddress` is the loopback address the cell's HOST binding reaches (host-router.ts);
 * `launcher` the script Miniflare runs as workerd (`launcherScriptSource`).
 */
export async function launchWorkerd(hostAddress: string, launcher: string, onPid?: (pid: number) => void): Promise<WorkerdHandle> {
  const { supervisorSource, guestTemplates } = loadCellSources();
  return startWorkerd(
    [
      {
        name: cellDefinition.supervisor.name,
        compatibilityDate: cellDefinition.compatibilityDate,
        // Module names carry no host path into stack traces.
        modulesRoot: "/",
        modules: [
          { type: "ESModule", path: `/${cellDefinition.supervisor.mainModule}`, contents: supervisorSource },
          ...Object.entries(guestTemplates).map(([name, contents]) => ({
            type: "Text" as const,
            path: `/${name}`,
            contents,
          })),
        ],
        workerLoaders: { [cellDefinition.bindings.loader]: {} },
        serviceBindings: {
          [cellDefinition.bindings.host]: { external: { address: hostAddress, http: {} } },
          // Proxy style: the request line carries the guest's full URL.
          [cellDefinition.bindings.egress]: { external: { address: hostAddress, http: { style: 1 } } },
        },
        unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
      },
    ],
    cellDefinition.supervisor.name,
    launcher,
    onPid,
  );
}

/** A static worker of its own, in a workerd process of its own (the resident runner). */
export interface StaticWorkerdOptions {
  /** ES module source of the worker's main module. */
  mainModule: { name: string; source: string };
  /** Further modules, imported as text (`import text from "../name"`). */
  textModules?: Record<string, string>;
  compatibilityDate: string;
  compatibilityFlags: string[];
  /** Name of an `UnsafeEval` binding given to the worker (`eval`, `newFunction`, `newAsyncFunction`). */
  unsafeEvalBinding?: string;
  /**
   * What the worker's `fetch()` and sockets reach. Workers Miniflare runs default to the
   * internet, so the outbound goes to a worker in the same process that throws this message.
   */
  denyNetworkMessage: string;
}

const STATIC_WORKER_NAME = "resident";
const REFUSE_WORKER_NAME = "no-network";

/**
 * Launches a workerd process running one static worker (no Worker Loader, no host binding),
 * reachable on a direct socket. Same pid reporting, stderr tail and kill as `launchWorkerd`.
 */
export async function launchStaticWorkerd(options: StaticWorkerdOptions, launcher: string, onPid?: (pid: number) => void): Promise<WorkerdHandle> {
  const refuseSource = `export default { fetch() { throw new Error(${JSON.stringify(options.denyNetworkMessage)}); } };`;
  return startWorkerd(
    [
      {
        name: STATIC_WORKER_NAME,
        compatibilityDate: options.compatibilityDate,
        compatibilityFlags: options.compatibilityFlags,
        // Module names carry no host path into stack traces.
        modulesRoot: "/",
        modules: [
          { type: "ESModule", path: `/${options.mainModule.name}`, contents: options.mainModule.source },
          ...Object.entries(options.textModules ?? {}).map(([name, contents]) => ({
            type: "Text" as const,
            path: `/${name}`,
            contents,
          })),
        ],
        ...(options.unsafeEvalBinding ? { unsafeEvalBinding: options.unsafeEvalBinding } : {}),
        outboundService: REFUSE_WORKER_NAME,
        unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
      },
      {
        name: REFUSE_WORKER_NAME,
        compatibilityDate: options.compatibilityDate,
        modules: [{ type: "ESModule", path: "/no-network.js", contents: refuseSource }],
        modulesRoot: "/",
      },
    ],
    STATIC_WORKER_NAME,
    launcher,
    onPid,
  );
}
