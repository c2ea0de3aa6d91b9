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
export const KNOWN_GAPS: Record<string, string> = {
  "console: table": "stdout differs",
  "console: count": "stdout differs",
  "console: group indents": "stdout differs",
  "console: assert prints to stderr": "stderr output vs empty",
  "console: timeEnd prints label": "stdout differs; stderr output vs empty",
  "console: Console class": "stdout differs; stderr empty vs Error; exit 0 vs 1",
  "modules: import.meta.url is a file URL": "stdout differs; stderr empty vs TypeError; exit 0 vs 1",
  "modules: import.meta.dirname and filename": "stdout differs",
  "modules: new URL relative to import.meta.url": "stdout differs; stderr empty vs TypeError; exit 0 vs 1",
  "modules: fileURLToPath(import.meta.url)": "stdout differs; stderr empty vs TypeError; exit 0 vs 1",
  "modules: createRequire loads a builtin": "stdout differs; stderr empty vs TypeError; exit 0 vs 1",
  "modules: optional import caught": "stdout differs; stderr empty vs Error [ERR_MODULE_NOT_FOUND]; exit 0 vs 1",
  "modules: computed specifier of fs": "stdout differs; stderr empty vs Error; exit 0 vs 1",
  "modules: missing builtin is an error": "stderr Error [ERR_UNKNOWN_BUILTIN_MODULE] vs Error",
  "modules: import json with attributes": "stdout differs; stderr empty vs Error; exit 0 vs 1",
  "path: resolve relative uses cwd": "stdout differs",
  "process: env assignment stringifies": "stdout differs",
  "process: on exit runs": "stdout differs",
  "process: beforeExit runs once": "stdout differs",
  "process: uncaughtException handler": "stdout differs; stderr empty vs Error; exit 0 vs 1",
  "process: unhandledRejection handler": "stdout differs; stderr empty vs Error; exit 0 vs 1",
  "process: uptime and memoryUsage": "stdout differs; stderr empty vs TypeError; exit 0 vs 1",
  "process: chdir to missing path throws ENOENT": "stdout differs",
  "process: kill self SIGTERM": "stderr empty vs Error",
  "process: emitWarning goes to stderr": "stderr output vs empty",
  "process: import from node:process": "stdout differs",
  "timers: clearTimeout by numeric id": "hangs",
  "timers: setInterval 0 is held to 1ms": "stdout differs",
  "timers: node:timers setTimeout keeps run alive": "stdout differs",
  "timers: node:timers setInterval": "stdout differs",
  "timers/promises: setTimeout value": "stdout differs; stderr empty vs output; exit 0 vs 13",
  "timers/promises: setInterval iterator": "stdout differs; stderr empty vs output; exit 0 vs 13",
  "timers/promises: scheduler.wait": "stdout differs; stderr empty vs output; exit 0 vs 13",
  "timers: promisify setTimeout": "stdout differs; stderr empty vs TypeError; exit 0 vs 1",
  "timers: promisify setImmediate": "stdout differs; stderr empty vs TypeError; exit 0 vs 1",
};

export function matchesDesignedDifference(difference: DesignedDifference, sandbox: Observation): boolean {
  if (sandbox.hung) return false;
  if (!difference.expect.stderr.test(sandbox.stderr)) return false;
  if (difference.expect.exitCode !== undefined && sandbox.exitCode !== difference.expect.exitCode) return false;
  if (difference.expect.stdout !== undefined && sandbox.stdout !== difference.expect.stdout) return false;
  return true;
}
