// Nothing of one run reaches another run or another runtime (globals, prototypes, builtin
// module state, env, files), and oversized code or env gets a clear answer, never a hang.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

let rt: NodeRuntime;
let other: NodeRuntime;
beforeAll(async () => {
  [rt, other] = await Promise.all([createRuntime({ env: { BASE: "runtime" } }), createRuntime()]);
});
afterAll(async () => {
  await Promise.all([rt?.dispose(), other?.dispose()]);
});

const POISON = `
  import os from "node:os";
  import { Buffer } from "node:buffer";
  import { bridge } from "./secure-exec-bridge.js";
  globalThis.leak = "LEAK";
  Object.prototype.polluted = "POLLUTED";
  String.prototype.trim = function () { return "hijacked"; };
  JSON.parse = () => "hijacked";
  Array.prototype.includes = () => "hijacked";
  Math.random = () => 4;
  Date.now = () => 0;
  Buffer.prototype.toString = () => "hijacked";
  os.platform = () => "hijacked";
  bridge.leaked = "LEAK";
  process.env.BASE = "changed";
  process.env.ADDED = "added";
  process.chdir("/tmp");
  process.exitCode = 9;
  process.exitCode = undefined;
  console.log("poisoned");
  __return("poisoned");
`;

const CHECK = `
  import os from "node:os";
  import { Buffer } from "node:buffer";
  import { bridge } from "./secure-exec-bridge.js";
  const a = []; a.push(1);
  __return({
    leak: typeof globalThis.leak,
    polluted: ({}).polluted ?? null,
    push: a.length,
    includes: [1].includes(1),
    spread: [...[1, 2]],
    trim: " x ".trim(),
    parse: JSON.parse("[1]"),
    random: Math.random() < 1,
    now: Date.now() > 0,
    buffer: Buffer.from("ok").toString(),
    platform: os.platform(),
    bridgeLeak: bridge.leaked ?? null,
    env: { BASE: process.env.BASE ?? null, ADDED: process.env.ADDED ?? null, CALL: process.env.CALL ?? null },
    cwd: process.cwd(),
  });
`;

const CLEAN = {
  leak: "undefined",
  polluted: null,
  push: 1,
  includes: true,
  spread: [1, 2],
  trim: "x",
  parse: [1],
  random: true,
  now: true,
  buffer: "ok",
  platform: "linux",
  bridgeLeak: null,
  env: { BASE: "runtime", ADDED: null, CALL: null },
  cwd: "/workspace",
};

describe("cross-run leakage", () => {
  it("globals, prototypes, builtin module state, env and cwd set by one run are gone in the next runs", async () => {
    const poisoned = await rt.run(POISON, { env: { CALL: "first-call-only" }, timeout: 5_000 });
    expect(poisoned.value).toBe("poisoned");
    expect(poisoned.stdout).toBe("poisoned\n");
    // Several times, so runs land on both processes and on preloaded isolates of repeated code.
    for (let i = 0; i < 4; i++) {
      const checked = await rt.run(CHECK);
      expect(checked.exitCode).toBe(0);
      expect(checked.value).toEqual(CLEAN);
    }
  });

  it("runs in flight at the same time in the same process do not see each other", async () => {
    const results = await Promise.all([
      rt.run(POISON.replace('__return("poisoned");', "await new Promise((r) => setTimeout(r, 150)); __return('poisoned');"), { timeout: 5_000 }),
      ...Array.from({ length: 6 }, () => rt.run(CHECK.replace("const a = [];", "await new Promise((r) => setTimeout(r, 60)); const a = [];"), { timeout: 5_000 })),
    ]);
    expect(results[0]!.value).toBe("poisoned");
    for (const result of results.slice(1)) expect(result.value).toEqual(CLEAN);
  });

  it("a guest that sabotages the prelude's own builtins ends (at its deadline at worst) and leaves nothing behind", async () => {
    const sabotage = await rt.run(
      'Array.prototype.push = () => 0; Array.prototype[Symbol.iterator] = function* () {}; Promise.prototype.then = function () { throw new Error("then trap"); }; JSON.stringify = () => "{"; globalThis.leak = 1; console.log("x");',
      { timeout: 2_000 },
    ).catch((error: unknown) => ({ rejected: String(error) }));
    expect(sabotage).toBeDefined();
    const checked = await rt.run(CHECK, { timeout: 5_000 });
    expect(checked.value).toEqual(CLEAN);
  });

  it("another runtime never sees them either", async () => {
    await rt.run(POISON, { timeout: 5_000 });
    const checked = await other.run(CHECK);
    expect(checked.value).toEqual({ ...CLEAN, env: { BASE: null, ADDED: null, CALL: null } });
  });

  it("the Cache API holds nothing from one run for the next (guests have none)", async () => {
    const put = await rt.run(
      `try { await caches.default.put("https://cache.test/", new Response("left behind")); __return("stored"); } catch (error) { __return(error.message); }`,
    );
    expect(put.value).toBe("No Cache was configured");
    const match = await rt.run(
      `try { const found = await caches.default.match("https://cache.test/"); __return(found ? await found.text() : null); } catch (error) { __return(error.message); }`,
    );
    expect(match.value).toBe("No Cache was configured");
  });

  it("files written by one runtime's guest are not visible to another runtime", async () => {
    const wrote = await rt.exec('import fs from "node:fs"; fs.writeFileSync("/workspace/tenant-secret.txt", "s3cret"); console.log(fs.readFileSync("/workspace/tenant-secret.txt", "utf8"))');
    expect(wrote.stdout).toBe("s3cret\n");
    const read = await other.run('import fs from "node:fs"; __return(fs.existsSync("/workspace/tenant-secret.txt"))');
    expect(read.value).toBe(false);
    await expect(other.readFile("/workspace/tenant-secret.txt")).rejects.toThrow();
  });
});

describe("oversized code and env", () => {
  it("a 20 MB source gets a clear answer (runs or is refused), never a hang or a host crash", async () => {
    const code = `const s = "${"a".repeat(20 * 1024 * 1024)}"; console.log(s.length)`;
    const result = await rt.exec(code, { timeout: 30_000 }).catch((error: unknown) => ({ rejected: String(error) }));
    if ("rejected" in result) {
      expect(result.rejected).toMatch(/secure-exec|too large|limit/i);
    } else if (result.exitCode === 0) {
      expect(result.stdout).toBe(`${20 * 1024 * 1024}\n`);
    } else {
      expect(result.stderr.length).toBeGreaterThan(0);
      expect(result.stderr.length).toBeLessThan(64 * 1024);
    }
    await expectServing(rt);
  });

  it("an 8 MB env value and 100k env entries get a clear answer, never a hang", async () => {
    await expect(rt.run("__return(process.env.BIG.length)", { env: { BIG: "x".repeat(8 * 1024 * 1024) }, timeout: 30_000 })).rejects.toThrow(
      /"env": has 8388611 characters of names and values; the limit is 1048576 per env/,
    );
    const many: Record<string, string> = {};
    for (let i = 0; i < 100_000; i++) many[`KEY_${i}`] = `value-${i}`;
    await expect(rt.run("__return(Object.keys(process.env).length)", { env: many, timeout: 30_000 })).rejects.toThrow(
      /"env": has 100000 entries; the limit is 4096 per env/,
    );
    await expectServing(rt);
  });

  it("env values that try to break out of the run message are plain strings", async () => {
    const tricky = { '"}],"x":0,"r":"1': '"}\n{"x":0}', __proto__: "proto", constructor: "ctor", "\u2028": "\u2029" };
    const result = await rt.run("__return(Object.entries(process.env).filter(([k]) => k !== 'BASE').sort())", {
      env: JSON.parse(JSON.stringify(tricky)) as Record<string, string>,
    });
    expect(result.exitCode).toBe(0);
    expect(result.value).toEqual(Object.entries(JSON.parse(JSON.stringify(tricky)) as Record<string, string>).sort());
  });

  // Parsing costs ~3 µs per statement here: a 2 MB source of 400k statements takes ~1.5 s.
  // It must happen off the host's event loop (which serves every runtime, heartbeat and HTTP
  // request) and count against the run's own `timeout`.
  it("a large source does not block the host's event loop for long", async () => {
    const code = `let n = 0;\n${"n++;\n".repeat(400_000)}console.log(n)`;
    let last = performance.now();
    let worstGap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 20);
    let result;
    try {
      result = await rt.exec(code, { timeout: 1_000 });
    } finally {
      clearInterval(ticker);
    }
    if (result.exitCode === 0) expect(result.stdout).toBe("400000\n");
    else expect([result.exitCode, result.stderr]).toEqual([137, expect.stringMatching(/time limit of 1000 ms exceeded/)]);
    expect(worstGap).toBeLessThan(500);
  });
});
