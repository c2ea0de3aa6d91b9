// Schemas of everything a caller hands the runtime; a bad value fails with its path.
import { z } from "zod";
import type { RuntimeLimits } from "./types.js";

const absolutePath = z.string().startsWith("/", { message: "must be an absolute path" });
const stringRecord = z.record(z.string(), z.string());
const positiveMs = z.number().int().positive();
const language = z.enum(["js", "ts"]);

export const permissionDecision = z.enum(["allow", "deny"]);
export const permissionPolicySchema = z.union([
  permissionDecision,
  z.strictObject({
    default: permissionDecision,
    rules: z.array(z.strictObject({ pattern: z.string().min(1), action: permissionDecision })).default([]),
  }),
]);
export type PermissionPolicy = z.infer<typeof permissionPolicySchema>;

export const limitsSchema = z.strictObject({
  memoryMb: z.number().int().min(16).max(16384).default(128),
  cpuTimeLimitMs: positiveMs.optional(),
  timeoutMs: positiveMs.optional(),
  outputBytes: z.number().int().min(1).default(16 * 1024 * 1024),
  returnBytes: z.number().int().min(16).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
  toolCalls: z.number().int().min(0).default(100_000),
  processes: z.number().int().min(1).max(64).default(2),
  runsPerProcess: z.number().int().min(1).default(200),
  recycleMb: z.number().int().min(16).max(65536).default(256),
  concurrentRunsPerProcess: z.number().int().min(1).max(1024).default(16),
  fsBytes: z.number().int().min(0).default(8 * 1024 * 1024),
  fsFiles: z.number().int().min(1).default(10_000),
});

export const runtimeOptionsSchema = z.strictObject({
  env: stringRecord.default({}),
  cwd: absolutePath.default("/workspace"),
  tenant: z.string().min(1).default("default"),
  language: language.default("js"),
  tools: z.record(z.string(), z.unknown()).optional(),
  files: z.record(absolutePath, z.union([z.string(), z.instanceof(Uint8Array)])).optional(),
  mounts: z
    .array(z.strictObject({ hostPath: z.string().min(1), guestPath: absolutePath, readOnly: z.boolean().default(true) }))
    .optional(),
  nodeModules: z
    .union([z.string().min(1), z.strictObject({ hostPath: z.string().min(1), guestPath: absolutePath.optional() })])
    .optional(),
  permissions: z
    .strictObject({
      tool: permissionPolicySchema.optional(),
      fs: permissionPolicySchema.optional(),
      childProcess: permissionPolicySchema.optional(),
      network: permissionPolicySchema.optional(),
      env: permissionPolicySchema.optional(),
    })
    .optional(),
  limits: limitsSchema.default(limitsSchema.parse({})),
  onBootTiming: z.custom<(timing: { phase: string; durationMs: number }) => void>((value) => typeof value === "function", {
    message: "must be a function",
  }).optional(),
});

export const execOptionsSchema = z.strictObject({
  language: language.optional(),
  stdin: z.union([z.string(), z.instanceof(Uint8Array)]).optional(),
  env: stringRecord.optional(),
  cwd: absolutePath.optional(),
  timeout: positiveMs.optional(),
  cpuTimeLimitMs: positiveMs.optional(),
  signal: z.instanceof(AbortSignal).optional(),
  onStdout: z.custom<(chunk: Uint8Array) => void>((value) => typeof value === "function", { message: "must be a function" }).optional(),
  onStderr: z.custom<(chunk: Uint8Array) => void>((value) => typeof value === "function", { message: "must be a function" }).optional(),
});

export class InvalidOptionsError extends TypeError {
  constructor(where: string, error: z.ZodError) {
    const issue = error.issues[0]!;
    const path = issue.path.map(String).join(".");
    super(`secure-exec: invalid ${where}${path ? ` "${path}"` : ""}: ${issue.message}`);
    this.name = "InvalidOptionsError";
  }
}

export function parseOptions<Schema extends z.ZodType>(schema: Schema, value: unknown, where: string): z.infer<Schema> {
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) throw new InvalidOptionsError(where, parsed.error);
  return parsed.data;
}

export type ParsedLimits = RuntimeLimits;

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
 * with `**` as a regex took seconds on a 3 KB path). Same algorithm as worker-templates/guest-fs.js.
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
