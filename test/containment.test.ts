// A runaway, a heap bomb or a crashed workerd fails only its own runs; everything else
// carries on. These tests start and kill real workerd processes.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

const runtimes: NodeRuntime[] = [];
async function createRuntime(options?: Parameters<typeof NodeRuntime.create>[0]): Promise<NodeRuntime> {
  const rt = await NodeRuntime.create(options);
  runtimes.push(rt);
  return rt;
}
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()));
});

/** Alive and not a zombie. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number, rt?: NodeRuntime): Promise<void> {
  for (let waited = 0; waited < 5_000 && (isRunning(pid) || rt?.processIds().includes(pid)); waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("runaway guests", () => {
  it("kills a while(true) guest at its deadline by killing its process, and replaces the process", async () => {
    const rt = await createRuntime();
    const [firstPid] = rt.processIds();
    const result = await rt.exec("while (true) {}", { timeout: 300 });
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(/time limit of 300 ms exceeded/);
    const after = await rt.exec('console.log("next run")');
    expect(after.stdout).toBe("next run\n");
    // The stuck process is killed once a 500 ms probe confirms it is held: wait for it.
    await waitUntilGone(firstPid!, rt);
    expect(isRunning(firstPid!)).toBe(false);
    expect(rt.processIds()).not.toContain(firstPid);
    expect(rt.stats().processesLost).toBeGreaterThanOrEqual(1);
  });

  it("kills a runaway that starts after an await", async () => {
    const rt = await createRuntime();
    const result = await rt.exec('await new Promise((r) => setTimeout(r, 20)); console.log("spinning"); await new Promise((r) => setTimeout(r, 50)); for (;;) {}', {
      timeout: 1_500,
    });
    expect(result.exitCode).toBe(137);
    expect(result.stdout).toBe("spinning\n");
  });

  it("enforces cpuTimeLimitMs on a guest that hogs its process", async () => {
    const rt = await createRuntime();
    const result = await rt.exec("while (true) {}", { cpuTimeLimitMs: 300 });
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(/CPU time limit of 300 ms exceeded/);
    expect((await rt.exec("console.log(1)")).stdout).toBe("1\n");
  });

  it("a 20-way burst in another runtime completes while a runaway spins beside it", async () => {
    const noisy = await createRuntime();
    const quiet = await createRuntime();
    const runaway = noisy.exec("while (true) {}", { timeout: 8_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) => quiet.run(`await new Promise((r) => setTimeout(r, 5)); __return(${i})`)),
    );
    const burstMs = performance.now() - started;
    expect(burst.map((result) => result.value)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // The runaway is still spinning: the burst did not wait for it.
    expect(burstMs).toBeLessThan(8_000);
    const stillSpinning = await Promise.race([runaway.then(() => "ended"), Promise.resolve("spinning")]);
    expect(stillSpinning).toBe("spinning");
    expect((await runaway).exitCode).toBe(137);
  });

  it("in its own runtime, runs started after a runaway go to another process and finish", async () => {
    const rt = await createRuntime({ limits: { processes: 2 } });
    const runaway = rt.exec("while (true) {}", { timeout: 10_000 });
    // Wait for the heartbeat to notice the stuck process.
    for (let waited = 0; waited < 10_000 && !rt.stats().processes.some((p) => p.state === "unresponsive"); waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const later = await Promise.all(Array.from({ length: 5 }, (_, i) => rt.run(`__return(${i} * 2)`)));
    expect(later.map((result) => result.value)).toEqual([0, 2, 4, 6, 8]);
    const states = rt.stats().processes.map((p) => p.state);
    expect(states).toContain("unresponsive");
    const stuck = await Promise.race([runaway.then(() => "ended"), Promise.resolve("spinning")]);
    expect(stuck).toBe("spinning");
    await rt.dispose();
    await expect(runaway).resolves.toMatchObject({ exitCode: 137 });
  });
});

describe("memory", () => {
  it("stops a heap bomb with the per-process cap and reports it; nothing else dies", async () => {
    const bystander = await createRuntime();
    const rt = await createRuntime({ limits: { memoryMb: 128 } });
    const result = await rt.exec("const hoard = []; while (true) hoard.push(new Array(1e6).fill(1.5));", { timeout: 20_000 });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/ran out of memory \(limits\.memoryMb = 128\)/);
    expect((await rt.exec('console.log("recovered")')).stdout).toBe("recovered\n");
    expect((await bystander.exec('console.log("untouched")')).stdout).toBe("untouched\n");
  });

  it("recycles a process after runsPerProcess runs", async () => {
    const rt = await createRuntime({ limits: { runsPerProcess: 3, processes: 1 } });
    const [firstPid] = rt.processIds();
    for (let i = 0; i < 4; i++) expect((await rt.exec(`console.log(${i})`)).stdout).toBe(`${i}\n`);
    await waitUntilGone(firstPid!, rt);
    expect(rt.processIds()).not.toContain(firstPid);
    expect(isRunning(firstPid!)).toBe(false);
  });
});

describe("crashed processes", () => {
  it("replays a run that had no observable effect when its process dies", async () => {
    const rt = await createRuntime();
    const [pid] = rt.processIds();
    const pending = rt.run("await new Promise((r) => setTimeout(r, 400)); __return('survived')");
    await new Promise((resolve) => setTimeout(resolve, 150));
    process.kill(pid!, "SIGKILL");
    const result = await pending;
    expect(result.exitCode).toBe(0);
    expect(result.value).toBe("survived");
  });

  it("ends a run that already produced output with a clear 'sandbox process lost' result", async () => {
    const rt = await createRuntime();
    const [pid] = rt.processIds();
    const pending = rt.exec('console.log("partial"); await new Promise((r) => setTimeout(r, 2_000))');
    await new Promise((resolve) => setTimeout(resolve, 300));
    process.kill(pid!, "SIGKILL");
    const result = await pending;
    expect(result.exitCode).toBe(137);
    expect(result.stdout).toBe("partial\n");
    expect(result.stderr).toMatch(/sandbox process lost/);
    expect((await rt.exec('console.log("serving")')).stdout).toBe("serving\n");
  });

  it("never lets two runtimes share a process", async () => {
    const a = await createRuntime();
    const b = await createRuntime();
    await Promise.all([a.exec("1"), b.exec("1")]);
    const shared = a.processIds().filter((pid) => b.processIds().includes(pid));
    expect(shared).toEqual([]);
  });
});

describe("a host that dies", () => {
  // The host process runs from the build (test/global-setup.ts keeps it current).
  const hostScript = `
    const { NodeRuntime } = await import(${JSON.stringify(new URL("../dist/runtime/index.js", import.meta.url).href)});
    const rt = await NodeRuntime.create();
    const runner = await rt.createResidentRunner();
    await rt.exec("1");
    console.log(JSON.stringify({ host: process.pid }));
    setInterval(() => {}, 1000);
  `;

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`takes its workerd processes with it when it gets ${signal}`, async () => {
      const { spawn, execFileSync } = await import("node:child_process");
      const host = spawn(process.execPath, ["--input-type=module", "-e", hostScript], { stdio: ["ignore", "pipe", "inherit"] });
      const exited = new Promise((resolve) => host.once("exit", resolve));
      const ready = await new Promise<string>((resolve, reject) => {
        let out = "";
        host.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes("\n")) resolve(out);
        });
        host.once("exit", () => reject(new Error(`the host exited early: ${out}`)));
      });
      expect(JSON.parse(ready).host).toBe(host.pid);
      const children = execFileSync("pgrep", ["-P", String(host.pid)], { encoding: "utf8" }).trim().split("\n").map(Number);
      // Runtime processes, a spare and the resident runner's process.
      expect(children.length).toBeGreaterThanOrEqual(2);
      host.kill(signal);
      await exited;
      for (const pid of children) await waitUntilGone(pid);
      expect(children.filter(isRunning)).toEqual([]);
    });
  }
});
