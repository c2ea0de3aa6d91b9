// The sandbox processes of one runtime. Runs of different runtimes never share a process.
// Placement: the least-loaded responsive process; a stuck process gets no new runs;
// a lost or recycled process is replaced at once.
import { createHash, randomUUID } from "node:crypto";
import type { RuntimeLimits } from "../api/types.js";
import { SandboxProcess, type RunTicket } from "./sandbox-process.js";
import { takeProcess } from "./spare-processes.js";
import { memoryCapMb } from "./memory-cap.js";
import { buildPreloadMessage, type GuestWorker } from "./supervisor-protocol.js";
import type { SandboxResponse } from "./sandbox-client.js";

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

/** A run's place on a process, counted there from the moment it is handed out. */
export interface Placement {
  sandbox: SandboxProcess;
  /** Pass to `sandbox.endRun` when the attempt ends; mark it started when the guest reports so. */
  ticket: RunTicket;
}

function place(sandbox: SandboxProcess): Placement {
  const ticket: RunTicket = { placedAt: performance.now(), started: false };
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
  /** Preloaded, never-run isolates: code hash → where they wait (each serves one run). */
  private readonly preloaded = new Map<string, PreloadEntry[]>();
  /** Code whose preloads could not take their runs, most recent last. */
  private readonly unpreloadable = new Map<string, true>();
  /** Code run more than once (hash → its worker configuration), most recent last. */
  private readonly hotCode = new Map<string, HotCode>();
  preloadHits = 0;

  constructor(
    private readonly limits: RuntimeLimits,
    private readonly onBootTiming?: (phase: string, durationMs: number) => void,
  ) {}

  /** Starts the first process (or adopts `first`, already starting); resolves once it is ready. */
  async warmUp(first?: Promise<SandboxProcess>): Promise<void> {
    await this.launch(first);
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

  private async launch(starting?: Promise<SandboxProcess>): Promise<SandboxProcess | undefined> {
    const started = performance.now();
    const launching = (async () => {
      try {
        const sandbox = await (starting ?? takeProcess());
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
   * still gets an isolate of its own: a preloaded one has only evaluated its imports, and it
   * serves exactly one run. Taking one loads its replacement on another process when there
   * is one, so back-to-back runs of hot code find an isolate ready every time.
   */
  async takePreloaded(guestModule: string): Promise<(Placement & { preloaded: PreloadedIsolate }) | undefined> {
    const key = codeKey(guestModule);
    const entries = this.preloaded.get(key);
    if (!entries) return undefined;
    const usable = (entry: PreloadEntry): boolean =>
      entry.sandbox.state === "ready" && entry.sandbox.inFlight.size < this.limits.concurrentRunsPerProcess;
    this.dropUnusable(key);
    // One already loaded, else the oldest still loading: a load under way finishes sooner
    // than a new one queued behind it, unless its process is stuck, so never wait long.
    // A ready one on a process that is not loading another isolate first: a start message
    // queued behind a load waits for all of it (a process is single-threaded).
    const loading = this.loadingProcesses();
    let entry =
      entries.find((candidate) => candidate.ready && usable(candidate) && !loading.has(candidate.sandbox)) ??
      entries.find((candidate) => candidate.ready && usable(candidate)) ??
      entries.find(usable);
    if (!entry) return undefined;
    removeFrom(entries, entry);
    if (entries.length === 0) this.preloaded.delete(key);
    if (!entry.ready) {
      const loaded = await Promise.race([
        entry.loaded,
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), PRELOAD_WAIT_MS).unref()),
      ]);
      if (!loaded) {
        // Still loading: it stays in reserve for a later run.
        if (!entry.ready && usable(entry)) this.preloaded.set(key, [entry, ...(this.preloaded.get(key) ?? [])]);
        return undefined;
      }
      if (!usable(entry)) return undefined;
    }
    this.preloadHits += 1;
    const placement = { ...place(entry.sandbox), preloaded: { isolateId: entry.isolateId, response: entry.response, start: entry.start, abort: entry.abort } };
    const hot = this.hotCode.get(key);
    if (hot) {
      // Used: the code really runs again and again, so it gets the deeper reserve.
      hot.used = true;
      this.topUp(key, hot);
    }
    return placement;
  }

  /**
   * A preload of this code could not take its run (its packages read the run's env or files as
   * they loaded, or it ended before its start): the code is not preloaded again, so its runs
   * do not pay for two isolates each.
   */
  preloadUnusable(guestModule: string): void {
    const key = codeKey(guestModule);
    keepLatest(this.unpreloadable, key, true, SEEN_CODE_ENTRIES);
    this.hotCode.delete(key);
    for (const entry of this.preloaded.get(key) ?? []) entry.abort.abort();
    this.preloaded.delete(key);
  }

  /** After a run of code seen before, keep isolates of it loaded for the next runs. */
  preloadFor(guestModule: string, worker: GuestWorker): void {
    const key = codeKey(guestModule);
    if (this.unpreloadable.has(key)) return;
    const seenBefore = keepLatest(this.seenCode, key, true, SEEN_CODE_ENTRIES);
    if (!seenBefore || this.disposed) return;
    const hot: HotCode = { worker, used: this.hotCode.get(key)?.used ?? false };
    keepLatest(this.hotCode, key, hot, HOT_CODE_ENTRIES);
    // Hot code is loaded on a second process while the first runs it (two cores, two
    // single-threaded processes; loads never go to a process with a run in flight), when
    // the runtime's limits allow a second one.
    if (this.processes.size + this.launching.size < Math.min(PRELOAD_PROCESSES, this.limits.processes)) void this.launch();
    this.topUp(key, hot);
  }

  private dropUnusable(key: string): void {
    const entries = this.preloaded.get(key);
    if (!entries) return;
    for (const entry of [...entries]) {
      if (entry.sandbox.state === "dead" || entry.sandbox.state === "retiring") {
        entry.abort.abort();
        removeFrom(entries, entry);
      }
    }
    if (entries.length === 0) this.preloaded.delete(key);
  }

  private preloadedCount(): number {
    let count = 0;
    for (const entries of this.preloaded.values()) count += entries.length;
    return count;
  }

  /**
   * Loads isolates of hot code until enough wait for it, one at a time per
   * process and only on a process with nothing else to do: a load never delays a run (a
   * process is single-threaded). Each finished load tops up again, so the reserve fills in
   * whatever idle time the processes have.
   */
  private topUp(key: string, hot: HotCode): void {
    const { worker } = hot;
    // Code seen twice gets one isolate ahead; code whose preloads are used gets more. An
    // unused preload stays resident until its process is recycled, so depth follows use.
    const depth = hot.used ? PRELOADS_PER_USED_KEY : 1;
    this.dropUnusable(key);
    for (;;) {
      const entries = this.preloaded.get(key) ?? [];
      if (entries.length >= depth || this.disposed || !this.hotCode.has(key)) return;
      if (this.preloadedCount() >= PRELOADED_ISOLATES) {
        // Drop the oldest key's isolates: closing their requests frees them.
        const oldest = this.preloaded.keys().next().value!;
        if (oldest === key) return;
        for (const entry of this.preloaded.get(oldest) ?? []) entry.abort.abort();
        this.preloaded.delete(oldest);
        continue;
      }
      const target = this.idleProcess(entries);
      if (!target) return;
      const isolateId = randomUUID();
      // Loading is host-requested work: the idle watch does not take it for a guest left running.
      target.noteHostWork();
      const abort = new AbortController();
      // The request's body is the preload message now and the run's input later: the run
      // starts with no request of its own.
      const { response, end } = target.dispatcher.openStream({
        path: "/run",
        first: `${buildPreloadMessage(worker, isolateId)}\n`,
        headers: { "content-type": "application/x-ndjson" },
        signal: abort.signal,
      });
      const entry: PreloadEntry = { sandbox: target, isolateId, response, start: end, abort, loaded: Promise.resolve(false), ready: false };
      // The response opens once the isolate has loaded; an aborted preload resets its stream.
      const neverLoaded = (): false => {
        // It leaves the reserve.
        removeFrom(this.preloaded.get(key) ?? [], entry);
        return false;
      };
      entry.loaded = response.then((opened) => {
        opened.body.on("error", () => {});
        // Anything but the guest's event stream (the supervisor failed the load) is no preload.
        if (opened.statusCode !== 200) {
          opened.body.destroy();
          return neverLoaded();
        }
        abort.signal.addEventListener("abort", () => opened.body.destroy(), { once: true });
        return (entry.ready = true);
      }, neverLoaded);
      entries.push(entry);
      this.preloaded.set(key, entries);
      void entry.loaded.then((ready) => {
        const current = this.hotCode.get(key);
        if (ready && current) this.topUp(key, current);
      });
    }
  }

  private loadingProcesses(): Set<SandboxProcess> {
    const loading = new Set<SandboxProcess>();
    for (const entries of this.preloaded.values()) {
      for (const entry of entries) if (!entry.ready) loading.add(entry.sandbox);
    }
    return loading;
  }

  /**
   * A responsive process with no run in flight and no isolate loading, if there is one: of
   * those, the one holding fewest of `entries` (the code's preloads), so the load does not
   * stand in front of the next run's start message.
   */
  private idleProcess(entries: readonly PreloadEntry[]): SandboxProcess | undefined {
    const loading = this.loadingProcesses();
    let best: SandboxProcess | undefined;
    let bestHeld = Infinity;
    for (const sandbox of this.processes) {
      if (sandbox.state !== "ready" || sandbox.inFlight.size > 0 || loading.has(sandbox)) continue;
      const held = entries.reduce((count, entry) => count + (entry.sandbox === sandbox ? 1 : 0), 0);
      if (held < bestHeld) [best, bestHeld] = [sandbox, held];
    }
    return best;
  }

  /** Called when a run leaves a process: recycle it once it has served its share. */
  release(sandbox: SandboxProcess): void {
    if (sandbox.state === "ready" || sandbox.state === "retiring") {
      const tooBig = sandbox.dataGrowthKb() > this.limits.recycleMb * 1024;
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
    for (const entries of this.preloaded.values()) for (const entry of entries) entry.abort.abort();
    this.preloaded.clear();
    for (const waiter of this.waiters.splice(0)) waiter.reject(new PoolDisposedError());
    const launching = [...this.launching];
    await Promise.all([...this.processes].map((sandbox) => sandbox.kill({ reason: "killed", detail: "runtime disposed" })));
    await Promise.all(launching);
    this.processes.clear();
  }
}

const SEEN_CODE_ENTRIES = 512;
const HOT_CODE_ENTRIES = 64;
/** Isolates kept loaded per hot code hash, for the next runs. */
const PRELOADS_PER_USED_KEY = 3;
const PRELOADED_ISOLATES = 16;
const PRELOAD_WAIT_MS = 50;
/** Processes a runtime with hot code keeps (within `limits.processes`). */
const PRELOAD_PROCESSES = 2;

interface HotCode {
  /** The worker configuration of its runs. */
  worker: GuestWorker;
  /** Whether a run has taken one of its preloads. */
  used: boolean;
}

/**
 * An isolate loaded ahead of its run: its `/run` request is already open (the guest's event
 * stream) and the run sends its input as a message. Unnamed like every isolate, so dropping it
 * (abort) frees it.
 */
export interface PreloadedIsolate {
  isolateId: string;
  response: Promise<SandboxResponse>;
  /** Sends the run's start message as the rest of the preload's request. */
  start: (message: string) => void;
  abort: AbortController;
}

interface PreloadEntry extends PreloadedIsolate {
  sandbox: SandboxProcess;
  loaded: Promise<boolean>;
  ready: boolean;
}

/** Puts `key` last in an insertion-ordered map of at most `limit` entries (the oldest go); whether it was there. */
function keepLatest<V>(map: Map<string, V>, key: string, value: V, limit: number): boolean {
  const had = map.delete(key);
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value!);
  return had;
}

function removeFrom<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index >= 0) list.splice(index, 1);
}

let lastModule: string | undefined;
let lastKey = "";

/** A run asks for its code's key twice (to take a preload, then to keep some): one hash. */
function codeKey(guestModule: string): string {
  // A large source is not held on to between runs.
  if (guestModule.length > 64 * 1024) return createHash("sha1").update(guestModule).digest("base64");
  if (guestModule !== lastModule) {
    lastKey = createHash("sha1").update(guestModule).digest("base64");
    lastModule = guestModule;
  }
  return lastKey;
}
