// Peer: quickjs-emscripten, QuickJS compiled to WebAssembly, a new QuickJS runtime+context per run.
import {
  newQuickJSWASMModule,
  shouldInterruptAfterDeadline,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSWASMModule,
} from "quickjs-emscripten";
import { collectGarbage, sleep } from "../stats.js";
import type { Workload } from "../workloads.js";
import { MIB, joinLines, parseReturned, type ColdStart, type Engine, type GuestOutput, type ResidentSession, type RunOptions, wrapWithHostGlobals } from "./engine.js";

function wrap(body: string): string {
  return wrapWithHostGlobals(body, ".catch((e) => __err(String((e && e.stack) || e)));");
}

interface Capture {
  lines: string[];
  json?: string;
  error?: string;
}

function define(context: QuickJSContext, name: string, fn: (...args: QuickJSHandle[]) => QuickJSHandle | void): void {
  const handle = context.newFunction(name, fn);
  context.setProp(context.global, name, handle);
  handle.dispose();
}

function describe(context: QuickJSContext, handle: QuickJSHandle): string {
  const dumped: unknown = context.dump(handle);
  return typeof dumped === "string" ? dumped : JSON.stringify(dumped);
}

/** Evaluates a wrapped body in `context` and drains its job queue. */
function evaluate(context: QuickJSContext, code: string, capture: Capture): void {
  const result = context.evalCode(code);
  if (result.error) {
    capture.error = describe(context, result.error);
    result.error.dispose();
    return;
  }
  result.value.dispose();
  while (capture.error === undefined) {
    const jobs = context.runtime.executePendingJobs();
    if (jobs.error) {
      capture.error = describe(jobs.error.context, jobs.error);
      jobs.error.dispose();
      return;
    }
    if (jobs.value === 0) return;
  }
}

function prepare(module: QuickJSWASMModule): { context: QuickJSContext; capture: Capture } {
  const context = module.newContext();
  const capture: Capture = { lines: [] };
  define(context, "__print", (text) => {
    if (text) capture.lines.push(context.getString(text));
  });
  define(context, "__ret", (json) => {
    if (json) capture.json = context.getString(json);
  });
  define(context, "__err", (message) => {
    if (message) capture.error = context.getString(message);
  });
  // QuickJS host functions are synchronous (the async variant needs the asyncify build).
  define(context, "__hostAdd", (a, b) => context.newNumber((a ? context.getNumber(a) : 0) + (b ? context.getNumber(b) : 0)));
  return { context, capture };
}

export class QuickJsEngine implements Engine {
  readonly key = "quickjs_emscripten";
  readonly label = "quickjs-emscripten";
  readonly isolation = "new QuickJS runtime+context per run (WebAssembly, interpreter, no JIT)";
  readonly notes = ["quickjs-emscripten host calls are synchronous functions (no event-loop round trip)"];

  private constructor(
    private readonly module: QuickJSWASMModule,
    readonly firstRunMs: number,
  ) {}

  static async create(firstWorkload: Workload): Promise<QuickJsEngine> {
    const started = performance.now();
    const module = await newQuickJSWASMModule();
    const engine = new QuickJsEngine(module, 0);
    const output = await engine.run(firstWorkload);
    firstWorkload.check(output);
    return Object.assign(engine, { firstRunMs: performance.now() - started });
  }

  async run(workload: Workload, options: RunOptions = {}): Promise<GuestOutput> {
    const { context, capture } = prepare(this.module);
    try {
      if (options.timeoutMs !== undefined) {
        context.runtime.setInterruptHandler(shouldInterruptAfterDeadline(Date.now() + options.timeoutMs));
      }
      evaluate(context, wrap(workload.body), capture);
    } finally {
      context.dispose();
    }
    if (capture.error !== undefined) return { stdout: joinLines(capture.lines), value: undefined, ok: false, error: capture.error };
    return { stdout: joinLines(capture.lines), value: parseReturned(capture.json), ok: true };
  }

  /** A fresh WebAssembly instance of QuickJS, then a context and a first result. */
  async coldStart(): Promise<ColdStart> {
    const started = performance.now();
    const module = await newQuickJSWASMModule();
    const { context, capture } = prepare(module);
    try {
      evaluate(context, wrap(`print(1);`), capture);
    } finally {
      context.dispose();
    }
    if (capture.lines[0] !== "1") throw new Error(`quickjs cold start: ${capture.error ?? "no output"}`);
    return { totalMs: performance.now() - started };
  }

  async openResident(): Promise<ResidentSession | null> {
    const { context, capture } = prepare(this.module);
    return {
      eval: async (code) => {
        evaluate(context, code, capture);
        if (capture.error !== undefined) throw new Error(capture.error);
      },
      dispose: async () => {
        context.dispose();
      },
    };
  }

  async rssPerConcurrentRunMb(count: number): Promise<number | null> {
    collectGarbage();
    await sleep(50);
    const before = process.memoryUsage().rss;
    const alive: QuickJSContext[] = [];
    try {
      for (let index = 0; index < count; index += 1) {
        const { context, capture } = prepare(this.module);
        alive.push(context);
        evaluate(context, wrap(`print(1);`), capture);
      }
      collectGarbage();
      return (process.memoryUsage().rss - before) / MIB / count;
    } finally {
      for (const context of alive) context.dispose();
    }
  }

  extras(): Record<string, number | null> {
    return {};
  }

  async dispose(): Promise<void> {}
}
