// Repeated code: back-to-back runs of the same source find an isolate of it already loaded,
// and each run still gets an isolate that has never run anything.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

let runtime: NodeRuntime;

beforeAll(async () => {
  runtime = await NodeRuntime.create();
});

afterAll(async () => {
  await runtime?.dispose();
});

describe("repeated code", () => {
  it("back-to-back runs of the same code are served by preloaded isolates, each fresh", async () => {
    // Module-level state and globals would show a reused isolate: every run must see 1.
    const code = `
      globalThis.seen = (globalThis.seen ?? 0) + 1;
      Object.prototype.polluted ??= 0;
      Object.prototype.polluted += 1;
      console.log(globalThis.seen, ({}).polluted);
    `;
    const outputs: string[] = [];
    for (let index = 0; index < 12; index += 1) {
      outputs.push((await runtime.exec(code)).stdout);
      // Pauses give the reserve time to load even on a loaded machine (no timing is asserted).
      if (index % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(outputs).toEqual(Array.from({ length: 12 }, () => "1 1\n"));
    // The first two runs make the code hot; later ones take isolates loaded ahead of them.
    expect(runtime.stats().preloadedRuns).toBeGreaterThanOrEqual(1);
  });

  it("runs of the same code at once each get an isolate of their own", async () => {
    const code = `globalThis.count = (globalThis.count ?? 0) + 1; await new Promise((r) => setTimeout(r, 20)); console.log(globalThis.count);`;
    for (let index = 0; index < 3; index += 1) await runtime.exec(code);
    const results = await Promise.all(Array.from({ length: 6 }, () => runtime.exec(code)));
    expect(results.map((result) => result.stdout)).toEqual(Array.from({ length: 6 }, () => "1\n"));
  });
});
