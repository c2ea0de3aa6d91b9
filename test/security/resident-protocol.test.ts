// A resident runner's worker shares its isolate with guest code, so every message it sends
// the host is checked before the host commits to a result: a forged exit event ends the
// runner with a clear line instead of hanging exec() or handing on a bad exit code, and the
// exec's time limit still fires when the forged events never end it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import type { ResidentRunner, RunResult } from "../../host/api/types.js";
import { createRuntime } from "./helpers.js";

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await createRuntime({ limits: { processes: 1 } });
});
afterAll(async () => {
  await rt?.dispose();
});

/** Every event the worker serialises becomes `forged` (objects inherit this toJSON). */
function forging(forged: string): string {
  return `Object.prototype.toJSON = function () { return this !== null && typeof this === "object" && "x" in this ? ${forged} : this; }; 1`;
}

/** exec() must settle; without the checks it never did. */
async function settled(runner: ResidentRunner, code: string, timeout?: number): Promise<RunResult | "unsettled"> {
  let timer: NodeJS.Timeout | undefined;
  const unsettled = new Promise<"unsettled">((resolve) => (timer = setTimeout(() => resolve("unsettled"), 20_000)));
  try {
    return await Promise.race([runner.exec(code, timeout === undefined ? undefined : { timeout }), unsettled]);
  } finally {
    clearTimeout(timer);
  }
}

describe("forged events over the runner's WebSocket", () => {
  it("a value nested 100,000 deep is refused before the host parses it", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = (await settled(runner, 'JSON.parse("[".repeat(1e5) + "]".repeat(1e5))')) as RunResult;
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toBe("secure-exec: the snippet's value nests deeper than 1000 levels; the resident runner was killed\n");
    } finally {
      await runner.dispose();
    }
  });

  it('an exit event with a value that is not JSON ({"x":0,"r":"{bad"}) ends the runner with a clear line', async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = await settled(runner, forging('{ x: 0, r: "{bad" }'));
      expect(result).not.toBe("unsettled");
      const { exitCode, stderr, value } = result as RunResult;
      expect(exitCode).toBe(137);
      expect(value).toBeUndefined();
      expect(stderr).toBe("secure-exec: the resident runner sent a value that is not JSON; the runner was killed\n");
      await expect(runner.exec("1")).rejects.toThrow(/broke the runner protocol/);
    } finally {
      await runner.dispose();
    }
  });

  it('an exit code that is not a number ({"x":"weird"}) never reaches the caller', async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = (await settled(runner, forging('{ x: "weird" }'))) as RunResult;
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toMatch(/^secure-exec: the resident runner sent an event with a bad x: .*; the runner was killed\n$/);
    } finally {
      await runner.dispose();
    }
  });

  it("unknown fields and non-string output are refused the same way", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = (await settled(runner, forging("{ x: 0, smuggled: true }"))) as RunResult;
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toMatch(/sent an event with a bad shape: .*; the runner was killed\n$/);
    } finally {
      await runner.dispose();
    }
  });

  it("forged events that never end the exec leave its time limit in charge", async () => {
    const runner = await rt.createResidentRunner();
    try {
      // Every event (the exit too) turns into an empty object: valid, but it ends nothing.
      const code = 'Object.prototype.toJSON = function () { return this !== null && typeof this === "object" && "x" in this ? {} : this; }; 1';
      const result = (await settled(runner, code, 1_500)) as RunResult;
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toMatch(/time limit of 1500 ms exceeded/);
    } finally {
      await runner.dispose();
    }
  });

  it("a value over limits.returnBytes ends the runner with a clear line; a honest value in pieces arrives intact", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const big = (await settled(runner, '"€".repeat(300_000)')) as RunResult;
      expect(big.exitCode).toBe(0);
      expect(big.value).toBe("€".repeat(300_000));
      const over = (await settled(runner, '"y".repeat(5 << 20)')) as RunResult;
      expect(over.exitCode).toBe(137);
      expect(over.stderr).toBe(
        "secure-exec: the snippet's value is 5242882 bytes of JSON, over limits.returnBytes = 1048576; the resident runner was killed\n",
      );
    } finally {
      await runner.dispose();
    }
  });
});
