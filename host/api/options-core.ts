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
    const pattern = new RegExp(`^${rule.pattern.split("*").map(escapeRegExp).join(".*")}$`);
    if (pattern.test(subject)) return rule.action === "allow";
  }
  return policy.default === "allow";
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
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
