// What `limits.memoryMb` bounds (docs/http-api.md "What limits.memoryMb bounds"): the process
// cap is idle + recycleMb + memoryMb + 4 MiB × concurrentRunsPerProcess, the value set moves
// it, and a run allocating far beyond it ends with the clear out-of-memory result.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

/** Holds `mb` MiB of doubles on the V8 heap, then returns how many 8 MiB arrays it kept. */
const hoard = (mb: number) =>
  `const hoard = []; for (let i = 0; i < ${mb / 8}; i++) hoard.push(new Array(1e6).fill(1.5 + i)); __return(hoard.length);`;

let bystander: NodeRuntime;
beforeAll(async () => {
  bystander = await createRuntime();
});
afterAll(async () => {
  await bystander?.dispose();
});

describe("limits.memoryMb", () => {
  it("with memoryMb: 32 and the other defaults, a run allocating 1 GiB ends with the out-of-memory result", async () => {
    const rt = await createRuntime({ limits: { memoryMb: 32 } });
    try {
      const [result] = await Promise.all([rt.run(hoard(1024), { timeout: 60_000 }), expectServing(bystander)]);
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toMatch(/ran out of memory \(limits\.memoryMb = 32\); the guest was killed/);
      expect(result.stderr).not.toMatch(/time limit/);
      await expectServing(rt);
    } finally {
      await rt.dispose();
    }
  });

  it("the value set moves the bound: 160 MiB is killed under memoryMb 32 and fits under memoryMb 256", async () => {
    // recycleMb 16 and one run per process: the cap is idle + 16 + memoryMb + 4 MiB.
    const tight = { recycleMb: 16, concurrentRunsPerProcess: 1 };
    const [small, large] = await Promise.all([
      createRuntime({ limits: { ...tight, memoryMb: 32 } }),
      createRuntime({ limits: { ...tight, memoryMb: 256 } }),
    ]);
    try {
      const killed = await small.run(hoard(160), { timeout: 60_000 });
      expect(killed.exitCode).toBe(137);
      expect(killed.stderr).toMatch(/ran out of memory \(limits\.memoryMb = 32\)/);
      const fitted = await large.run(hoard(160), { timeout: 60_000 });
      expect(fitted.stderr).toBe("");
      expect(fitted).toMatchObject({ exitCode: 0, value: 20 });
      await expectServing(small);
    } finally {
      await Promise.all([small.dispose(), large.dispose()]);
    }
  });
});
