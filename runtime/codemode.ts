// `secure-exec/codemode`: an Executor for @cloudflare/codemode that runs each execution in a
// fresh isolate of a NodeRuntime. Tool functions stay on the host: the guest reaches them
// through one dispatch tool of the executor, keyed by a per-execution secret, so executions
// never see each other's tools. The timeout is the runtime's own watchdog (a busy loop is
// killed with its process), network is the runtime's policy (denied unless granted).
// Only types come from @cloudflare/codemode: its entry imports `cloudflare:workers`.
import type { ConnectorBinding, ExecuteOptions, ExecuteResult, Executor, ResolvedProvider } from "@cloudflare/codemode";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { NodeRuntime } from "./node-runtime.js";
import { parseOptions, runtimeOptionsSchema } from "../host/api/options.js";
import { defaultToolCallLimits } from "../host/capabilities/tools/tool-gateway.js";
import { HOST_CALL_SHAPE } from "../host/engine/host-router.js";
import { jsonShapeProblem } from "../host/engine/json-shape.js";
import type { NodeRuntimeOptions, RunResult } from "../host/api/types.js";
import { prepareCode } from "./codemode/code-parser.js";
import { buildGuestModule, LOG_LINE_PREFIX, TOKEN_ENV, type GuestProvider } from "./codemode/guest-source.js";
import { globalNameProblem, sanitizeToolName } from "./codemode/names.js";
import { decodeValue, encodeValue } from "./codemode/values.js";

export type { ConnectorBinding, ExecuteOptions, ExecuteResult, Executor, ResolvedProvider } from "@cloudflare/codemode";
export { sanitizeToolName } from "./codemode/names.js";
export { BINARY_TAG, decodeValue, encodeValue } from "./codemode/values.js";
export { normalizeCode } from "./codemode/guest-source.js";

export const DEFAULT_CODEMODE_TIMEOUT_MS = 60_000;
/** Log entries kept per execution; past it one marker entry says how many were dropped. */
export const DEFAULT_MAX_LOG_ENTRIES = 1_000;
/** Characters of log text kept per execution. */
export const DEFAULT_MAX_LOG_CHARS = 256 * 1024;
/** Largest `code` accepted. */
export const MAX_CODE_CHARS = 1024 * 1024;
/** Bytes of JSON one tool call's arguments may be: the tool gateway's input cap. */
const MAX_TOOL_ARGUMENT_BYTES = defaultToolCallLimits.toolArgumentBytes;
const LOGS_TRUNCATED = "[secure-exec] logs truncated";
const LATE_CALL_MESSAGE = "The code execution finished before this tool call settled. Await every tool call before returning.";

type ToolFunction = (...args: unknown[]) => Promise<unknown> | unknown;

export interface SecureExecExecutorOptions {
  /** Runtime to run in (shared with the caller, never disposed by the executor). */
  runtime?: NodeRuntime;
  /** Options of the runtime the executor creates on first use (and disposes in `dispose()`). */
  runtimeOptions?: NodeRuntimeOptions;
  /** Wall-clock ms of one execution, tool calls included (default 60 000). */
  timeout?: number;
  /** Log entries kept per execution (default 1 000). */
  maxLogEntries?: number;
  /** Characters of log text kept per execution (default 256 KiB). */
  maxLogChars?: number;
}

const executorOptionsSchema = z.strictObject({
  runtime: z.custom<NodeRuntime>((value) => value instanceof NodeRuntime, { message: "must be a NodeRuntime" }).optional(),
  runtimeOptions: z.record(z.string(), z.unknown()).optional(),
  // Node timers overflow past 2^31 - 1 ms.
  timeout: z.number().int().positive().max(2_147_483_647).optional(),
  maxLogEntries: z.number().int().min(0).optional(),
  maxLogChars: z.number().int().min(0).optional(),
});

interface Execution {
  providers: Map<string, Map<string, ToolFunction>>;
  connectors: Map<string, ConnectorBinding["binding"]>;
}

const dispatchInputSchema = {
  type: "object",
  properties: {
    token: { type: "string" },
    kind: { enum: ["provider", "connector"] },
    target: { type: "string" },
    method: { type: "string" },
    args: { type: "string" },
  },
  required: ["token", "kind", "target", "method", "args"],
  additionalProperties: false,
} as const;

interface DispatchInput {
  token: string;
  kind: "provider" | "connector";
  target: string;
  method: string;
  args: string;
}

type DispatchReply = { ok: true; value?: string } | { ok: false; error: string } | { ok: false; pause: true };

/** Runs Code Mode code in secure-exec sandboxes. `execute` never throws. */
export class SecureExecExecutor implements Executor {
  readonly timeout: number;
  private readonly maxLogEntries: number;
  private readonly maxLogChars: number;
  private readonly ownRuntimeOptions: NodeRuntimeOptions | undefined;
  private runtime: Promise<NodeRuntime> | undefined;
  private readonly ownsRuntime: boolean;
  /** The dispatch tool's name on the runtime: unique per executor. */
  private readonly toolName = `codemode-dispatch-${randomBytes(6).toString("hex")}`;
  private toolRegistered: Promise<void> | undefined;
  private readonly executions = new Map<string, Execution>();
  private disposed = false;

  constructor(options: SecureExecExecutorOptions = {}) {
    const parsed = parseOptions(executorOptionsSchema, options, "SecureExecExecutor option");
    if (parsed.runtime && parsed.runtimeOptions) {
      throw new TypeError('secure-exec: invalid SecureExecExecutor options: pass "runtime" or "runtimeOptions", not both');
    }
    this.timeout = parsed.timeout ?? DEFAULT_CODEMODE_TIMEOUT_MS;
    this.maxLogEntries = parsed.maxLogEntries ?? DEFAULT_MAX_LOG_ENTRIES;
    this.maxLogChars = parsed.maxLogChars ?? DEFAULT_MAX_LOG_CHARS;
    this.ownsRuntime = parsed.runtime === undefined;
    // Checked now, so a bad option fails here with its name rather than at the first execution.
    if (options.runtimeOptions) parseOptions(runtimeOptionsSchema, options.runtimeOptions, "SecureExecExecutor runtimeOptions option");
    this.ownRuntimeOptions = options.runtimeOptions;
    if (parsed.runtime) this.runtime = Promise.resolve(parsed.runtime);
  }

  async execute(
    code: string,
    providersOrFns: ResolvedProvider[] | Record<string, (...args: unknown[]) => Promise<unknown>>,
    options?: ExecuteOptions,
  ): Promise<ExecuteResult> {
    try {
      return await this.executeOrThrow(code, providersOrFns, options);
    } catch (error) {
      return { result: undefined, error: `secure-exec: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  /** Disposes the runtime the executor created (a runtime passed in is left running). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.executions.clear();
    if (this.ownsRuntime && this.runtime) {
      const runtime = await this.runtime.catch(() => undefined);
      await runtime?.dispose();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  private async executeOrThrow(
    code: unknown,
    providersOrFns: unknown,
    options: ExecuteOptions | undefined,
  ): Promise<ExecuteResult> {
    if (this.disposed) return failure("the executor was disposed");
    if (typeof code !== "string") return failure(`code must be a string (got ${typeof code})`);
    if (code.length > MAX_CODE_CHARS) return failure(`code is ${code.length} characters; the limit is ${MAX_CODE_CHARS}`);
    const plan = planExecution(providersOrFns, options);
    if ("error" in plan) return failure(plan.error);

    // Large code is parsed off the host's event loop (runtime/codemode/code-parser.ts).
    const { normalized, syntaxError } = await prepareCode(code, this.timeout);
    if (syntaxError) return failure(syntaxError);

    const runtime = await this.ensureRuntime();
    const token = randomBytes(24).toString("base64url");
    const guestModule = buildGuestModule({
      code: normalized,
      providers: plan.guestProviders,
      connectors: [...plan.execution.connectors.keys()],
      toolName: this.toolName,
    });
    this.executions.set(token, plan.execution);
    let run: RunResult;
    try {
      run = await runtime.run(guestModule, { timeout: this.timeout, env: { [TOKEN_ENV]: token } });
    } finally {
      // Calls still in flight (not awaited by the code) get the late answer from now on.
      this.executions.delete(token);
    }
    return this.resultOf(run);
  }

  private resultOf(run: RunResult): ExecuteResult {
    const logs = this.collectLogs(run);
    const withLogs = (result: ExecuteResult): ExecuteResult => (logs.length > 0 ? { ...result, logs } : result);
    if (run.exitCode === 137) {
      const timedOut = /time limit of \d+ ms exceeded/.test(run.stderr) && !/CPU time limit/.test(run.stderr);
      const note = lastSecureExecLine(run.stderr);
      return withLogs({ result: undefined, error: timedOut ? `Execution timed out after ${this.timeout} ms` : (note ?? "the sandbox was killed (exit code 137)") });
    }
    const returned = run.value as { result?: string; error?: string } | null | undefined;
    if (run.exitCode !== 0 || typeof returned !== "object" || returned === null) {
      if (/unsettled top-level await/.test(run.stderr)) {
        return withLogs({ result: undefined, error: "the code awaited a promise that nothing can settle any more" });
      }
      const detail = firstLines(run.stderr);
      if (run.exitCode === 0) return withLogs({ result: undefined, error: "the code ended without its function settling (a promise nothing resolves?)" });
      return withLogs({ result: undefined, error: detail || `the sandbox exited with code ${run.exitCode}` });
    }
    if (typeof returned.error === "string") return withLogs({ result: undefined, error: returned.error });
    if (typeof returned.result !== "string") return withLogs({ result: undefined });
    const decoded = decodeGuestJson(returned.result, "the result");
    return withLogs("error" in decoded ? { result: undefined, error: decoded.error } : { result: decoded.value });
  }

  /** Log entries from the guest's stdout (one framed JSON line per console call), bounded. */
  private collectLogs(run: RunResult): string[] {
    const logs: string[] = [];
    let chars = 0;
    let dropped = 0;
    const add = (entry: string) => {
      if (logs.length >= this.maxLogEntries || chars + entry.length > this.maxLogChars) {
        dropped += 1;
        return;
      }
      logs.push(entry);
      chars += entry.length;
    };
    for (const line of run.stdout.split("\n")) {
      if (line === "") continue;
      if (line.startsWith(LOG_LINE_PREFIX)) {
        try {
          const [level, text] = JSON.parse(line.slice(LOG_LINE_PREFIX.length)) as [string, string];
          add(level === "warn" ? `[warn] ${text}` : level === "error" ? `[error] ${text}` : String(text));
          continue;
        } catch {
          // A cut line (output cap): kept as it is.
        }
      }
      add(line);
    }
    // A failed run's stderr is its error; a successful one's raw stderr writes are logs too.
    if (run.exitCode === 0) {
      for (const line of run.stderr.split("\n")) if (line !== "") add(`[error] ${line}`);
    }
    if (dropped > 0) logs.push(`${LOGS_TRUNCATED}: ${dropped} more entries`);
    return logs;
  }

  private ensureRuntime(): Promise<NodeRuntime> {
    if (!this.runtime) {
      const creating = NodeRuntime.create(this.ownRuntimeOptions ?? {});
      this.runtime = creating;
      // A failed start is retried by the next execution.
      creating.catch(() => {
        if (this.runtime === creating) this.runtime = undefined;
      });
    }
    const runtime = this.runtime;
    this.toolRegistered ??= runtime.then((rt) => this.registerDispatchTool(rt));
    const registered = this.toolRegistered;
    registered.catch(() => {
      if (this.toolRegistered === registered) this.toolRegistered = undefined;
    });
    return registered.then(() => runtime);
  }

  private async registerDispatchTool(runtime: NodeRuntime): Promise<void> {
    await runtime.registerTools({
      [this.toolName]: {
        description: "Code Mode dispatch of one SecureExecExecutor (internal)",
        inputSchema: dispatchInputSchema,
        // The execution's own deadline bounds the call; the run's end aborts the wait.
        timeoutMs: this.timeout,
        handler: (input: DispatchInput) => this.dispatch(input),
      },
    });
  }

  private async dispatch(input: DispatchInput): Promise<DispatchReply> {
    const execution = this.executions.get(input.token);
    if (!execution) return { ok: false, error: LATE_CALL_MESSAGE };
    // The target first: an unknown tool costs no parse of its arguments.
    let call: (list: unknown[]) => Promise<DispatchReply>;
    if (input.kind === "connector") {
      const binding = execution.connectors.get(input.target);
      if (!binding) return { ok: false, error: `Connector "${input.target}" not found` };
      call = async (list) => {
        const result = await binding.callTool(input.method, list[0]);
        if (typeof result === "object" && result !== null) {
          const control = (result as Record<string, unknown>).__codemode_control__;
          if (control === "pause") return { ok: false, pause: true };
          if (control === "error") return { ok: false, error: String((result as Record<string, unknown>).message) };
        }
        return replyOf(result);
      };
    } else {
      const fn = execution.providers.get(input.target)?.get(input.method);
      if (!fn) return { ok: false, error: `Tool "${input.method}" not found in "${input.target}"` };
      call = async (list) => replyOf(await fn(...list));
    }
    // The gateway caps the whole input already; checked here too, before the parse it bounds.
    const argumentBytes = Buffer.byteLength(input.args);
    if (argumentBytes > MAX_TOOL_ARGUMENT_BYTES) {
      return { ok: false, error: `the arguments of "${input.method}" are ${argumentBytes} bytes of JSON; the limit is ${MAX_TOOL_ARGUMENT_BYTES}` };
    }
    const args = decodeGuestJson(input.args, `the argument list of "${input.method}"`);
    if ("error" in args) return { ok: false, error: args.error };
    try {
      return await call(Array.isArray(args.value) ? args.value : [args.value]);
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  }
}

/**
 * Guest JSON the host decodes. It crosses as a string, which the host call's shape check
 * skips, so the same bounds apply here before the parse: a value 200,000 levels deep
 * would break whatever the caller does with it next.
 */
function decodeGuestJson(text: string, what: string): { value: unknown } | { error: string } {
  const problem = jsonShapeProblem(text, HOST_CALL_SHAPE);
  if (problem) return { error: `${what} ${problem}` };
  try {
    return { value: decodeValue(text) };
  } catch {
    return { error: `${what} is not valid JSON` };
  }
}

function replyOf(result: unknown): DispatchReply {
  const value = encodeValue(result);
  return value === undefined ? { ok: true } : { ok: true, value };
}

function failure(error: string): ExecuteResult {
  return { result: undefined, error };
}

/** Checks names and shapes; builds what the host dispatches and what the guest declares. */
function planExecution(
  providersOrFns: unknown,
  options: ExecuteOptions | undefined,
): { execution: Execution; guestProviders: GuestProvider[] } | { error: string } {
  let providers: unknown[];
  if (Array.isArray(providersOrFns)) providers = providersOrFns;
  else if (typeof providersOrFns === "object" && providersOrFns !== null) providers = [{ name: "codemode", fns: providersOrFns }];
  else return { error: "providersOrFns must be an array of providers or a record of functions" };

  const execution: Execution = { providers: new Map(), connectors: new Map() };
  const guestProviders: GuestProvider[] = [];
  const seen = new Set<string>();
  for (const entry of providers) {
    if (typeof entry !== "object" || entry === null) return { error: "every provider must be an object { name, fns, prelude? }" };
    const { name, fns, prelude } = entry as { name?: unknown; fns?: unknown; prelude?: unknown };
    const problem = globalNameProblem(name, "Provider");
    if (problem) return { error: problem };
    const providerName = name as string;
    if (seen.has(providerName)) return { error: `Duplicate provider name "${providerName}"` };
    seen.add(providerName);
    if (typeof fns !== "object" || fns === null) return { error: `Provider "${providerName}" has no fns object` };
    if (prelude !== undefined && typeof prelude !== "string") return { error: `Provider "${providerName}" prelude must be a string` };
    const dispatch = new Map<string, ToolFunction>();
    const originals = new Map<string, string>();
    for (const [toolName, fn] of Object.entries(fns)) {
      if (typeof fn !== "function") return { error: `Tool "${toolName}" of provider "${providerName}" is not a function` };
      const sanitized = sanitizeToolName(toolName);
      const existing = originals.get(sanitized);
      if (existing !== undefined && existing !== toolName) {
        return { error: `Tool names "${existing}" and "${toolName}" both sanitize to "${sanitized}" in provider "${providerName}"` };
      }
      originals.set(sanitized, toolName);
      dispatch.set(sanitized, fn as ToolFunction);
    }
    execution.providers.set(providerName, dispatch);
    guestProviders.push({ name: providerName, tools: [...dispatch.keys()], prelude: prelude as string | undefined });
  }

  const connectors = options?.connectors ?? [];
  if (!Array.isArray(connectors)) return { error: "options.connectors must be an array" };
  for (const connector of connectors as unknown[]) {
    const { name, binding } = (connector ?? {}) as { name?: unknown; binding?: { callTool?: unknown } };
    const problem = globalNameProblem(name, "Connector");
    if (problem) return { error: problem };
    const connectorName = name as string;
    if (seen.has(connectorName)) return { error: `Duplicate name "${connectorName}" (connector clashes with a provider or connector)` };
    seen.add(connectorName);
    if (typeof binding?.callTool !== "function") return { error: `Connector "${connectorName}" binding has no callTool(method, args)` };
    execution.connectors.set(connectorName, binding as ConnectorBinding["binding"]);
  }
  return { execution, guestProviders };
}

function lastSecureExecLine(stderr: string): string | undefined {
  const lines = stderr.trimEnd().split("\n").filter((line) => line.startsWith("secure-exec:"));
  return lines.at(-1);
}

/** The start of a stderr report (an error and its first stack lines), bounded. */
function firstLines(stderr: string): string {
  return stderr.trim().split("\n").slice(0, 6).join("\n").slice(0, 2_000);
}
