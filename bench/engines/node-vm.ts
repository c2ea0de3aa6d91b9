// Peer: Node's `vm` module, a new context per run. Same process and isolate as the host —
// not a security boundary, but the floor for "evaluate code in a fresh global scope".
import vm from "node:vm";
import { collectGarbage, sleep } from "../stats.js";
import type { Workload } from "../workloads.js";
import { MIB, errorText, joinLines, parseReturned, type ColdStart, type Engine, type GuestOutput, type ResidentSession, type RunOptions, wrapWithHostGlobals } from "./engine.js";

interface Sandbox {
  context: vm.Context;
  lines: string[];
  returned: { json?: string };
}

function newSandbox(): Sandbox {
  const lines: string[] = [];
  const returned: { json?: string } = {};
  const context = vm.createContext({
    __print: (text: string) => {
      lines.push(text);
    },
    __ret: (json: string) => {
      returned.json = json;
    },
    __hostAdd: async (a: number, b: number) => a + b,
  });
  return { context, lines, returned };
}

export class NodeVmEngine implements Engine {
  readonly key = "node_vm";
  readonly label = "node:vm";
  readonly isolation = "new vm context per run, same isolate as the host (no security boundary)";
  readonly notes = ["node:vm shares the host's isolate and event loop: it is a speed floor, not a sandbox"];

  private constructor(readonly firstRunMs: number) {}

  static async create(firstWorkload: Workload): Promise<NodeVmEngine> {
    const started = performance.now();
    const engine = new NodeVmEngine(0);
    const output = await engine.run(firstWorkload);
    firstWorkload.check(output);
    return Object.assign(engine, { firstRunMs: performance.now() - started });
  }

  async run(workload: Workload, options: RunOptions = {}): Promise<GuestOutput> {
    const sandbox = newSandbox();
    try {
      const pending = vm.runInContext(wrapWithHostGlobals(workload.body), sandbox.context, {
        timeout: options.timeoutMs,
      }) as Promise<unknown>;
      await pending;
      return { stdout: joinLines(sandbox.lines), value: parseReturned(sandbox.returned.json), ok: true };
    } catch (error) {
      return { stdout: joinLines(sandbox.lines), value: undefined, ok: false, error: errorText(error) };
    }
  }

  async coldStart(): Promise<ColdStart> {
    const started = performance.now();
    const sandbox = newSandbox();
    await (vm.runInContext(wrapWithHostGlobals(`print(1);`), sandbox.context) as Promise<unknown>);
    return { totalMs: performance.now() - started };
  }

  async openResident(): Promise<ResidentSession | null> {
    const sandbox = newSandbox();
    return {
      eval: async (code) => {
        vm.runInContext(code, sandbox.context);
      },
      dispose: async () => {},
    };
  }

  async rssPerConcurrentRunMb(count: number): Promise<number | null> {
    collectGarbage();
    await sleep(50);
    const before = process.memoryUsage().rss;
    const alive: Sandbox[] = [];
    for (let index = 0; index < count; index += 1) {
      const sandbox = newSandbox();
      await (vm.runInContext(wrapWithHostGlobals(`print(1);`), sandbox.context) as Promise<unknown>);
      alive.push(sandbox);
    }
    collectGarbage();
    const after = process.memoryUsage().rss;
    alive.length = 0;
    return (after - before) / MIB / count;
  }

  extras(): Record<string, number | null> {
    return {};
  }

  async dispose(): Promise<void> {}
}
