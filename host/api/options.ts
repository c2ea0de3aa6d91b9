// Schemas of everything a caller hands the runtime; a bad value fails with its path.
import { z } from "zod";
import type { RuntimeLimits } from "./types.js";
import { DEFAULT_LIMITS, InvalidOptionsError, envSizeProblem } from "./options-core.js";

export { InvalidOptionsError, isPermitted } from "./options-core.js";

const absolutePath = z.string().startsWith("/", { message: "must be an absolute path" });
const stringRecord = z.record(z.string(), z.string());
const positiveMs = z.number().int().positive();

/** An env record whose size is checked first: a record of 60,000 entries costs the schema ~80 ms. */
export function sizedEnv<Schema extends z.ZodType>(record: Schema) {
  return z
    .unknown()
    .superRefine((value, context) => {
      const problem = envSizeProblem(value);
      if (problem) context.addIssue({ code: "custom", message: problem });
    })
    .pipe(record);
}
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
  memoryMb: z.number().int().min(16).max(16384).default(DEFAULT_LIMITS.memoryMb),
  cpuTimeLimitMs: positiveMs.optional(),
  timeoutMs: positiveMs.optional(),
  outputBytes: z.number().int().min(1).default(DEFAULT_LIMITS.outputBytes),
  returnBytes: z.number().int().min(16).max(256 * 1024 * 1024).default(DEFAULT_LIMITS.returnBytes),
  toolCalls: z.number().int().min(0).default(DEFAULT_LIMITS.toolCalls),
  processes: z.number().int().min(1).max(64).default(DEFAULT_LIMITS.processes),
  runsPerProcess: z.number().int().min(1).default(DEFAULT_LIMITS.runsPerProcess),
  recycleMb: z.number().int().min(16).max(65536).default(DEFAULT_LIMITS.recycleMb),
  concurrentRunsPerProcess: z.number().int().min(1).max(1024).default(DEFAULT_LIMITS.concurrentRunsPerProcess),
  fsBytes: z.number().int().min(0).default(DEFAULT_LIMITS.fsBytes),
  fsFiles: z.number().int().min(1).default(DEFAULT_LIMITS.fsFiles),
  egressConnections: z.number().int().min(1).max(1024).default(DEFAULT_LIMITS.egressConnections),
  egressBytes: z.number().int().min(0).default(DEFAULT_LIMITS.egressBytes),
});

export const runtimeOptionsSchema = z.strictObject({
  env: sizedEnv(stringRecord).default({}),
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
  env: sizedEnv(stringRecord).optional(),
  cwd: absolutePath.optional(),
  timeout: positiveMs.optional(),
  cpuTimeLimitMs: positiveMs.optional(),
  signal: z.instanceof(AbortSignal).optional(),
  onStdout: z.custom<(chunk: Uint8Array) => void>((value) => typeof value === "function", { message: "must be a function" }).optional(),
  onStderr: z.custom<(chunk: Uint8Array) => void>((value) => typeof value === "function", { message: "must be a function" }).optional(),
});

export function parseOptions<Schema extends z.ZodType>(schema: Schema, value: unknown, where: string): z.infer<Schema> {
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) throw new InvalidOptionsError(where, parsed.error.issues[0]!);
  return parsed.data;
}

export type ParsedLimits = RuntimeLimits;
