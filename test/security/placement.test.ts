// Runs placed on a process that a runaway then holds do not wait for the runaway's deadline:
// those that have not started (preloaded isolates included) move to a responsive process at
// once, and run exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing, sleep } from "./helpers.js";

let rt: NodeRuntime;
const calls: number[] = [];
beforeAll(async () => {
  rt = await createRuntime({
    tools: {
      record: {
        description: "Records that a run reached it",
        inputSchema: { type: "object", properties: { run: { type: "number" } }, required: ["run"] },
        handler: ({ run }: { run: number }) => {
          calls.push(run);
          return run;
        },
      },
    },
  });
  await expectServing(rt);
});
afterAll(async () => {
  await rt?.dispose();
});

const RUNAWAY_TIMEOUT_MS = 10_000;

describe("placement while a runaway holds a process", () => {
  it("runs that arrive after a while(true) (default options) all finish before its deadline", async () => {
    let runawayEnded = false;
    const runaway = rt.exec("while (true) {}", { timeout: RUNAWAY_TIMEOUT_MS }).then((result) => {
      runawayEnded = true;
      return result;
    });
    // Before the heartbeat can have noticed: some of these are placed on the stuck process.
    await sleep(150);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => rt.run(`__return(${i})`, { timeout: 30_000 })));
    expect(results.map((result) => result.value)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(runawayEnded).toBe(false);
    expect((await runaway).exitCode).toBe(137);
    await expectServing(rt);
  });

  it("so do runs that arrive after a runaway that started spinning after an await", async () => {
    let runawayEnded = false;
    const runaway = rt.exec("await new Promise((r) => setTimeout(r, 10)); for (;;) {}", { timeout: RUNAWAY_TIMEOUT_MS }).then((result) => {
      runawayEnded = true;
      return result;
    });
    // After the process stopped answering (pings go every 100 ms) but before it is marked (250 ms later).
    await sleep(250);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => rt.run(`__return(${i})`, { timeout: 30_000 })));
    expect(results.map((result) => result.value)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(runawayEnded).toBe(false);
    expect((await runaway).exitCode).toBe(137);
  });

  it("and runs of hot code, which start preloaded isolates, move off the stuck process too", async () => {
    const hot = `__return("hot")`;
    // Code run again and again gets isolates loaded ahead on two processes.
    for (let i = 0; i < 5; i++) {
      expect((await rt.run(hot)).value).toBe("hot");
      await sleep(100);
    }
    const hitsBefore = rt.stats().preloadedRuns;
    let runawayEnded = false;
    const runaway = rt.exec("await new Promise((r) => setTimeout(r, 10)); for (;;) {}", { timeout: RUNAWAY_TIMEOUT_MS }).then((result) => {
      runawayEnded = true;
      return result;
    });
    await sleep(250);
    const results = await Promise.all(Array.from({ length: 8 }, () => rt.run(hot, { timeout: 30_000 })));
    expect(results.map((result) => result.value)).toEqual(Array.from({ length: 8 }, () => "hot"));
    expect(runawayEnded).toBe(false);
    expect(rt.stats().preloadedRuns).toBeGreaterThan(hitsBefore);
    expect((await runaway).exitCode).toBe(137);
  });

  it("a run moved off the stuck process runs exactly once", async () => {
    calls.length = 0;
    let runawayEnded = false;
    const runaway = rt.exec("while (true) {}", { timeout: RUNAWAY_TIMEOUT_MS }).then((result) => {
      runawayEnded = true;
      return result;
    });
    await sleep(150);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => rt.run(`__return(await callHostTool("record", { run: ${i} }))`, { timeout: 30_000 })),
    );
    expect(results.map((result) => result.value)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(runawayEnded).toBe(false);
    await runaway;
    // Even after the stuck process was freed (killed), no withdrawn attempt reached a tool.
    await sleep(500);
    expect([...calls].sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});
