// One warm workerd process: its keep-alive channel, heartbeat and resource readings.
import { readFileSync } from "node:fs";
import { IdleCpuWatch } from "./idle-cpu-watch.js";
import { MemoryGauge } from "./memory-gauge.js";
import { execFile } from "node:child_process";
import { SandboxClient } from "./sandbox-client.js";
import { launchWorkerd, type WorkerdExit, type WorkerdHandle } from "./workerd-launcher.js";
import { hostEndpointAddress } from "./host-router.js";
import { buildRunMessage } from "./supervisor-protocol.js";
import { compileGuestModule } from "../compile/guest-module.js";

const HEARTBEAT_INTERVAL_MS = 100;
/** A ping unanswered this long marks the process as unresponsive (a guest hogs it). */
export const UNRESPONSIVE_AFTER_MS = 250;
/** While a deadline's guest may still be running, a ping unanswered this long kills the process. */
const SUSPECT_KILL_AFTER_MS = 2_000;
/** With no run in flight, a ping unanswered this long kills the process. */
const IDLE_STALL_KILL_MS = 1_000;

/** One run's place on a process. */
export interface RunTicket {
  /** When the run was placed here. */
  placedAt: number;
  /** The guest has reported that it started (until then the run has done nothing). */
  started: boolean;
}

export type ProcessState = "ready" | "unresponsive" | "retiring" | "dead";

export interface ProcessLoss {
  reason: "killed" | "out-of-memory" | "crashed";
  detail: string;
}


let nextProcessNumber = 1;

/** Compiled like any guest, so the warm-up exercises exactly the path real runs take. */
const WARMUP_SOURCE = 'console.log("%s %o", "warm", { up: [1] }); process.stdout.write("."); await new Promise((r) => setTimeout(r, 0));';
let warmupModule: string | undefined;

export class SandboxProcess {
  readonly id = `p${nextProcessNumber++}`;
  readonly pid: number;
  /** Keep-alive HTTP client of the process's direct socket. */
  readonly dispatcher: SandboxClient;
  state: ProcessState = "ready";
  runsStarted = 0;
  /** Runs placed here, in the order they were placed. */
  readonly inFlight = new Set<RunTicket>();
  /** When the process last answered a ping (or started). */
  lastPongAt = performance.now();
  unresponsiveSince: number | undefined;
  loss: ProcessLoss | undefined;
  readonly lost: Promise<ProcessLoss>;
  private pingStartedAt: number | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private killRequested: ProcessLoss | undefined;
  private readonly stateListeners = new Set<() => void>();
  idleDataKb = 0;
  private readonly memory: MemoryGauge;
  private readonly idleGaugeKb: number;

  private constructor(private readonly handle: WorkerdHandle) {
    this.pid = handle.pid;
    this.dispatcher = new SandboxClient(handle.url, { connections: 128 });
    this.idleDataKb = readStatusKb(this.pid, "VmData") ?? 0;
    this.memory = new MemoryGauge(this.pid);
    this.idleGaugeKb = this.memory.dataKb() ?? 0;
    this.idleWatch = new IdleCpuWatch(this.pid, { onSuspect: () => this.startHeartbeat(), onBurning: () => this.killEscapedGuest() });
    this.lost = handle.exited.then((exit) => this.onExit(exit));
  }

  /**
   * `defaultMemoryCapMb` is applied while the process boots, so most handoffs need no prlimit.
   * `warmUp`: a process started ahead of demand pays its first isolate's one-off costs with a
   * throwaway run; one a run waits for does not (that run pays about as much, so a throwaway
   * run first would only add its own ~70 ms).
   */
  static async launch(defaultMemoryCapMb?: number, { warmUp = true }: { warmUp?: boolean } = {}): Promise<SandboxProcess> {
    const started = performance.now();
    const launching = launchWorkerd(await hostEndpointAddress());
    launching.catch(() => {});
    // Once workerd is spawned (a few microtasks on), the warm-up guest is compiled while it
    // starts, which loads the compiler for the runs to come.
    await new Promise<void>((resolve) => setImmediate(resolve));
    warmupModule ??= compileGuestModule(WARMUP_SOURCE);
    const sandbox = new SandboxProcess(await launching);
    const launched = performance.now();
    // SECURE_EXEC_WARMUP=0 turns it off for every process (the CLI's one-shot `run`).
    await Promise.all([
      warmUp && process.env.SECURE_EXEC_WARMUP !== "0" ? sandbox.warmGuestPath(warmupModule) : undefined,
      defaultMemoryCapMb === undefined ? undefined : sandbox.applyMemoryLimit(defaultMemoryCapMb),
    ]);
    sandbox.bootTimings = [
      ...sandbox.handle.bootPhases,
      { phase: "workerd-start", durationMs: launched - started },
      { phase: "guest-warmup", durationMs: performance.now() - launched },
    ];
    return sandbox;
  }

  /** The RLIMIT_DATA cap in force, in MiB above the idle footprint. */
  memoryCapMb: number | undefined;

  /** How this process booted (it may have booted ahead of demand, as a spare). */
  bootTimings: { phase: string; durationMs: number }[] = [];

  /**
   * The first run of a process pays one-off compilation (prelude, node:util, node:stream):
   * a throwaway run pays it before any guest arrives.
   */
  private async warmGuestPath(guestModule: string): Promise<void> {
    try {
      const response = await this.dispatcher.request({
        path: "/run",
        method: "POST",
        body: buildRunMessage({ guestModule, network: false, env: {}, cwd: "/", outputBytes: 1024, returnBytes: 1024 }, "", `secure-exec-warmup-${this.id}`),
      });
      await response.body.text();
    } catch {
      // A process that cannot warm up shows it on its first run.
    }
  }

  onStateChange(listener: () => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private setState(state: ProcessState): void {
    if (this.state === state || this.state === "dead") return;
    this.state = state;
    for (const listener of this.stateListeners) listener();
  }

  /** Caps the process's writable private memory (RLIMIT_DATA): a heap bomb aborts only it. */
  async applyMemoryLimit(capMb: number): Promise<void> {
    if (this.memoryCapMb === capMb) return;
    this.memoryCapMb = capMb;
    const limitBytes = this.idleDataKb * 1024 + capMb * 1024 * 1024;
    await new Promise<void>((resolve) => {
      execFile("prlimit", [`--pid=${this.pid}`, `--data=${limitBytes}:${limitBytes}`], () => resolve());
    });
  }

  isAlive(): boolean {
    if (this.state === "dead") return false;
    try {
      process.kill(this.pid, 0);
      return readStatusKb(this.pid, "VmRSS") !== undefined;
    } catch {
      return false;
    }
  }

  residentMemoryKb(): number | undefined {
    return readStatusKb(this.pid, "VmRSS");
  }

  /** How much the process's data memory grew since it was idle (0 once it is gone). */
  dataGrowthKb(): number {
    const now = this.memory.dataKb();
    return now === undefined ? 0 : now - this.idleGaugeKb;
  }

  beginRun(run: RunTicket): void {
    this.runsStarted += 1;
    this.inFlight.add(run);
    this.idleWatch.busy();
    this.startHeartbeat();
    if (this.state !== "dead") this.idleWatch.start();
  }

  endRun(run: RunTicket): void {
    if (!this.inFlight.delete(run)) return;
    if (this.inFlight.size === 0) {
      this.idleWatch.idle();
      if (this.state === "ready" && performance.now() >= this.suspectUntil) this.stopHeartbeat();
    }
    for (const listener of this.stateListeners) listener();
  }

  /** Work of the host's own with no run in flight (a preload): not a guest's. */
  noteHostWork(): void {
    if (this.inFlight.size === 0) this.idleWatch.idle();
  }

  /**
   * While the process is stuck, the run that may be what holds it among those that have not
   * reported a start: the earliest placed before the process stopped answering (one placed
   * later reached a process that was already held, so it cannot have begun).
   */
  possibleHolder(): RunTicket | undefined {
    const since = this.unresponsiveSince ?? performance.now();
    for (const run of this.inFlight) if (!run.started && run.placedAt <= since) return run;
    return undefined;
  }

  /** With no run in flight, CPU burnt is an escaped guest's. */
  private readonly idleWatch: IdleCpuWatch;

  private killEscapedGuest(): void {
    void this.kill({ reason: "killed", detail: "guest code kept running after its run ended" });
  }

  retire(): void {
    if (this.state === "dead") return;
    this.setState("retiring");
    if (this.inFlight.size === 0) void this.kill({ reason: "killed", detail: "recycled" });
  }

  /** After a deadline: no new runs until the process shows it is not held by the guest. */
  quarantine(): void {
    if (this.state !== "ready") return;
    this.unresponsiveSince ??= performance.now();
    this.setState("unresponsive");
  }

  /** For `windowMs`, a ping unanswered for long means a runaway: the process is killed. */
  suspectRunaway(windowMs: number): void {
    this.suspectUntil = performance.now() + windowMs;
    this.startHeartbeat();
  }

  private suspectUntil = 0;

  /** Answers whether the process responds within `withinMs`. */
  async probe(withinMs: number): Promise<boolean> {
    if (this.state === "dead") return false;
    try {
      const response = await this.dispatcher.request({
        path: "/ping",
        method: "GET",
        signal: AbortSignal.timeout(withinMs),
      });
      await response.body.text();
      this.markResponsive();
      return true;
    } catch {
      return false;
    }
  }

  kill(loss: ProcessLoss): Promise<void> {
    this.killRequested ??= loss;
    this.stopHeartbeat();
    this.idleWatch.stop();
    return this.handle.kill();
  }

  private markResponsive(): void {
    this.lastPongAt = performance.now();
    this.unresponsiveSince = undefined;
    if (this.state === "unresponsive") this.setState("ready");
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer || this.state === "dead") return;
    this.heartbeatTimer = setInterval(() => this.beat(), HEARTBEAT_INTERVAL_MS);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.pingStartedAt = undefined;
  }

  private beat(): void {
    const now = performance.now();
    if (this.pingStartedAt !== undefined) {
      const idleSince = this.idleWatch.idleSinceMs;
      if (idleSince !== undefined && now - Math.max(this.pingStartedAt, idleSince) > IDLE_STALL_KILL_MS) {
        this.killEscapedGuest();
        return;
      }
      if (now - this.pingStartedAt > UNRESPONSIVE_AFTER_MS && this.state === "ready") {
        this.unresponsiveSince = this.pingStartedAt;
        this.setState("unresponsive");
      }
      if (now < this.suspectUntil && now - this.pingStartedAt > SUSPECT_KILL_AFTER_MS) {
        void this.kill({ reason: "killed", detail: "a guest overran its limit" });
        return;
      }
      for (const listener of this.stateListeners) listener();
      return;
    }
    this.pingStartedAt = now;
    this.dispatcher
      .request({ path: "/ping", method: "GET" })
      .then((response) => response.body.text())
      .then(
        () => {
          this.pingStartedAt = undefined;
          this.markResponsive();
          if (this.inFlight.size === 0 && this.state !== "unresponsive" && performance.now() >= this.suspectUntil) {
            this.stopHeartbeat();
          }
        },
        () => {
          this.pingStartedAt = undefined;
        },
      );
  }

  private onExit(exit: WorkerdExit): ProcessLoss {
    this.memory.close();
    this.stopHeartbeat();
    this.idleWatch.stop();
    const outOfMemory = /out of memory|allocation failed|OOM/i.test(exit.stderrTail);
    this.loss = outOfMemory
      ? { reason: "out-of-memory", detail: "the sandbox process ran out of memory" }
      : (this.killRequested ?? { reason: "crashed", detail: "the sandbox process exited unexpectedly" });
    this.setState("dead");
    void this.dispatcher.destroy().catch(() => {});
    void this.handle.kill();
    return this.loss;
  }
}

/** A `/proc/<pid>/status` field in kB (undefined once the process is gone). */
export function readStatusKb(pid: number, field: string): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`${field}:\\s+(\\d+)`).exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
