// A run's limits hold for everything it causes: child processes share their top-level run's
// tool-call budget, and one run cannot cause more than 64 child processes however it nests.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

let handlerCalls = 0;
let rt: NodeRuntime;
beforeAll(async () => {
  rt = await createRuntime({
    tools: {
      count: {
        description: "Counts its calls",
        inputSchema: {},
        handler: () => {
          handlerCalls += 1;
          return handlerCalls;
        },
      },
    },
    limits: { toolCalls: 3 },
  });
});
afterAll(async () => {
  await rt?.dispose();
});

describe("limits.toolCalls counts a top-level run and all its children", () => {
  it("8 node children calling the tool 3 times each make 3 handler calls in all", async () => {
    handlerCalls = 0;
    const child = `let refused = 0; for (let i = 0; i < 3; i++) { try { await callHostTool("count", {}); } catch (error) { if (error.code === "ERR_TOOL_LIMIT") refused += 1; } } console.log(refused);`;
    const result = await rt.run(
      `
      import { execFile } from "node:child_process";
      import { promisify } from "node:util";
      const run = promisify(execFile);
      const outs = await Promise.all(Array.from({ length: 8 }, () => run("node", ["-e", ${JSON.stringify(child)}]).then((r) => r.stdout.trim())));
      __return(outs.reduce((sum, refused) => sum + Number(refused), 0));
    `,
      { timeout: 30_000 },
    );
    expect(result.exitCode).toBe(0);
    expect(handlerCalls).toBe(3);
    expect(result.value).toBe(8 * 3 - 3);
  });

  it("grandchildren and tool commands share the same budget", async () => {
    handlerCalls = 0;
    const grandchild = `try { await callHostTool("count", {}); } catch {}`;
    const child = `
      import { execFile } from "node:child_process";
      import { promisify } from "node:util";
      const run = promisify(execFile);
      await Promise.all([1, 2, 3].map(() => run("node", ["-e", ${JSON.stringify(grandchild)}])));
      await Promise.all([1, 2, 3].map(() => run("count", []).catch(() => {})));`;
    const result = await rt.exec(
      `
      import { execFile } from "node:child_process";
      import { promisify } from "node:util";
      const run = promisify(execFile);
      await Promise.all([1, 2, 3, 4].map(() => run("node", ["-e", ${JSON.stringify(child)}])));
      try { await callHostTool("count", {}); } catch {}
    `,
      { timeout: 30_000 },
    );
    expect(result.exitCode).toBe(0);
    expect(handlerCalls).toBe(3);
  });

  it("the next top-level run has its own budget", async () => {
    handlerCalls = 0;
    const result = await rt.run('__return(await callHostTool("count", {}))');
    expect(result.value).toBe(1);
  });
});

describe("child processes per top-level run", () => {
  it("a fork bomb (8 children each, 4 deep) starts at most 64 children in all", async () => {
    // Each child starts 8 more children of itself; without a shared cap that is 8 + 64 + 512 + 4096.
    const bomb = `
      import { execFile } from "node:child_process";
      const code = process.env.BOMB;
      await Promise.all(Array.from({ length: 8 }, () => new Promise((resolve) => {
        execFile("node", ["-e", code], { env: { BOMB: code } }, (error) => { if (error?.code === "EAGAIN") console.log("EAGAIN"); resolve(); });
      })));`;
    const runsBefore = rt.stats().runs;
    const result = await rt.exec(
      `
      import { execFile } from "node:child_process";
      const code = ${JSON.stringify(bomb)};
      let refused = 0;
      await Promise.all(Array.from({ length: 8 }, () => new Promise((resolve) => {
        execFile("node", ["-e", code], { env: { BOMB: code } }, (error, stdout) => {
          if (error?.code === "EAGAIN") refused += 1;
          refused += (stdout.match(/EAGAIN/g) ?? []).length;
          resolve();
        });
      })));
      console.log(refused > 0 ? "refused" : "not refused");
    `,
      { timeout: 60_000 },
    );
    expect(result.stdout).toContain("refused");
    expect(result.stdout).not.toContain("not refused");
    // The top-level run plus at most 64 children.
    expect(rt.stats().runs - runsBefore).toBeLessThanOrEqual(1 + 64);
    await expectServing(rt);
  });
});
