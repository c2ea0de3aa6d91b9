// Warm workerd processes started ahead of demand, so `NodeRuntime.create()` does not pay
// a process start. A spare has served no one; it is handed to exactly one runtime.
import { SandboxProcess } from "./sandbox-process.js";
import { DEFAULT_LIMITS } from "../api/options-core.js";
import { memoryCapMb } from "./memory-cap.js";

/** Spares get the default limits' memory cap up front; a runtime with other limits re-applies. */
const DEFAULT_MEMORY_CAP_MB = memoryCapMb(DEFAULT_LIMITS);

const spares: Promise<SandboxProcess>[] = [];
let activeUsers = 0;

function spareTarget(): number {
  const configured = Number(process.env.SECURE_EXEC_SPARE_PROCESSES ?? "1");
  return Number.isFinite(configured) && configured >= 0 ? configured : 1;
}

function refill(): void {
  while (activeUsers > 0 && spares.length < spareTarget()) {
    const launching = SandboxProcess.launch(DEFAULT_MEMORY_CAP_MB);
    launching.catch(() => {});
    spares.push(launching);
  }
}

/**
 * A process start costs the host and the machine CPU: refilling right after a handoff would
 * slow the new runtime's first runs, and a short-lived host (a script that creates one
 * runtime, runs and disposes) would start a spare it never uses. The refill waits a second.
 */
const REFILL_DELAY_MS = 1_000;
let refillTimer: NodeJS.Timeout | undefined;

function refillSoon(): void {
  if (refillTimer) return;
  refillTimer = setTimeout(() => {
    refillTimer = undefined;
    refill();
  }, REFILL_DELAY_MS);
  refillTimer.unref();
}

export async function takeProcess(): Promise<SandboxProcess> {
  while (spares.length > 0) {
    const candidate = await spares.shift()!.catch(() => undefined);
    refillSoon();
    if (candidate && candidate.state === "ready") return candidate;
  }
  // No spare ready: a run waits for this one, so it skips the warm-up run.
  const launched = SandboxProcess.launch(DEFAULT_MEMORY_CAP_MB, { warmUp: false });
  refillSoon();
  return launched;
}

/** Spares are kept only while some runtime is alive, so an idle host holds no processes. */
export function retainSpares(): () => void {
  activeUsers += 1;
  // Not at once: the first runs of the runtime being created come first.
  refillSoon();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    activeUsers -= 1;
    if (activeUsers === 0) {
      for (const spare of spares.splice(0)) {
        void spare.then((sandbox) => sandbox.kill({ reason: "killed", detail: "host idle" })).catch(() => {});
      }
    }
  };
}
