// Heap bombs under `limits.memoryMb` (with a small `recycleMb`, so the process cap is low and
// bombs hit it fast): the run ends non-zero with a clear line on stderr, only
// the guest's own process dies (and is replaced), and the next run works.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

let rt: NodeRuntime;
let bystander: NodeRuntime;
beforeAll(async () => {
  [rt, bystander] = await Promise.all([createRuntime({ limits: { memoryMb: 64, recycleMb: 16, concurrentRunsPerProcess: 4 } }), createRuntime()]);
});
afterAll(async () => {
  await Promise.all([rt?.dispose(), bystander?.dispose()]);
});

// Output is flushed when the guest yields; printing first makes the run observable, so a
// lost process ends it at once instead of replaying it on another process.
const FLUSH_FIRST = 'console.log("start"); await new Promise((r) => setTimeout(r, 0));';
const CLEAR_MEMORY_ERROR =
  /ran out of memory \(limits\.memoryMb = 64\)|RangeError: (Array buffer allocation failed|Invalid (string|array|typed array) length|WebAssembly\.Memory)|allocation failed/;

async function expectContained(code: string): Promise<void> {
  const result = await rt.exec(code, { timeout: 30_000 });
  expect(result.exitCode).not.toBe(0);
  expect(result.stderr).toMatch(CLEAR_MEMORY_ERROR);
  // Never a timeout: the memory cap, not the clock, ended it.
  expect(result.stderr).not.toMatch(/time limit/);
  await expectServing(rt);
  await expectServing(bystander);
}

describe("heap bombs with limits.memoryMb = 64", () => {
  it("an array hoard", async () => {
    await expectContained(`${FLUSH_FIRST} const hoard = []; while (true) hoard.push(new Array(1e6).fill(1.5));`);
  });

  it("a hoard of huge distinct strings", async () => {
    await expectContained(
      // Flat strings (a decoded buffer), not ropes: each one really holds its 4 MiB.
      `${FLUSH_FIRST} const hoard = []; const decoder = new TextDecoder(); while (true) hoard.push(decoder.decode(new Uint8Array(1 << 22).fill(65 + (hoard.length % 26))));`,
    );
  });

  it("a string doubled past the maximum length", async () => {
    await expectContained(`${FLUSH_FIRST} let s = "ab"; const keep = []; while (true) { s = s + s; keep.push(s); }`);
  });

  it("ArrayBuffers touched page by page", async () => {
    await expectContained(
      `${FLUSH_FIRST} const hoard = []; while (true) { const b = new ArrayBuffer(1 << 24); new Uint8Array(b).fill(7); hoard.push(b); }`,
    );
  });

  it("one 4 GiB ArrayBuffer", async () => {
    await expectContained(`${FLUSH_FIRST} const b = new ArrayBuffer(4 * 1024 ** 3); new Uint8Array(b).fill(1);`);
  });

  it("WebAssembly.Memory.grow until it fails", async () => {
    await expectContained(
      `${FLUSH_FIRST} const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); while (true) { m.grow(256); new Uint8Array(m.buffer).fill(1); }`,
    );
  });

  it("a 4 GiB WebAssembly.Memory up front", async () => {
    await expectContained(`${FLUSH_FIRST} const m = new WebAssembly.Memory({ initial: 65536 }); new Uint8Array(m.buffer).fill(1);`);
  });

  it("a bomb with no output first is replayed once, then reported clearly", async () => {
    const lostBefore = rt.stats().processesLost;
    const result = await rt.exec("const hoard = []; while (true) hoard.push(new Array(1e6).fill(2.5));", { timeout: 30_000 });
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(/ran out of memory \(limits\.memoryMb = 64\)/);
    expect(rt.stats().processesLost).toBeGreaterThan(lostBefore);
    await expectServing(rt);
  });
});
