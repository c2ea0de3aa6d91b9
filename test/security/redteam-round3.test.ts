// Round three of attacks: work that outlives its run or exec through native timers the
// sandbox does not track, and inputs whose cost lands on the host or another tenant.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import type { ResidentRunner } from "../../host/api/types.js";
import { SecureExecExecutor } from "../../runtime/codemode.js";
import { startServer, type RunningServer } from "../../host/service/server.js";
import { cpuTicks, createRuntime, expectServing, sleep, slowestWhile } from "./helpers.js";

/** A guest's busy work: ~`share` of a core in 100 ms slices, from `start` on (a callback). */
const burner = (share: number) => `() => { setInterval(() => { const end = Date.now() + ${Math.round(share * 100)}; while (Date.now() < end) {} }, 100); }`;

/** CPU ticks (1/100 s) `pid` used over `ms`. */
async function ticksOver(pid: number, ms: number): Promise<number> {
  const before = cpuTicks(pid) ?? 0;
  await sleep(ms);
  return (cpuTicks(pid) ?? before) - before;
}

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
  const pidOf = (runner: ResidentRunner) => (runner as unknown as { processId(): number }).processId();

  // KNOWN GAP: an exec's timers are tracked and cleared when it ends, but a native timer
  // (AbortSignal.timeout; the unwrapped scheduler.wait on scheduler's prototype; any I/O
  // promise) calls guest code with no exec in flight, and a timer it starts then is not
  // tracked (worker-templates/resident-worker.js, installTimers: `if (!owner) return
  // create(...)`). Nothing on the host watches a runner between execs
  // (host/engine/resident-runner.ts has no idle CPU watch like sandbox-process.ts's), so the
  // interval burns CPU until the runner is disposed (an HTTP session: its 10 min idle sweep).
  it.skip("an interval started by a native timer after the exec ended does not keep running", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = await runner.exec(
        `globalThis.ticks = 0;
         const start = () => { setInterval(() => { globalThis.ticks++; const end = Date.now() + 50; while (Date.now() < end) {} }, 100); };
         AbortSignal.timeout(200).addEventListener("abort", start);
         "ended"`,
        { timeout: 10_000 },
      );
      expect(result).toMatchObject({ exitCode: 0, value: "ended" });
      await sleep(500);
      const used = await ticksOver(pidOf(runner), 2_000);
      const later = await runner.exec("globalThis.ticks");
      // Idle, a runner uses ~0-2 ticks in 2 s; the interval ~100.
      expect({ quiet: used < 25, ticks: later.value }).toEqual({ quiet: true, ticks: 0 });
    } finally {
      await runner.dispose();
    }
  }, 60_000);

  // KNOWN GAP: the same route runs a busy loop with no exec in flight, so no deadline is
  // armed: the runner's process spins a core until it is disposed (same cause as above; the
  // fix belongs in host/engine/resident-runner.ts: kill a runner that burns CPU between execs).
  it.skip("a busy loop started by a native timer between execs is ended", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const result = await runner.exec(`AbortSignal.timeout(200).addEventListener("abort", () => { for (;;) {} }); "ended"`, { timeout: 10_000 });
      expect(result).toMatchObject({ exitCode: 0, value: "ended" });
      await sleep(1_500);
      const pid = pidOf(runner);
      const used = await ticksOver(pid, 2_000);
      // Spinning, ~200 ticks in 2 s; a watch would have killed it (0).
      expect(used).toBeLessThan(50);
    } finally {
      await runner.dispose();
    }
    await expectServing(rt);
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

  // KNOWN GAP: each write-back into a mount resolves its parent with realpathSync
  // (host/capabilities/fs/virtual-fs.ts: writableTarget -> resolveInMount), which costs one
  // lstat per component (glibc's realpath too), on the host's event loop: a file 1,000
  // directories deep costs ~45 ms, so 150 honest writes there (1,150 of the 10,000 entries
  // limits.fsFiles allows) stall every runtime for seconds. The fix belongs in virtual-fs.ts:
  // resolve each directory once per apply (walking down from the mount root, memoised).
  it.skip("150 files written 1,000 directories deep do not stall another runtime", async () => {
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

  // KNOWN GAP: with a permissions.fs policy, every path of the change list is re-checked at
  // the path it really has (virtual-fs.ts: valid -> guestDenial -> resolvedGuestPath), which
  // walks up one component at a time with a realpathSync per step: O(depth^2) host work per
  // path, ~120 ms for a 3 KB path that does not exist. A forged list (the guest replaces its
  // bridge's fsChanges) of 10,000 such deletes would hold the host for ~20 minutes; 30 hold it
  // for seconds. Same fix as above: walk down from the mount root, stop at the first missing
  // component.
  it.skip("a forged list of deep deletes under a policy does not stall another runtime", async () => {
    const forged = guarded.run(
      `import { bridge } from "./secure-exec-bridge.js";
       await new Promise((resolve) => setTimeout(resolve, 200));
       const deep = "/rw" + "/a".repeat(1500);
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
