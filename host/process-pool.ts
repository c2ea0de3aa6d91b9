// The sandbox processes of one runtime. Runs of different runtimes never share a process.
// Placement: the least-loaded responsive process; a stuck process gets no new runs;
// a lost or recycled process is replaced at once.
import { createHash, randomUUID } from "node:crypto";
import type { RuntimeLimits } from "../runtime/types.js";
import { SandboxProcess } from "./sandbox-process.js";
import { takeProcess } from "./spare-processes.js";
import { memoryCapMb } from "./memory-cap.js";
import type { Dispatcher } from "undici";
import { buildPreloadMessage, type GuestWorker } from "./supervisor-protocol.js";

export class PoolDisposedError extends Error {
  constructor() {
    super("secure-exec: this runtime has been disposed");
    this.name = "RuntimeDisposedError";
  }
}

interface Waiter {
  resolve: (placement: Placement) => void;
  reject: (error: Error) => void;
}

/**
 * An isolate loaded ahead of its run: its `/run` request is already open (the guest's event
 * stream); the run sends its input as a message. Unnamed like every isolate, so dropping it
 * (abort) frees it.
 */
export interface PreloadedIsolate {
  isolateId: string;
  response: Promise<Dispatcher.ResponseData>;
  abort: AbortController;
}

interface PreloadEntry extends PreloadedIsolate {
  sandbox: SandboxProcess;
  loaded: Promise<boolean>;
}

/** A run's place on a process, counted there from the moment it is handed out. */
export interface Placement {
  sandbox: SandboxProcess;
  /** Pass to `sandbox.endRun` when the attempt ends. */
  ticket: object;
}

function place(sandbox: SandboxProcess): Placement {
  const ticket = {};
  // Counted at once, so no other run or a recycle decision can miss it.
  sandbox.beginRun(ticket);
  return { sandbox, ticket };
}

export class ProcessPool {
  readonly processes = new Set<SandboxProcess>();
  private readonly launching = new Set<Promise<SandboxProcess | undefined>>();
  private readonly waiters: Waiter[] = [];
  private disposed = false;
  processesLost = 0;
  /** Code seen before (hash → true), most recent last; repeat code gets preloaded isolates. */
  private readonly seenCode = new Map<string, true>();
  /** Preloaded, never-run isolates: code hash → where they wait. */
  private readonly preloaded = new Map<string, PreloadEntry>();
  preloadHits = 0;

  constructor(
    private readonly limits: RuntimeLimits,
    private readonly onBootTiming?: (phase: string, durationMs: number) => void,
  ) {}

  /** Starts the first process; resolves once it is ready. */
  async warmUp(): Promise<void> {
    await this.launch();
  }

  private responsiveCount(): number {
    let count = 0;
    for (const sandbox of this.processes) if (sandbox.state === "ready") count += 1;
    return count;
  }

  private pick(): SandboxProcess | undefined {
    let best: SandboxProcess | undefined;
    for (const sandbox of this.processes) {
      if (sandbox.state !== "ready") continue;
      if (sandbox.inFlight.size >= this.limits.concurrentRunsPerProcess) continue;
      if (!best || sandbox.inFlight.size < best.inFlight.size) best = sandbox;
    }
    return best;
  }

  async acquire(exclude?: SandboxProcess): Promise<Placement> {
    if (this.disposed) throw new PoolDisposedError();
    const picked = this.pick();
    if (picked && picked !== exclude) return place(picked);
    this.growIfNeeded();
    return new Promise<Placement>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  private growIfNeeded(): void {
    const pending = this.launching.size;
    const total = this.processes.size + pending;
    const stuck = this.processes.size - this.responsiveCount();
    // Stuck processes do not count against the cap (up to twice the cap in all), so
    // a runaway never starves the runs that come after it.
    const cap = Math.min(this.limits.processes + stuck, this.limits.processes * 2);
    if (total < cap && (pending === 0 || this.waiters.length > pending * this.limits.concurrentRunsPerProcess)) {
      void this.launch();
    }
  }

  private async launch(): Promise<SandboxProcess | undefined> {
    const started = performance.now();
    const launching = (async () => {
      try {
        const sandbox = await takeProcess();
        const handedOver = performance.now();
        if (this.disposed) {
          await sandbox.kill({ reason: "killed", detail: "runtime disposed" });
          return undefined;
        }
        for (const { phase, durationMs } of sandbox.bootTimings) this.onBootTiming?.(phase, durationMs);
        this.onBootTiming?.("process-handoff", handedOver - started);
        const limited = performance.now();
        await sandbox.applyMemoryLimit(memoryCapMb(this.limits));
        this.onBootTiming?.("memory-limit", performance.now() - limited);
        this.adopt(sandbox);
        this.onBootTiming?.("process-ready", performance.now() - started);
        return sandbox;
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        if (this.processes.size === 0) {
          for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
        }
        return undefined;
      }
    })();
    this.launching.add(launching);
    try {
      return await launching;
    } finally {
      this.launching.delete(launching);
      this.serveWaiters();
    }
  }

  private adopt(sandbox: SandboxProcess): void {
    this.processes.add(sandbox);
    sandbox.onStateChange(() => this.serveWaiters());
    void sandbox.lost.then(() => {
      this.processes.delete(sandbox);
      if (sandbox.loss?.reason !== "killed" || sandbox.loss.detail !== "recycled") this.processesLost += 1;
      if (!this.disposed && this.responsiveCount() === 0) void this.launch();
      this.serveWaiters();
    });
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0) {
      const picked = this.pick();
      if (!picked) break;
      this.waiters.shift()!.resolve(place(picked));
    }
    if (this.waiters.length > 0 && !this.disposed) this.growIfNeeded();
  }

  /**
   * A preloaded isolate of this code, if one is ready on a responsive process. Each run
   * still gets an isolate of its own: the preloaded one has only evaluated its imports.
   */
  async takePreloaded(guestModule: string): Promise<(Placement & { preloaded: PreloadedIsolate }) | undefined> {
    const key = codeKey(guestModule);
    const entry = this.preloaded.get(key);
    if (!entry) return undefined;
    this.preloaded.delete(key);
    // A load under way finishes sooner than a new one that would queue behind it, unless its
    // process is stuck: never wait long for it.
    const loaded = await Promise.race([
      entry.loaded,
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), PRELOAD_WAIT_MS).unref()),
    ]);
    const { sandbox } = entry;
    if (!loaded || sandbox.state !== "ready" || sandbox.inFlight.size >= this.limits.concurrentRunsPerProcess) {
      entry.abort.abort();
      return undefined;
    }
    this.preloadHits += 1;
    return { ...place(sandbox), preloaded: { isolateId: entry.isolateId, response: entry.response, abort: entry.abort } };
  }

  /** After a run of code seen before, load the next isolate for it while the process is idle. */
  preloadFor(
    guestModule: string,
    sandbox: SandboxProcess,
    worker: GuestWorker,
  ): void {
    const key = codeKey(guestModule);
    const seenBefore = this.seenCode.delete(key);
    this.seenCode.set(key, true);
    if (this.seenCode.size > SEEN_CODE_ENTRIES) this.seenCode.delete(this.seenCode.keys().next().value!);
    if (!seenBefore || this.preloaded.has(key) || sandbox.state !== "ready" || this.disposed) return;
    if (this.preloaded.size >= PRELOADED_ISOLATES) {
      // Drop the oldest: closing its request frees its isolate.
      const oldest = this.preloaded.keys().next().value!;
      this.preloaded.get(oldest)?.abort.abort();
      this.preloaded.delete(oldest);
    }
    const isolateId = randomUUID();
    const abort = new AbortController();
    const response = sandbox.dispatcher.request({
      path: "/run",
      method: "POST",
      body: buildPreloadMessage(worker, isolateId),
      headers: { "content-type": "application/json" },
      signal: abort.signal,
    });
    // An aborted preload resets its stream; that is not an error of anyone's.
    const loaded = response.then(
      (data) => {
        data.body.on("error", () => {});
        abort.signal.addEventListener("abort", () => data.body.destroy(), { once: true });
        return true;
      },
      () => false,
    );
    this.preloaded.set(key, { sandbox, isolateId, response, abort, loaded });
  }

  /** Called when a run leaves a process: recycle it once it has served its share. */
  release(sandbox: SandboxProcess): void {
    if (sandbox.state === "ready" || sandbox.state === "retiring") {
      const grownKb = (sandbox.dataMemoryKb() ?? 0) - sandbox.idleDataKb;
      const tooBig = grownKb > this.limits.recycleMb * 1024;
      if (sandbox.runsStarted >= this.limits.runsPerProcess || tooBig) {
        if (sandbox.state === "ready") {
          sandbox.retire();
          if (this.responsiveCount() === 0) void this.launch();
        } else if (sandbox.inFlight.size === 0) {
          sandbox.retire();
        }
      }
    }
    this.serveWaiters();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const entry of this.preloaded.values()) entry.abort.abort();
    this.preloaded.clear();
    for (const waiter of this.waiters.splice(0)) waiter.reject(new PoolDisposedError());
    const launching = [...this.launching];
    await Promise.all([...this.processes].map((sandbox) => sandbox.kill({ reason: "killed", detail: "runtime disposed" })));
    await Promise.all(launching);
    this.processes.clear();
  }
}

const SEEN_CODE_ENTRIES = 512;
const PRELOADED_ISOLATES = 16;
const PRELOAD_WAIT_MS = 50;

function codeKey(guestModule: string): string {
  return createHash("sha1").update(guestModule).digest("base64");
}
