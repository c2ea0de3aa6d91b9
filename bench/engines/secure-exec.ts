// secure-exec itself, driven only through its public SDK.
import { NodeRuntime } from "../../runtime/index.js";
import type { BootTiming, NodeRuntimeOptions, ToolDefinitions } from "../../runtime/index.js";
import { sleep } from "../stats.js";
import type { Workload } from "../workloads.js";
import { MIB, processCpuMs, type ColdStart, type DiagnosticOptions, type Engine, type GuestOutput, type ResidentSession, type RunOptions } from "./engine.js";

function wrap(body: string): string {
  return [
    `const print = (x) => console.log(x);`,
    `const hostAdd = (a, b) => callHostTool("add", { a, b });`,
    `const ret = (v) => __return(v);`,
    body,
  ].join("\n");
}

interface ResidentRunnerLike {
  exec(code: string, options?: { timeout?: number }): Promise<{ exitCode: number; stderr: string }>;
  dispose(): Promise<void> | void;
}

interface MaybeResident {
  createResidentRunner?: () => Promise<ResidentRunnerLike>;
}

/**
 * What a hostile guest sends the host at once: a 16 MiB `__return` (over the default
 * limits.returnBytes), 16 MiB of stdout in one write, and 8 MiB host-call bodies (raw, with and
 * without its run's token, and through callHostTool).
 */
const ATTACKS = [
  '__return("y".repeat(16 << 20))',
  'process.stdout.write("y".repeat(16 << 20))',
  `import { env } from "cloudflare:workers";
   const keepAlive = setInterval(() => {}, 1000);
   const host = env.HOST;
   const send = host.fetch;
   let token;
   host.fetch = function (url, init) { token = init.headers["x-secure-exec-run"]; return send.call(this, url, init); };
   try { await callHostTool("add", { a: 1, b: 2 }); } catch {}
   const body = JSON.stringify({ kind: "tool", name: "add", input: "b".repeat(8 << 20) });
   for (const headers of [{}, { "x-secure-exec-run": token }, { "x-secure-exec-run": token }]) {
     const response = await send.call(host, "http://host/call", { method: "POST", headers, body });
     await response.text();
   }
   try { await callHostTool("add", "b".repeat(8 << 20)); } catch {}
   clearInterval(keepAlive);`,
];

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function sumRssKb(runtime: NodeRuntime): { kb: number; processes: number } {
  const processes = runtime.stats().processes;
  return { kb: processes.reduce((total, entry) => total + (entry.rssKb ?? 0), 0), processes: processes.length };
}

export class SecureExecEngine implements Engine {
  readonly key = "secure_exec";
  readonly label = "secure-exec";
  readonly isolation = "fresh dynamic worker (V8 isolate) per run in a pooled workerd process";
  readonly notes: string[] = [];
  private waitHandler: () => Promise<boolean> = async () => true;
  private readonly extraCounters: Record<string, number | null> = {};
  private readonly pidsSeen = new Set<number>();

  private constructor(
    private readonly runtime: NodeRuntime,
    readonly firstRunMs: number,
    readonly bootPhases: BootTiming[],
    /** Pause before each measured create so the host's spare process is ready again. */
    private readonly spareGapMs: number,
  ) {}

  private static tools(engine: () => SecureExecEngine | undefined): ToolDefinitions {
    return {
      add: {
        description: "adds two numbers",
        inputSchema: {
          type: "object",
          properties: { a: { type: "number" }, b: { type: "number" } },
          required: ["a", "b"],
        },
        handler: ({ a, b }: { a: number; b: number }) => a + b,
      },
      wait: {
        description: "waits until the benchmark opens its gate",
        inputSchema: { type: "object" },
        handler: () => engine()?.waitHandler() ?? true,
      },
    };
  }

  /** The very first create of the process (no spare workerd yet) up to its first exec result. */
  static async create(spareGapMs: number): Promise<SecureExecEngine> {
    let engine: SecureExecEngine | undefined;
    const phases: BootTiming[] = [];
    const options: NodeRuntimeOptions = {
      tools: SecureExecEngine.tools(() => engine),
      onBootTiming: (timing) => phases.push(timing),
    };
    const started = performance.now();
    const runtime = await NodeRuntime.create(options);
    const created = performance.now();
    const first = await runtime.exec("console.log(1)");
    const firstRunMs = performance.now() - started;
    if (first.exitCode !== 0 || first.stdout !== "1\n") {
      await runtime.dispose();
      throw new Error(`secure-exec: first exec failed: ${first.exitCode} ${first.stderr}`);
    }
    phases.push({ phase: "first exec", durationMs: firstRunMs - (created - started) });
    engine = new SecureExecEngine(runtime, firstRunMs, phases, spareGapMs);
    return engine;
  }

  async run(workload: Workload, options: RunOptions = {}): Promise<GuestOutput> {
    const result = await this.runtime.run(wrap(workload.body), options.timeoutMs === undefined ? undefined : { timeout: options.timeoutMs });
    for (const pid of this.runtime.processIds()) this.pidsSeen.add(pid);
    if (result.exitCode === 0) return { stdout: result.stdout, value: result.value, ok: true };
    return { stdout: result.stdout, value: undefined, ok: false, error: `exit ${result.exitCode}: ${result.stderr.slice(0, 300)}` };
  }

  /** A second runtime created while this one stays alive ("host warm"), up to its first exec result. */
  async coldStart(): Promise<ColdStart> {
    await sleep(this.spareGapMs);
    const started = performance.now();
    const runtime = await NodeRuntime.create({ tools: SecureExecEngine.tools(() => undefined) });
    const created = performance.now();
    try {
      const result = await runtime.exec("console.log(1)");
      const done = performance.now();
      if (result.exitCode !== 0 || result.stdout !== "1\n") throw new Error(`secure-exec: exec after create failed: ${result.stderr}`);
      return { totalMs: done - started, phases: { create_ms: created - started, first_exec_ms: done - created } };
    } finally {
      await runtime.dispose();
    }
  }

  /** Uses `createResidentRunner()` once the runtime has one that works; null until then. */
  async openResident(): Promise<ResidentSession | null> {
    const candidate = this.runtime as unknown as MaybeResident;
    if (typeof candidate.createResidentRunner !== "function") return null;
    let runner: ResidentRunnerLike;
    try {
      runner = await candidate.createResidentRunner.call(this.runtime);
    } catch (error) {
      this.notes.push(`resident runner unavailable: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
    return {
      eval: async (code) => {
        const result = await runner.exec(code, { timeout: 10_000 });
        if (result.exitCode !== 0) throw new Error(`resident exec: exit ${result.exitCode}: ${result.stderr.slice(0, 200)}`);
      },
      dispose: async () => {
        await runner.dispose();
      },
    };
  }

  /**
   * `count` runs that each block in a host tool call until all of them are in flight;
   * RSS of the runtime's workerd processes is read then, minus the reading just before.
   */
  async rssPerConcurrentRunMb(count: number): Promise<number | null> {
    await sleep(200);
    const idle = sumRssKb(this.runtime);
    let arrived = 0;
    let openGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let allArrived: () => void = () => {};
    const everyoneIn = new Promise<void>((resolve) => (allArrived = resolve));
    this.waitHandler = async () => {
      arrived += 1;
      if (arrived === count) allArrived();
      await gate;
      return true;
    };
    const runs = Array.from({ length: count }, () => this.runtime.run(`await callHostTool("wait", {}); __return(1);`));
    let timedOut = false;
    await Promise.race([everyoneIn, sleep(30_000).then(() => (timedOut = true))]);
    await sleep(50);
    const busy = sumRssKb(this.runtime);
    openGate();
    const results = await Promise.all(runs);
    this.waitHandler = async () => true;
    const failed = results.filter((result) => result.exitCode !== 0).length;
    this.extraCounters.rss_burst_processes = busy.processes;
    this.extraCounters.rss_idle_mb = idle.kb / 1024;
    this.extraCounters.rss_burst_mb = busy.kb / 1024;
    if (timedOut || failed > 0) {
      this.notes.push(`RSS burst: ${arrived}/${count} runs reached the gate, ${failed} failed`);
      return null;
    }
    if (busy.processes !== idle.processes) {
      this.notes.push(`RSS burst: the pool went from ${idle.processes} to ${busy.processes} processes during the burst`);
    }
    return ((busy.kb - idle.kb) * 1024) / MIB / count;
  }

  extras(): Record<string, number | null> {
    return {
      ...this.extraCounters,
      processes_lost: this.runtime.stats().processesLost,
      workerd_processes_used: this.pidsSeen.size,
    };
  }

  /**
   * Where a run's time goes (workerd CPU vs host CPU over a window of sequential runs on one
   * process), how much each run leaves behind in the process, and the throughput the engine
   * reaches when the per-process memory cap is out of the way.
   */
  async diagnostics(options: DiagnosticOptions, log: (line: string) => void): Promise<Record<string, number | null>> {
    const out: Record<string, number | null> = {
      workerd_cpu_ms_per_run: null,
      host_cpu_ms_per_run: null,
      rss_growth_mb_per_sequential_run: null,
    };
    // A runtime of its own with one process that is not recycled inside the window, warmed
    // first: a window of 100 runs resolves /proc's 10 ms ticks to 0.1 ms per run, and RSS
    // read over it is the growth that stays, not the allocator's first-runs ramp.
    const window = 100;
    log(`  secure-exec: CPU split and RSS over ${window} sequential runs`);
    const probe = await NodeRuntime.create({ limits: { processes: 1, runsPerProcess: 10_000 } });
    try {
      for (let index = 0; index < 30; index += 1) await probe.exec(`console.log(${index})`);
      const [before] = probe.stats().processes;
      const cpuBefore = before === undefined ? undefined : processCpuMs(before.pid);
      const hostBefore = process.cpuUsage();
      // Code not seen in the warm-up: code seen twice gets an isolate preloaded, which is not a run's.
      for (let index = 0; index < window; index += 1) await probe.exec(`console.log(${index + 1000})`);
      const host = process.cpuUsage(hostBefore);
      const [after] = probe.stats().processes;
      const cpuAfter = after === undefined ? undefined : processCpuMs(after.pid);
      if (before && after && before.pid === after.pid && cpuBefore !== undefined && cpuAfter !== undefined) {
        out.workerd_cpu_ms_per_run = (cpuAfter - cpuBefore) / window;
        out.host_cpu_ms_per_run = (host.user + host.system) / 1000 / window;
        if (before.rssKb !== undefined && after.rssKb !== undefined) out.rss_growth_mb_per_sequential_run = (after.rssKb - before.rssKb) / 1024 / window;
      }
    } finally {
      await probe.dispose();
    }

    Object.assign(out, await this.underAttack(options.throughputRounds > 1 ? 4 : 2, log));

    log(`  secure-exec: throughput with limits.memoryMb = 4096, ${options.throughputRounds}×${options.concurrency}`);
    const roomy = await NodeRuntime.create({ limits: { memoryMb: 4096 } });
    try {
      for (let index = 0; index < 3; index += 1) await roomy.exec(`console.log(${index})`);
      let completed = 0;
      let failed = 0;
      let elapsed = 0;
      for (let round = 0; round < options.throughputRounds; round += 1) {
        const begun = performance.now();
        const results = await Promise.all(Array.from({ length: options.concurrency }, () => roomy.exec(`console.log("ok")`)));
        elapsed += performance.now() - begun;
        for (const result of results) {
          if (result.exitCode === 0 && result.stdout === "ok\n") completed += 1;
          else failed += 1;
        }
      }
      out.throughput_exec_per_s_memoryMb_4096 = (completed / elapsed) * 1000;
      out.throughput_failed_runs_memoryMb_4096 = failed;
    } finally {
      await roomy.dispose();
    }
    return out;
  }

  /**
   * The host's worst event-loop gap (a 5 ms ticker, beyond its tick) while another runtime's
   * guest runs `ATTACKS` over and over, and this runtime's trivial-run p50 meanwhile. On a
   * loaded machine a gap is mostly time the host waited for a CPU, so the CPU the process
   * used inside its gaps is reported too (all its threads: an upper bound on its own work),
   * and the worst gap of the same bystander runs without an attack (the machine's noise).
   */
  private async underAttack(rounds: number, log: (line: string) => void): Promise<Record<string, number | null>> {
    log(`  secure-exec: host stall while a guest floods the host, ${rounds} rounds`);
    const trivial = async (): Promise<number> => {
      const begun = performance.now();
      const result = await this.runtime.run("__return(1)");
      if (result.value !== 1) throw new Error(`bystander run failed: ${result.exitCode} ${result.stderr.slice(0, 200)}`);
      return performance.now() - begun;
    };
    const tickMs = 5;
    let lastTick = performance.now();
    let lastCpu = process.cpuUsage();
    let worstGap = 0;
    let worstGapCpu = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      const cpu = process.cpuUsage();
      const gap = now - lastTick - tickMs;
      worstGap = Math.max(worstGap, gap);
      if (gap > 0) worstGapCpu = Math.max(worstGapCpu, (cpu.user + cpu.system - lastCpu.user - lastCpu.system) / 1000);
      lastTick = now;
      lastCpu = cpu;
    }, tickMs);
    const restart = (): void => {
      lastTick = performance.now();
      lastCpu = process.cpuUsage();
      worstGap = 0;
      worstGapCpu = 0;
    };
    const unloaded: number[] = [];
    const bystander: number[] = [];
    let quietGap = 0;
    const attacker = await NodeRuntime.create({ limits: { processes: 1 }, tools: SecureExecEngine.tools(() => undefined) });
    try {
      await attacker.run("__return(1)");
      restart();
      for (let index = 0; index < 30; index += 1) unloaded.push(await trivial());
      quietGap = worstGap;
      restart();
      let attacking = true;
      const attacks = (async () => {
        try {
          for (let round = 0; round < rounds; round += 1) {
            for (const code of ATTACKS) await attacker.run(code, { timeout: 60_000 });
          }
        } finally {
          attacking = false;
        }
      })();
      while (attacking) bystander.push(await trivial());
      await attacks;
    } finally {
      clearInterval(ticker);
      await attacker.dispose();
    }
    return {
      host_stall_ms_max_under_attack: Math.max(0, worstGap),
      host_stall_cpu_ms_max_under_attack: worstGapCpu,
      host_stall_ms_max_no_attack: Math.max(0, quietGap),
      bystander_ms_p50_under_attack: median(bystander),
      bystander_ms_p50_unloaded: median(unloaded),
      bystander_runs_under_attack: bystander.length,
    };
  }

  stats(): ReturnType<NodeRuntime["stats"]> {
    return this.runtime.stats();
  }

  async dispose(): Promise<void> {
    await this.runtime.dispose();
  }
}
