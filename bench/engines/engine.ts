// What the benchmark needs from each engine (secure-exec and each peer).
import { readFileSync } from "node:fs";
import type { Workload } from "../workloads.js";

export interface GuestOutput {
  stdout: string;
  value: unknown;
  ok: boolean;
  error?: string;
}

export interface RunOptions {
  timeoutMs?: number;
}

/** A long-lived sandbox that evaluates snippet after snippet (state persists). */
export interface ResidentSession {
  eval(code: string): Promise<void>;
  dispose(): Promise<void>;
}

export interface DiagnosticOptions {
  concurrency: number;
  throughputRounds: number;
}

export interface ColdStart {
  totalMs: number;
  /** Optional split of the total, e.g. create vs first exec. */
  phases?: Record<string, number>;
}

export interface Engine {
  /** Key in the JSON report. */
  readonly key: string;
  readonly label: string;
  /** What one run gets, in a few words (e.g. "new V8 isolate per run"). */
  readonly isolation: string;
  /** Ms from "nothing loaded" to the first result, measured when the engine was set up. */
  readonly firstRunMs: number;
  /** Caveats shown under the tables. */
  readonly notes: string[];
  /** One run in a fresh sandbox. Never throws for a guest failure: `ok` is false then. */
  run(workload: Workload, options?: RunOptions): Promise<GuestOutput>;
  /** A new engine instance (or runtime) from scratch up to its first result. */
  coldStart(): Promise<ColdStart>;
  /** A resident session, or null when the engine has none. */
  openResident(): Promise<ResidentSession | null>;
  /** Marginal resident memory (MiB) per concurrent run with `count` runs alive at once. */
  rssPerConcurrentRunMb(count: number): Promise<number | null>;
  /** Engine-specific counters added to the report (e.g. processes lost). */
  extras(): Record<string, number | null>;
  /** Engine-specific extra measurements, run after the common plan. */
  diagnostics?(options: DiagnosticOptions, log: (line: string) => void): Promise<Record<string, number | null>>;
  dispose(): Promise<void>;
}

export const MIB = 1024 * 1024;

/**
 * A workload body with the helpers every in-process engine provides as host globals
 * (`__print`, `__hostAdd`, `__ret`); `onRejection` is appended to the async wrapper's call.
 */
export function wrapWithHostGlobals(body: string, onRejection = ""): string {
  return [
    `const print = (x) => __print(String(x));`,
    `const hostAdd = (a, b) => __hostAdd(a, b);`,
    `const ret = (v) => __ret(JSON.stringify(v));`,
    `(async () => {\n${body}\n})()${onRejection}`,
  ].join("\n");
}

/** Resident set size of a process in KiB (Linux /proc), or undefined when it is gone. */
export function processRssKb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used, in ms (Linux /proc, 100 ticks per second). */
export function processCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ");
    if (!fields) return undefined;
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Parses the JSON text a guest handed back (undefined when it handed back nothing). */
export function parseReturned(json: string | undefined): unknown {
  return json === undefined ? undefined : (JSON.parse(json) as unknown);
}

export function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}
