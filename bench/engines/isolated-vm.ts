// Peer: isolated-vm (native addon), a new V8 isolate per run inside the host process.
// The addon must be compiled for this Node; when it is not, the peer is reported as unavailable.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type IsolatedVM from "isolated-vm";
import { collectGarbage, sleep } from "../stats.js";
import type { Workload } from "../workloads.js";
import { MIB, errorText, joinLines, parseReturned, type ColdStart, type Engine, type GuestOutput, type ResidentSession, type RunOptions, wrapWithHostGlobals } from "./engine.js";

type Ivm = typeof IsolatedVM;

const MEMORY_LIMIT_MB = 128;

export type IsolatedVmLoad = { ivm: Ivm; loadMs: number } | { reason: string };

function tryRequire(): IsolatedVmLoad {
  const require = createRequire(import.meta.url);
  const started = performance.now();
  try {
    const ivm = require("isolated-vm") as Ivm;
    // Loading can succeed while the isolate cannot start; make sure one does.
    const probe = new ivm.Isolate({ memoryLimit: 16 });
    probe.dispose();
    return { ivm, loadMs: performance.now() - started };
  } catch (error) {
    return { reason: errorText(error).split("\n")[0] ?? "cannot load" };
  }
}

/**
 * Loads isolated-vm; when that fails and `mayRebuild`, runs `npm rebuild isolated-vm` once
 * (compiles the addon: minutes) and tries again. The package's install script is denied in
 * package.json so that `npm ci` does not spend those minutes on every machine.
 */
export function loadIsolatedVm(mayRebuild: boolean, log: (line: string) => void): IsolatedVmLoad {
  const first = tryRequire();
  if ("ivm" in first) return first;
  if (!mayRebuild) return { reason: `${first.reason} (native addon not built; run with --with-isolated-vm to build it)` };
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  log(`isolated-vm does not load (${first.reason}); running "npm rebuild isolated-vm" (takes minutes)…`);
  const rebuild = spawnSync("npm", ["rebuild", "isolated-vm", "--dangerously-allow-all-scripts"], {
    cwd: root,
    stdio: ["ignore", 2, 2],
    timeout: 15 * 60_000,
  });
  if (rebuild.status !== 0) {
    return { reason: `${first.reason}; npm rebuild isolated-vm failed (status ${rebuild.status ?? rebuild.signal ?? "?"})` };
  }
  const second = tryRequire();
  return "ivm" in second ? second : { reason: `${first.reason}; still not loadable after npm rebuild: ${second.reason}` };
}

interface Sandbox {
  isolate: IsolatedVM.Isolate;
  context: IsolatedVM.Context;
  lines: string[];
  returned: { json?: string };
}

export class IsolatedVmEngine implements Engine {
  readonly key = "isolated_vm";
  readonly label = "isolated-vm";
  readonly isolation = `new V8 isolate per run in the host process (memoryLimit ${MEMORY_LIMIT_MB} MB)`;
  readonly notes = ["isolated-vm runs isolates on a thread pool inside the host process; a fatal isolate error can take the host down"];

  private constructor(
    private readonly ivm: Ivm,
    readonly firstRunMs: number,
  ) {}

  static async create(ivm: Ivm, loadMs: number, firstWorkload: Workload): Promise<IsolatedVmEngine> {
    const started = performance.now();
    const engine = new IsolatedVmEngine(ivm, 0);
    const output = await engine.run(firstWorkload);
    firstWorkload.check(output);
    return Object.assign(engine, { firstRunMs: loadMs + performance.now() - started });
  }

  private async sandbox(usesHost: boolean): Promise<Sandbox> {
    const { ivm } = this;
    const isolate = new ivm.Isolate({ memoryLimit: MEMORY_LIMIT_MB });
    const context = await isolate.createContext();
    const lines: string[] = [];
    const returned: { json?: string } = {};
    const global = context.global;
    global.setSync("__print", new ivm.Callback((text: string) => {
      lines.push(text);
    }));
    global.setSync("__ret", new ivm.Callback((json: string) => {
      returned.json = json;
    }));
    if (usesHost) {
      // `async: true`: the host function runs on the host's event loop and the guest gets a promise.
      global.setSync("__hostAdd", new ivm.Callback((a: number, b: number) => a + b, { async: true }));
    }
    return { isolate, context, lines, returned };
  }

  async run(workload: Workload, options: RunOptions = {}): Promise<GuestOutput> {
    const sandbox = await this.sandbox(workload.usesHost);
    try {
      await sandbox.context.eval(wrapWithHostGlobals(workload.body), { promise: true, timeout: options.timeoutMs });
      return { stdout: joinLines(sandbox.lines), value: parseReturned(sandbox.returned.json), ok: true };
    } catch (error) {
      return { stdout: joinLines(sandbox.lines), value: undefined, ok: false, error: errorText(error) };
    } finally {
      sandbox.isolate.dispose();
    }
  }

  async coldStart(): Promise<ColdStart> {
    const started = performance.now();
    const sandbox = await this.sandbox(false);
    try {
      await sandbox.context.eval(wrapWithHostGlobals(`print(1);`), { promise: true });
    } finally {
      sandbox.isolate.dispose();
    }
    if (sandbox.lines[0] !== "1") throw new Error("isolated-vm cold start: no output");
    return { totalMs: performance.now() - started };
  }

  async openResident(): Promise<ResidentSession | null> {
    const sandbox = await this.sandbox(false);
    return {
      eval: async (code) => {
        await sandbox.context.eval(code);
      },
      dispose: async () => {
        sandbox.isolate.dispose();
      },
    };
  }

  async rssPerConcurrentRunMb(count: number): Promise<number | null> {
    collectGarbage();
    await sleep(50);
    const before = process.memoryUsage().rss;
    const alive: Sandbox[] = [];
    try {
      for (let index = 0; index < count; index += 1) {
        const sandbox = await this.sandbox(false);
        alive.push(sandbox);
        await sandbox.context.eval(wrapWithHostGlobals(`print(1);`), { promise: true });
      }
      collectGarbage();
      return (process.memoryUsage().rss - before) / MIB / count;
    } finally {
      for (const sandbox of alive) sandbox.isolate.dispose();
    }
  }

  extras(): Record<string, number | null> {
    return {};
  }

  async dispose(): Promise<void> {}
}
