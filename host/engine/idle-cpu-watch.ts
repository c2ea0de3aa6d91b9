// With nothing of a guest's in flight, no guest code should run at all: a workerd process that
// burns CPU then is held by guest code that escaped its run (or exec), and is killed.
import { readFileSync } from "node:fs";

/**
 * CPU is sampled every IDLE_SAMPLE_MS from /proc/<pid>/stat; IDLE_BURN_SAMPLES samples in a
 * row over IDLE_CPU_SHARE of a core (a preload, a collection or an isolate teardown costs a
 * few ms) mean a guest is burning.
 */
const IDLE_SAMPLE_MS = 250;
const IDLE_CPU_SHARE = 0.2;
const IDLE_BURN_SAMPLES = 4;
const CLOCK_TICKS_PER_SECOND = 100;

export interface IdleCpuWatchHooks {
  /** The first sample over the share: the owner may start watching more closely. */
  onSuspect?(): void;
  /** IDLE_BURN_SAMPLES samples in a row over the share. */
  onBurning(): void;
}

export class IdleCpuWatch {
  /** Since when nothing has been in flight (undefined while something is). */
  private idleSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pid: number,
    private readonly hooks: IdleCpuWatchHooks,
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
    if (this.timer) return;
    let last = { at: performance.now(), ticks: readCpuTicks(this.pid) ?? 0 };
    let burning = 0;
    this.timer = setInterval(() => {
      const now = performance.now();
      const ticks = readCpuTicks(this.pid);
      if (ticks === undefined) return;
      const share = (ticks - last.ticks) / CLOCK_TICKS_PER_SECOND / ((now - last.at) / 1000);
      // Only a window that lay wholly in idle time counts.
      const idleWindow = this.idleSince !== undefined && this.idleSince <= last.at;
      last = { at: now, ticks };
      burning = idleWindow && share >= IDLE_CPU_SHARE ? burning + 1 : 0;
      if (burning === 1) this.hooks.onSuspect?.();
      if (burning >= IDLE_BURN_SAMPLES) {
        this.stop();
        this.hooks.onBurning();
      }
    }, IDLE_SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
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
