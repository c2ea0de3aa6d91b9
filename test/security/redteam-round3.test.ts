// Round three of attacks: work that outlives its run or exec through native timers the
// sandbox does not track, and inputs whose cost lands on the host or another tenant.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { SecureExecExecutor } from "../../runtime/codemode.js";
import { startServer, type RunningServer } from "../../host/service/server.js";
import { createRuntime, expectKilledBetweenExecs, expectServing, runnerPid, sleep, slowestWhile, ticksOver } from "./helpers.js";

/** A guest's busy work: ~`share` of a core in 100 ms slices, from `start` on (a callback). */
const burner = (share: number) => `() => { setInterval(() => { const end = Date.now() + ${Math.round(share * 100)}; while (Date.now() < end) {} }, 100); }`;


describe("work that outlives its run through a native timer", () => {
  let rt: NodeRuntime;
  beforeAll(async () => {
    rt = await createRuntime({ limits: { processes: 1 } });
    await rt.run("__return(0)");
  }, 60_000);
  afterAll(async () => {
    await rt?.dispose();
  });

  it("AbortSignal.timeout fired after a run ended starts no work in its process", async () => {
    const result = await rt.run(
      `const start = ${burner(0.15)};
       AbortSignal.timeout(300).addEventListener("abort", start);
       __return("left");`,
    );
    expect(result.value).toBe("left");
    await sleep(600);
    const pids = rt.processIds();
    const used = (await Promise.all(pids.map((pid) => ticksOver(pid, 3_000)))).reduce((sum, ticks) => sum + ticks, 0);
    // Idle processes use ~0-3 ticks in 3 s; a 15 % burner ~45 (below the idle watch's 20 %).
    expect(used).toBeLessThan(25);
    await expectServing(rt);
  }, 60_000);
});

describe("work that outlives a resident exec through a native timer", () => {
  let rt: NodeRuntime;
  beforeAll(async () => {
    rt = await createRuntime();
  }, 60_000);
  afterAll(async () => {
    await rt?.dispose();
  });
  
  // A native timer (node:timers: workerd's own, which the runner does not track) can call guest
  // code with no exec in flight; timers it starts then never fire (resident-worker.js, installTimers).
  it("an interval started by a native timer after the exec ended does not keep running", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = await runner.exec(
        `globalThis.ticks = 0;
         const start = () => { setInterval(() => { globalThis.ticks++; const end = Date.now() + 50; while (Date.now() < end) {} }, 100); };
         process.getBuiltinModule("node:timers").setTimeout(start, 200);
         "ended"`,
        { timeout: 10_000 },
      );
      expect(result).toMatchObject({ exitCode: 0, value: "ended" });
      await sleep(500);
      const used = await ticksOver(runnerPid(runner), 2_000);
      const later = await runner.exec("globalThis.ticks");
      // Idle, a runner uses ~0-2 ticks in 2 s; the interval ~100.
      expect({ quiet: used < 25, ticks: later.value }).toEqual({ quiet: true, ticks: 0 });
    } finally {
      await runner.dispose();
    }
  }, 60_000);

  // The same route runs a busy loop with no exec in flight (no deadline is armed): the host
  // watches a runner's CPU between execs and kills one that burns (host/engine/idle-cpu-watch.ts).
  it("a busy loop started by a native timer between execs is ended", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = await runner.exec(`process.getBuiltinModule("node:timers").setTimeout(() => { for (;;) {} }, 200); "ended"`, { timeout: 10_000 });
      expect(result).toMatchObject({ exitCode: 0, value: "ended" });
      await sleep(1_500);
      const pid = runnerPid(runner);
      const used = await ticksOver(pid, 2_000);
      // Spinning, ~200 ticks in 2 s; a watch would have killed it (0).
      expect(used).toBeLessThan(50);
    } finally {
      await runner.dispose();
    }
    await expectServing(rt);
  }, 60_000);

  // Below the sandbox processes' 20 %: native intervals (node:timers) that each burn a little.
  it("native intervals that burn 15 % of a core between execs end the runner", async () => {
    await expectKilledBetweenExecs(
      rt,
      `const timers = process.getBuiltinModule("node:timers");
       timers.setTimeout(() => timers.setInterval(() => { const end = Date.now() + 15; while (Date.now() < end) {} }, 100), 200);
       "ended"`,
      20_000,
    );
  }, 60_000);

  it("timeout signals and scheduler.wait (even from its prototype) belong to the exec that made them", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const burn = "const end = Date.now() + 15; while (Date.now() < end) {}";
      const result = await runner.exec(
        `globalThis.hops = 0;
         const wait = Object.getPrototypeOf(scheduler).wait;
         const loop = () => { globalThis.hops++; ${burn}; AbortSignal.timeout(100).addEventListener("abort", loop); };
         AbortSignal.timeout(100).addEventListener("abort", loop);
         AbortSignal.timeout(100).addEventListener("abort", async () => { for (;;) { await wait.call(scheduler, 100); globalThis.hops++; ${burn}; } });
         "ended"`,
        { timeout: 10_000 },
      );
      // As in Node, where timeout signals are unref'd: the exec ends at once, and they never fire.
      expect(result).toMatchObject({ exitCode: 0, value: "ended" });
      await sleep(1_000);
      expect((await runner.exec("globalThis.hops")).value).toBe(0);
    } finally {
      await runner.dispose();
    }
  }, 60_000);
});

describe("deep paths in a writable mount, applied by the host", () => {
  let hostDir: string;
  let rt: NodeRuntime;
  let guarded: NodeRuntime;
  let bystander: NodeRuntime;
  beforeAll(async () => {
    hostDir = mkdtempSync(join(tmpdir(), "secure-exec-redteam-deep-"));
    const mounts = [{ hostPath: hostDir, guestPath: "/rw", readOnly: false }];
    [rt, guarded, bystander] = await Promise.all([
      createRuntime({ mounts }),
      createRuntime({ mounts, permissions: { fs: { default: "allow", rules: [{ pattern: "/rw/secret/*", action: "deny" }] } } }),
      createRuntime(),
    ]);
    await bystander.run("__return(0)");
  }, 60_000);
  afterAll(async () => {
    await Promise.all([rt?.dispose(), guarded?.dispose(), bystander?.dispose()]);
    rmSync(hostDir, { recursive: true, force: true });
  });

  // Each write-back into a mount used to resolve its parent with a realpath (one lstat per
  // component) on the host's event loop: ~45 ms per file 1,000 directories deep, seconds of
  // stall for everyone. One apply() now resolves each directory once, walking down from the
  // mount's root (host/capabilities/fs/virtual-fs.ts: MountDirs).
  it("150 files written 1,000 directories deep do not stall another runtime", async () => {
    const deep = `/rw${"/a".repeat(1_000)}`;
    const attack = rt.run(
      `import fs from "node:fs";
       fs.mkdirSync(${JSON.stringify(deep)}, { recursive: true });
       for (let i = 0; i < 150; i++) fs.writeFileSync(${JSON.stringify(deep)} + "/f" + i, "x");
       await new Promise((resolve) => setTimeout(resolve, 200));
       __return(fs.readdirSync(${JSON.stringify(deep)}).length);`,
      { timeout: 120_000 },
    );
    const slowest = await slowestWhile(bystander, attack);
    expect((await attack).value).toBe(150);
    expect(slowest).toBeLessThan(3_000);
  }, 180_000);

  // With a permissions.fs policy every path of the change list is re-checked at the path it
  // really has; that walked up one component at a time with a realpath per step, O(depth^2)
  // per path: these 30 held the host for minutes. It now shares the apply's resolved
  // directories and stops at the first missing component (MountDirs). The tree the test above
  // leaves makes the first 1,000 components exist.
  it("a forged list of deep deletes under a policy does not stall another runtime", async () => {
    const forged = guarded.run(
      `import fs from "node:fs";
       import { bridge } from "./secure-exec-bridge.js";
       await new Promise((resolve) => setTimeout(resolve, 200));
       const deep = "/rw" + "/a".repeat(1500);
       void fs; // a run that imports node:fs is shipped the filesystem, and its changes are applied
       const deletes = Array.from({ length: 30 }, (_, i) => deep + "/n" + i);
       bridge.fsChanges = () => ({ deletes, writes: {} });
       __return(deletes.length);`,
      { timeout: 120_000 },
    );
    const slowest = await slowestWhile(bystander, forged);
    expect((await forged).exitCode).toBe(0);
    expect(slowest).toBeLessThan(3_000);
    await expectServing(guarded);
  }, 180_000);

  it("the rule still holds for a deep path (control)", async () => {
    const result = await guarded.run(
      `import fs from "node:fs";
       let code = "";
       try { fs.mkdirSync("/rw/secret", { recursive: true }); fs.writeFileSync("/rw/secret/k", "x"); } catch (error) { code = error.code; }
       __return(code);`,
    );
    expect(result.value).toBe("EACCES");
    expect(readdirSync(hostDir).includes("secret") ? readdirSync(join(hostDir, "secret")) : []).toEqual([]);
  }, 60_000);
});

describe("Code Mode: tool arguments decoded by the host", () => {
  let executor: SecureExecExecutor;
  let bystander: NodeRuntime;
  beforeAll(async () => {
    executor = new SecureExecExecutor({ timeout: 120_000 });
    bystander = await createRuntime();
    expect(await executor.execute("async () => 1", {})).toEqual({ result: 1 });
    await bystander.run("__return(0)");
  }, 60_000);
  afterAll(async () => {
    await Promise.all([executor?.dispose(), bystander?.dispose()]);
  });

  // A tool call's arguments travel as one JSON string inside the host call, which the host
  // call's shape check skips. The dispatch looks the tool up first, then bounds the string
  // (1 MiB, 1,000 levels, 100,000 objects and arrays) and parses it without a reviver
  // (runtime/codemode/values.ts walks it only when the binary tag occurs): ~15 ms per MiB
  // where the reviver took ~0.4 s.
  it("eight 1 MB argument lists in flight do not stall another runtime", async () => {
    const code = `async () => {
      const big = new Array(500000).fill(0);
      for (let round = 0; round < 2; round++) await Promise.all(Array.from({ length: 8 }, () => codemode.echo(big).catch(() => 0)));
      return 1;
    }`;
    const attack = executor.execute(code, { echo: async () => 0 });
    const slowest = await slowestWhile(bystander, attack);
    expect(await attack).toMatchObject({ result: 1 });
    expect(slowest).toBeLessThan(1_500);
  }, 180_000);

  // The reply the other way: a tool that returns its arguments is stringified on the host
  // (without a replacer for plain data) and decoded in the guest.
  it("eight 1 MB argument lists echoed back in flight do not stall another runtime", async () => {
    const code = `async () => {
      const big = new Array(500000).fill(0);
      for (let round = 0; round < 2; round++) await Promise.all(Array.from({ length: 8 }, () => codemode.echo(big).then((echoed) => echoed.length)));
      return 1;
    }`;
    const attack = executor.execute(code, { echo: async (value: unknown) => value });
    const slowest = await slowestWhile(bystander, attack);
    expect(await attack).toMatchObject({ result: 1 });
    expect(slowest).toBeLessThan(1_500);
  }, 180_000);

  it("a deeply nested result string from the guest ends as an error, not a host crash", async () => {
    const result = await executor.execute(
      `async () => { const text = "[".repeat(200000) + "]".repeat(200000); __return({ result: text }); process.exit(0); }`,
      {},
    );
    expect(result.result).toBeUndefined();
    expect(typeof result.error).toBe("string");
    await expectServing(bystander);
  }, 60_000);
});

describe("HTTP service: one tenant's large bodies, another tenant's runs", () => {
  const TOKENS = { heavy: "token-heavy-0123456789ab", quiet: "token-quiet-0123456789ab" } as const;
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(
      { port: 0, tenants: { heavy: { token: TOKENS.heavy, maxConcurrent: 8 }, quiet: { token: TOKENS.quiet } } },
      { defaultMetrics: false, logError: () => {} },
    );
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });
  const post = (token: string, body: unknown) =>
    fetch(`${server.url}/v1/run`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });

  // An env holds at most 4,096 entries and 1 MiB of text (host/api/options-core.ts), counted
  // before the schema: such a body ends as a 400 after one JSON.parse and a key count, where
  // the schema, the merge and the run message of 60,000 entries held this loop ~0.3 s each.
  it("eight 1 MiB bodies of 60,000 env entries each do not stall another tenant", async () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 60_000; i++) env[`K${i}`] = "v";
    const body = { code: "__return(Object.keys(process.env).length)", env };
    expect(JSON.stringify(body).length).toBeLessThan(1024 * 1024);
    await (await post(TOKENS.quiet, { code: "__return(0)" })).json();
    const attacks = Promise.all(Array.from({ length: 8 }, () => post(TOKENS.heavy, body).then((response) => response.json() as Promise<{ value?: number; exitCode?: number }>)));
    let settled = false;
    void attacks.finally(() => (settled = true));
    let slowest = 0;
    do {
      const started = performance.now();
      const reply = (await (await post(TOKENS.quiet, { code: "__return(1)" })).json()) as { value: number };
      expect(reply.value).toBe(1);
      slowest = Math.max(slowest, performance.now() - started);
    } while (!settled);
    for (const reply of await attacks) expect(reply.exitCode === 0 ? reply.value : 60_000).toBeGreaterThanOrEqual(60_000);
    expect(slowest).toBeLessThan(3_000);
  }, 180_000);
});
