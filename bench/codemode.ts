// Code Mode figures: one execution making 3 tool calls through SecureExecExecutor, beside
// the same 3 calls through plain `rt.run` + `callHostTool` (both a fresh isolate per run).
import { NodeRuntime } from "../runtime/index.js";
import { SecureExecExecutor } from "../runtime/codemode.js";
import { percentile, round } from "./stats.js";

const EXECUTOR_CODE = `async () => {
  const a = await codemode.add({ a: 1, b: 2 });
  const b = await codemode.add({ a, b: 3 });
  return await codemode.add({ a: b, b: 4 });
}`;

const RUN_CODE = `const a = await callHostTool("add", { a: 1, b: 2 });
const b = await callHostTool("add", { a, b: 3 });
__return(await callHostTool("add", { a: b, b: 4 }));`;

const add = ({ a, b }: { a: number; b: number }) => a + b;

export async function measureCodemode(samples: number, log: (line: string) => void): Promise<Record<string, number | null>> {
  log(`codemode: ${samples} executions with 3 tool calls, and the same through rt.run …`);
  const runtime = await NodeRuntime.create({
    limits: { processes: 1 },
    tools: { add: { description: "a + b", inputSchema: { type: "object" }, handler: add as (input: never) => number } },
  });
  const executor = new SecureExecExecutor({ runtime, timeout: 10_000 });
  const fns = { add: async (input: unknown) => add(input as { a: number; b: number }) };
  try {
    const executeMs: number[] = [];
    const runMs: number[] = [];
    for (let i = 0; i < samples + 3; i++) {
      let started = performance.now();
      const executed = await executor.execute(EXECUTOR_CODE, [{ name: "codemode", fns }]);
      const executeElapsed = performance.now() - started;
      if (executed.result !== 10) throw new Error(`codemode execution went wrong: ${JSON.stringify(executed)}`);
      started = performance.now();
      const ran = await runtime.run(RUN_CODE);
      const runElapsed = performance.now() - started;
      if (ran.value !== 10) throw new Error(`rt.run went wrong: ${ran.stderr}`);
      // The first rounds warm the compiler and the isolate cache.
      if (i >= 3) {
        executeMs.push(executeElapsed);
        runMs.push(runElapsed);
      }
    }
    return {
      codemode_execute_ms_p50: round(percentile(executeMs, 50)),
      codemode_execute_ms_p95: round(percentile(executeMs, 95)),
      codemode_rt_run_ms_p50: round(percentile(runMs, 50)),
      codemode_rt_run_ms_p95: round(percentile(runMs, 95)),
    };
  } finally {
    await executor.dispose();
    await runtime.dispose();
  }
}
