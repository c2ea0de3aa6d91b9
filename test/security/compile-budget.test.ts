// A compile job has a budget of its own (SECURE_EXEC_COMPILE_BUDGET_MS, default 5 s) however
// long the run's timeout: past it the compiler thread is terminated and the run fails clearly.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";

let rt: NodeRuntime;
let bystander: NodeRuntime;
beforeAll(async () => {
  // Read when the compiler loads: a budget that a large source overruns even on a fast machine.
  process.env.SECURE_EXEC_COMPILE_BUDGET_MS = "2000";
  const { NodeRuntime } = await import("../../runtime/index.js");
  [rt, bystander] = await Promise.all([NodeRuntime.create(), NodeRuntime.create()]);
});
afterAll(async () => {
  await Promise.all([rt?.dispose(), bystander?.dispose()]);
  delete process.env.SECURE_EXEC_COMPILE_BUDGET_MS;
});

describe("compile budget", () => {
  it("a source that takes longer than the budget to compile fails with a clear error, within a long timeout", async () => {
    const slow = `let a = 0;\n${"a += [1, 2, 3].length * (a % 7) + { b: a }.b;\n".repeat(200_000)}__return(a);`;
    const result = await rt.run(slow, { timeout: 120_000 });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/compiling took longer than 2 s, the most one source may take/);
    // The compiler threads serve the next job.
    const next = await bystander.run(`// ${"x".repeat(20_000)}\n__return(1)`, { timeout: 60_000 });
    expect(next.value).toBe(1);
  });
});
