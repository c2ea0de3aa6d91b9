import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidOptionsError, NodeRuntime, RuntimeDisposedError } from "../runtime/index.js";

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await NodeRuntime.create({ limits: { outputBytes: 1024 } });
});
afterAll(async () => {
  await rt.dispose();
});

const decoder = new TextDecoder();

describe("timeout", () => {
  it("resolves with 137 and a stderr line when the time limit passes", async () => {
    const result = await rt.exec('console.log("started"); await new Promise((r) => setTimeout(r, 10_000))', { timeout: 1_500 });
    expect(result.exitCode).toBe(137);
    expect(result.stdout).toBe("started\n");
    expect(result.stderr).toMatch(/time limit of 1500 ms exceeded/);
  });
  it("does not fire for a run that ends in time", async () => {
    const result = await rt.exec('console.log("quick")', { timeout: 5_000 });
    expect(result).toEqual({ stdout: "quick\n", stderr: "", exitCode: 0 });
  });
});

describe("signal", () => {
  it("rejects with an AbortError when aborted mid-run", async () => {
    const controller = new AbortController();
    const pending = rt.exec("await new Promise((r) => setTimeout(r, 10_000))", { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
  });
  it("rejects with the signal's own reason", async () => {
    const controller = new AbortController();
    const pending = rt.exec("await new Promise((r) => setTimeout(r, 10_000))", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("caller gave up")), 50);
    await expect(pending).rejects.toThrow("caller gave up");
  });
  it("rejects at once when already aborted", async () => {
    const started = performance.now();
    await expect(rt.exec('console.log("never")', { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });
    expect(performance.now() - started).toBeLessThan(1_000);
  });
  it("keeps the runtime serving after an abort", async () => {
    expect((await rt.exec('console.log("still here")')).stdout).toBe("still here\n");
  });
});

describe("onStdout / onStderr", () => {
  it("stream Uint8Array chunks in order, matching the returned strings", async () => {
    const out: string[] = [];
    const err: string[] = [];
    let sawBytes = false;
    const result = await rt.exec(
      'for (let i = 0; i < 5; i++) { console.log("out", i); console.error("err", i); await new Promise((r) => setTimeout(r, 2)); }',
      {
        onStdout: (chunk) => {
          sawBytes ||= chunk instanceof Uint8Array;
          out.push(decoder.decode(chunk));
        },
        onStderr: (chunk) => err.push(decoder.decode(chunk)),
      },
    );
    expect(sawBytes).toBe(true);
    expect(out.length).toBeGreaterThanOrEqual(5);
    expect(out.join("")).toBe(result.stdout);
    expect(err.join("")).toBe(result.stderr);
    expect(result.stdout).toBe("out 0\nout 1\nout 2\nout 3\nout 4\n");
  });
  it("delivers output before the run ends", async () => {
    let firstChunkAt = 0;
    const started = performance.now();
    await rt.exec('console.log("early"); await new Promise((r) => setTimeout(r, 300))', {
      onStdout: () => (firstChunkAt ||= performance.now() - started),
    });
    const total = performance.now() - started;
    expect(firstChunkAt).toBeGreaterThan(0);
    expect(total - firstChunkAt).toBeGreaterThan(200);
  });
});

describe("a listener that throws", () => {
  it("does not change the guest's run; the host gets one warning per listener", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    let calls = 0;
    try {
      const result = await rt.exec('console.log("a"); await new Promise((r) => setTimeout(r, 5)); console.log("b"); console.error("c")', {
        onStdout: () => {
          calls += 1;
          throw new Error("listener bug");
        },
        onStderr: async () => {
          throw new Error("async listener bug");
        },
      });
      expect(result).toEqual({ stdout: "a\nb\n", stderr: "c\n", exitCode: 0 });
      expect(calls).toBe(2);
      await new Promise((resolve) => setImmediate(resolve));
      const ours = warnings.filter((warning) => (warning as Error & { code?: string }).code === "SECURE_EXEC_LISTENER_THREW");
      expect(ours.map((warning) => warning.message)).toEqual([
        "the onStdout listener threw (Error: listener bug); the run goes on",
        "the onStderr listener threw (Error: async listener bug); the run goes on",
      ]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("output cap", () => {
  it("cuts output past limits.outputBytes and appends a marker", async () => {
    const result = await rt.exec('for (let i = 0; i < 200; i++) console.log("0123456789")');
    expect(result.exitCode).toBe(0);
    expect(result.stdout.startsWith("0123456789\n")).toBe(true);
    expect(result.stdout).toContain("[secure-exec: stdout truncated at 1024 bytes]");
    expect(result.stdout.length).toBeLessThan(1024 + 100);
  });
});

describe("option validation", () => {
  it("names a bad create() option", async () => {
    await expect(NodeRuntime.create({ limits: { memoryMb: -1 } })).rejects.toThrow(/limits\.memoryMb/);
    await expect(NodeRuntime.create({ cwd: "relative" } as never)).rejects.toThrow(/"cwd".*absolute/);
    await expect(NodeRuntime.create({ bogus: 1 } as never)).rejects.toThrow(InvalidOptionsError);
    await expect(NodeRuntime.create({ env: { A: 1 } } as never)).rejects.toThrow(/env\.A/);
    await expect(NodeRuntime.create({ env: { A: "x".repeat(1024 * 1024) } })).rejects.toThrow(/"env": has 1048577 characters of names and values; the limit is 1048576 per env/);
  });
  it("names a bad per-call option", async () => {
    await expect(rt.exec("1", { timeout: -5 })).rejects.toThrow(/"timeout"/);
    await expect(rt.exec("1", { stdin: 42 } as never)).rejects.toThrow(/"stdin"/);
    await expect(rt.exec("1", { env: { A: null } } as never)).rejects.toThrow(/env\.A/);
    const crowded = Object.fromEntries(Array.from({ length: 4_097 }, (_, index) => [`K${index}`, "v"]));
    await expect(rt.run("1", { env: crowded })).rejects.toThrow('secure-exec: invalid exec option "env": has 4097 entries; the limit is 4096 per env');
    const full = Object.fromEntries(Array.from({ length: 4_096 }, (_, index) => [`K${index}`, "v"]));
    expect((await rt.run("__return(Object.keys(process.env).length >= 4096)", { env: full })).value).toBe(true);
    await expect(rt.exec(42 as never)).rejects.toThrow(/code must be a string/);
  });
});

describe("dispose", () => {
  it("stops every process it started and rejects later calls", async () => {
    const own = await NodeRuntime.create();
    await own.exec("console.log(1)");
    const pids = own.processIds();
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();
    await own.dispose();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const pid of pids) {
      let alive = true;
      try {
        process.kill(pid, 0);
        alive = !!(await import("node:fs")).readFileSync(`/proc/${pid}/status`, "utf8").match(/State:\s+[^Z]/);
      } catch {
        alive = false;
      }
      expect(alive).toBe(false);
    }
    await expect(own.exec("console.log(1)")).rejects.toThrow(RuntimeDisposedError);
    await expect(own.registerTools({})).rejects.toThrow(/disposed/);
  });
});

describe("diagnostics", () => {
  it("reports boot phases through onBootTiming", async () => {
    const phases: string[] = [];
    const own = await NodeRuntime.create({ onBootTiming: ({ phase, durationMs }) => {
      expect(durationMs).toBeGreaterThanOrEqual(0);
      phases.push(phase);
    } });
    await own.dispose();
    expect(phases).toEqual(expect.arrayContaining(["workerd-start", "guest-warmup", "process-handoff", "memory-limit", "process-ready", "create"]));
  });

  it("getResourceSnapshot() shows processes, runs, memory and files", async () => {
    const own = await NodeRuntime.create({ files: { "/workspace/a.txt": "12345" } });
    try {
      const pending = own.exec("await new Promise((r) => setTimeout(r, 500))");
      await new Promise((resolve) => setTimeout(resolve, 200));
      const snapshot = own.getResourceSnapshot();
      expect(snapshot.processes).toBeGreaterThanOrEqual(1);
      expect(snapshot.runsInFlight).toBe(1);
      expect(snapshot.memory.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
      expect(snapshot.files.bytes).toBe(5);
      expect(snapshot.files.count).toBeGreaterThanOrEqual(1);
      await pending;
      expect(own.getResourceSnapshot().runsInFlight).toBe(0);
    } finally {
      await own.dispose();
    }
  });
});
