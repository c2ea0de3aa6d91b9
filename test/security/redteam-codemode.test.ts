// Code Mode code is the model's: up to 1 MiB of it was normalised and syntax-checked with
// acorn on the host's event loop (two or three passes, ~1–2 s per MiB here), so a few large
// executions froze every runtime and tenant of the host. Large code is now parsed on a
// worker thread; a bystander runtime keeps answering meanwhile.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecureExecExecutor } from "../../runtime/codemode.js";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

describe("Code Mode: large code from the model", () => {
  let executor: SecureExecExecutor;
  let bystander: NodeRuntime;
  beforeAll(async () => {
    executor = new SecureExecExecutor({ timeout: 60_000 });
    bystander = await createRuntime();
    // Starts the executor's runtime and warms both.
    expect(await executor.execute("async () => 1", {})).toEqual({ result: 1 });
    await bystander.run("__return(0)");
  }, 60_000);
  afterAll(async () => {
    await Promise.all([executor?.dispose(), bystander?.dispose()]);
  });

  it("four 1 MiB codes with a syntax error at the end do not stall another runtime", async () => {
    const code = `${"n++;\n".repeat(200_000)}(`;
    // Sent while the bystander's runs are in flight (an execute parses before its first await).
    const attacks = Promise.all(
      Array.from({ length: 4 }, (_, index) => new Promise((resolve) => setTimeout(resolve, 50 + index * 100)).then(() => executor.execute(code, {}))),
    );
    let settled = false;
    void attacks.finally(() => (settled = true));
    let slowest = 0;
    let runs = 0;
    do {
      const started = performance.now();
      const result = await bystander.run("__return(1)", { timeout: 60_000 });
      expect(result.value).toBe(1);
      slowest = Math.max(slowest, performance.now() - started);
      runs += 1;
    } while (!settled);
    const results = await attacks;
    for (const result of results) expect(result.error).toMatch(/^SyntaxError: Unexpected token/);
    // On the host's event loop the four took ~4–8 s in one block; off it, the bystander's
    // trivial runs stay near their unloaded tens of ms (bound kept generous for a loaded host).
    expect(slowest).toBeLessThan(3_000);
    expect(runs).toBeGreaterThan(0);
  }, 180_000);

  it("large valid code still runs, with the last expression as its value", async () => {
    const code = `let n = 0;\n${"n++;\n".repeat(20_000)}n`;
    expect(await executor.execute(code, {})).toEqual({ result: 20_000 });
    await expectServing(bystander);
  }, 120_000);
});
