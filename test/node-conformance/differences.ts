// Cases whose sandbox result differs from Node's. Every entry names its case exactly.
import type { Observation } from "./types.js";

export interface DesignedDifference {
  /** Why the sandbox cannot or will not behave as Node does. */
  reason: string;
  /** The clear error the sandbox gives instead. */
  expect: { stderr: RegExp; exitCode?: number; stdout?: string };
}

/**
 * Differences by design: the sandbox refuses with a clear error naming what is unsupported,
 * and the suite asserts that error.
 */
export const DESIGNED_DIFFERENCES: Record<string, DesignedDifference> = {};

/**
 * Differences not fixed yet (the sandbox should match Node), with what differs. Listed so the
 * suite stays green while they are worked on; the compatibility doc reports actual results,
 * and the suite's summary names entries that have started to match (remove them).
 */
export const KNOWN_GAPS: Record<string, string> = {};

export function matchesDesignedDifference(difference: DesignedDifference, sandbox: Observation): boolean {
  if (sandbox.hung) return false;
  if (!difference.expect.stderr.test(sandbox.stderr)) return false;
  if (difference.expect.exitCode !== undefined && sandbox.exitCode !== difference.expect.exitCode) return false;
  if (difference.expect.stdout !== undefined && sandbox.stdout !== difference.expect.stdout) return false;
  return true;
}
