// With nothing of a guest's in flight, no guest code should run at all: a workerd process that
// burns CPU then is held by guest code that escaped its run (or exec), and is killed.
import { readFileSync } from "node:fs";

/**
 * CPU is sampled every `sampleMs` from /proc/<pid>/stat; `samples` samples in a row over
 * `share` of a core mean a guest is burning. A sandbox process's own idle work (a preload, an
 * isolate teardown) costs a few ms, hence the defaults; a resident runner's costs nothing.
 */
export interface IdleCpuThresholds {
  sampleMs: number;
  share: number;
  samples: number;
}

export const SANDBOX_PROCESS_IDLE: IdleCpuThresholds = { sampleMs: 250, share: 0.2, samples: 4 };
const CLOCK_TICKS_PER_SECOND = 100;

export interface IdleCpuWatchHooks {
  /** The first sample over the share: the owner may start watching more closely. */
  onSuspect?(): void;
  /** `samples` samples in a row over the share. */
  onBurning(): void;
}

export class IdleCpuWatch {
  /** Since when nothing has been in flight (undefined while something is). */
  private idleSince: number | undefined;
  private timers: NodeJS.Timeout[] = [];

  /** Each of `thresholds` is watched on its own; the first met ends the watch. */
  constructor(
    private readonly pid: number,
    private readonly hooks: IdleCpuWatchHooks,
    private readonly thresholds: readonly IdleCpuThresholds[] = [SANDBOX_PROCESS_IDLE],
  ) {}

  /** Work is in flight: its CPU is its own. */
  busy(): void {
    this.idleSince = undefined;
  }

  /** Nothing is in flight from now on (or the host did work of its own just now). */
  idle(): void {
    this.idleSince = performance.now();
  }

  get idleSinceMs(): number | undefined {
    return this.idleSince;
  }

  start(): void {
    if (this.timers.length > 0) return;
    this.timers = this.thresholds.map((thresholds) => this.watch(thresholds));
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  private watch({ sampleMs, share: burnShare, samples }: IdleCpuThresholds): NodeJS.Timeout {
    let last = { at: performance.now(), ticks: readCpuTicks(this.pid) ?? 0 };
    let burning = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      const ticks = readCpuTicks(this.pid);
      if (ticks === undefined) return;
      const share = (ticks - last.ticks) / CLOCK_TICKS_PER_SECOND / ((now - last.at) / 1000);
      // Only a window that lay wholly in idle time counts.
      const idleWindow = this.idleSince !== undefined && this.idleSince <= last.at;
      last = { at: now, ticks };
      burning = idleWindow && share >= burnShare ? burning + 1 : 0;
      if (burning === 1) this.hooks.onSuspect?.();
      if (burning >= samples) {
        this.stop();
        this.hooks.onBurning();
      }
    }, sampleMs);
    timer.unref();
    return timer;
  }
}

/** User + system CPU time of a process in clock ticks (undefined once it is gone). */
export function readCpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}
