// How much memory a sandbox process may hold (RLIMIT_DATA, above its idle footprint).
import type { RuntimeLimits } from "../api/types.js";

/** Megabytes above its idle footprint a process may hold (RLIMIT_DATA). */
const PER_RUN_RESERVE_MB = 4;

export function memoryCapMb(limits: RuntimeLimits): number {
  // Room for what finished runs left behind (until recycling), for the runs in flight, and
  // still a whole memoryMb for a guest that allocates: past that the process aborts.
  return limits.recycleMb + limits.memoryMb + PER_RUN_RESERVE_MB * limits.concurrentRunsPerProcess;
}
