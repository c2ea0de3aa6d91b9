// Compiling is linear in the source, and the shared compiler threads serve runtimes in turn:
// a source built to be slow to compile does not hold them from another runtime's run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { INLINE_COMPILE_LIMIT } from "../../host/compile/guest-compiler.js";
import { createRuntime } from "./helpers.js";

let attacker: NodeRuntime;
let bystander: NodeRuntime;
beforeAll(async () => {
  [attacker, bystander] = await Promise.all([createRuntime(), createRuntime()]);
});
afterAll(async () => {
  await Promise.all([attacker?.dispose(), bystander?.dispose()]);
});

/** A small run whose source is just over the inline limit, so it compiles on a compiler thread. */
const bystanderSource = `// ${"x".repeat(INLINE_COMPILE_LIMIT)}\n__return(42);`;

async function bystanderLatencyMs(): Promise<number> {
  const started = performance.now();
  const result = await bystander.run(bystanderSource, { timeout: 60_000 });
  expect(result.value).toBe(42);
  return performance.now() - started;
}

describe("compiler starvation", () => {
  it("40,000 `import \"fs\"` statements compile, and another runtime's run is not held behind them", async () => {
    await bystanderLatencyMs();
    const unloaded = Math.min(await bystanderLatencyMs(), await bystanderLatencyMs());
    const attackSource = `${'import "fs";\n'.repeat(40_000)}__return("compiled");`;
    // One job per compiler thread.
    const attacks = [attacker.run(attackSource, { timeout: 60_000 }), attacker.run(attackSource, { timeout: 60_000 })];
    const underAttack = await bystanderLatencyMs();
    for (const result of await Promise.all(attacks)) expect(result.value).toBe("compiled");
    // The quadratic rewrite held each thread for many seconds; generous bound for a loaded machine.
    expect(underAttack).toBeLessThan(Math.max(10 * unloaded, 5_000));
  });
});
