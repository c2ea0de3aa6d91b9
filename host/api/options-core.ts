// What of the options needs no schema library (host/api/options.ts holds the schemas, which
// load with the first create()): default limits, the error, permission rules.
import type { PermissionPolicy, runtimeOptionsSchema } from "./options.js";
import type { z } from "zod";

export const DEFAULT_LIMITS = {
  memoryMb: 128,
  outputBytes: 16 * 1024 * 1024,
  returnBytes: 1024 * 1024,
  toolCalls: 100_000,
  processes: 2,
  runsPerProcess: 200,
  recycleMb: 256,
  concurrentRunsPerProcess: 16,
  fsBytes: 8 * 1024 * 1024,
  fsFiles: 10_000,
  egressConnections: 16,
  egressBytes: 256 * 1024 * 1024,
} as const;

/**
 * Entries of one env (a runtime's, a run's, a spawned child's). A process's env is a few
 * dozen to a few hundred names; each entry costs the host work on its event loop (the
 * schema, the merge, the run message), so a run may not bring tens of thousands.
 */
export const MAX_ENV_ENTRIES = 4_096;
/** Characters of one env's names and values together (Linux caps a process's argv and env near 2 MiB). */
export const MAX_ENV_CHARS = 1024 * 1024;

/** Why `env` is over the env caps, or undefined; checked before the schema, which costs far more per entry. */
export function envSizeProblem(env: unknown): string | undefined {
  if (typeof env !== "object" || env === null) return undefined;
  const names = Object.keys(env);
  if (names.length > MAX_ENV_ENTRIES) return `has ${names.length} entries; the limit is ${MAX_ENV_ENTRIES} per env`;
  let chars = 0;
  for (const name of names) {
    const value = (env as Record<string, unknown>)[name];
    chars += name.length + (typeof value === "string" ? value.length : 0);
  }
  if (chars > MAX_ENV_CHARS) return `has ${chars} characters of names and values; the limit is ${MAX_ENV_CHARS} per env`;
  return undefined;
}

/** A call's options did not validate; the message names the option and the problem. */
export class InvalidOptionsError extends TypeError {
  constructor(where: string, issue: { path: PropertyKey[]; message: string }) {
    const path = issue.path.map(String).join(".");
    super(`secure-exec: invalid ${where}${path ? ` "${path}"` : ""}: ${issue.message}`);
    this.name = "InvalidOptionsError";
  }
}

/** First matching rule wins; `*` matches any run of characters. */
export function isPermitted(policy: PermissionPolicy | undefined, subject: string, fallback: "allow" | "deny"): boolean {
  if (policy === undefined) return fallback === "allow";
  if (typeof policy === "string") return policy === "allow";
  for (const rule of policy.rules) {
    if (globMatches(rule.pattern, subject)) return rule.action === "allow";
  }
  return policy.default === "allow";
}

/**
 * Whether `subject` matches a permission pattern, where `*` matches any run of characters
 * (line breaks included) and everything else is literal. Linear in the subject for a given
 * pattern: the subject is guest-controlled, so no backtracking regex may judge it (a rule
 * with `**` as a regex took seconds on a 3 KB path). Same algorithm as worker-templates/fs/guest-fs.js.
 */
export function globMatches(pattern: string, subject: string): boolean {
  const parts = pattern.split("*");
  if (parts.length === 1) return subject === pattern;
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  if (subject.length < head.length + tail.length || !subject.startsWith(head) || !subject.endsWith(tail)) return false;
  const end = subject.length - tail.length;
  let at = head.length;
  // Each middle piece at its leftmost place: leaves the most room for the rest.
  for (let index = 1; index < parts.length - 1; index += 1) {
    const piece = parts[index]!;
    if (piece === "") continue;
    const found = subject.indexOf(piece, at);
    if (found === -1 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

/** No options at all: undefined, null or `{}`. */
export function isEmptyOptions(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  return typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype && Reflect.ownKeys(value).length === 0;
}

/** What the runtime options schema makes of no options (test/options.test.ts holds them equal). */
export function defaultRuntimeOptions(): z.infer<typeof runtimeOptionsSchema> {
  return { env: {}, cwd: "/workspace", tenant: "default", language: "js", limits: { ...DEFAULT_LIMITS } };
}
