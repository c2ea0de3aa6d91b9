// The host's own log is not the guest's to write: however many children a guest starts at
// once, no listener piles up on a shared signal and the host prints no warning.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime } from "./helpers.js";

let rt: NodeRuntime;
const warnings: string[] = [];
const onWarning = (warning: Error): void => {
  warnings.push(`${warning.name}: ${warning.message}`);
};
beforeAll(async () => {
  rt = await createRuntime({ limits: { processes: 1 } });
  process.on("warning", onWarning);
});
beforeEach(() => {
  warnings.length = 0;
});
afterAll(async () => {
  process.off("warning", onWarning);
  await rt?.dispose();
});

const MANY_CHILDREN = `
  import { execFile } from "node:child_process";
  const children = Array.from({ length: 24 }, (_, i) =>
    new Promise((resolve) => execFile("node", ["-e", "setTimeout(() => console.log(" + i + "), 100)"], (error, stdout) => resolve(stdout.trim()))));
  __return((await Promise.all(children)).join(","));
`;

describe("children started at once", () => {
  it("24 concurrent `node -e` children print no MaxListenersExceededWarning on the host", async () => {
    const result = await rt.run(MANY_CHILDREN, { timeout: 60_000 });
    expect(result.exitCode).toBe(0);
    expect(result.value).toBe(Array.from({ length: 24 }, (_, i) => i).join(","));
    // Warnings are emitted on a later tick.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(warnings).toEqual([]);
  });

  it("children killed with their parent (timeout) print nothing either", async () => {
    const result = await rt.run(
      `import { spawn } from "node:child_process";
       for (let i = 0; i < 24; i++) spawn("node", ["-e", "setInterval(() => {}, 1000)"]);
       await new Promise(() => setInterval(() => {}, 1000));`,
      { timeout: 3_000 },
    );
    expect(result.exitCode).toBe(137);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(warnings).toEqual([]);
  });
});
