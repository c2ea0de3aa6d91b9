// Host tools: validated definitions, schema-checked input, bounded calls. Only what a
// handler returns (as JSON) or a plain error message ever crosses back to the guest.
import type { Ajv, ValidateFunction } from "ajv";
import type { HostToolDefinition, ToolDefinitions } from "../../api/types.js";
import type * as ToolDefinitionChecks from "./definition-checks.js";

let loadedChecks: typeof ToolDefinitionChecks | undefined;

/** Loads the schema libraries `register` needs (only runtimes with tools pay for them). */
export async function loadToolDefinitionChecks(): Promise<void> {
  loadedChecks ??= await import("./definition-checks.js");
}

const TOOL_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
const RESERVED_NAMES = new Set(["constructor", "prototype", "then", "toString", "valueOf", "hasOwnProperty"]);

export interface ToolCallLimits {
  toolCalls: number;
  toolCallsInFlight: number;
  toolArgumentBytes: number;
  toolResultBytes: number;
  toolTimeoutMs: number;
}

export const defaultToolCallLimits: ToolCallLimits = {
  toolCalls: 100_000,
  toolCallsInFlight: 1_000,
  toolArgumentBytes: 1024 * 1024,
  toolResultBytes: 4 * 1024 * 1024,
  toolTimeoutMs: 30_000,
};


export class ToolDefinitionError extends Error {
  constructor(message: string) {
    super(`secure-exec: ${message}`);
    this.name = "ToolDefinitionError";
  }
}

interface RegisteredTool {
  name: string;
  definition: HostToolDefinition<never, unknown>;
  validate: ValidateFunction;
}

export interface ToolCallScope {
  runId: string;
  tenant: string;
  signal: AbortSignal;
  /** Per-run counters, shared by all calls of one run. */
  counters: { calls: number; inFlight: number };
  isAllowed: (toolName: string) => boolean;
}

export class ToolGateway {
  private readonly tools = new Map<string, RegisteredTool>();
  private ajv: Ajv | undefined;

  /** `checks`: the loaded tool-definition-checks module, else `loadToolDefinitionChecks()` first. */
  constructor(
    readonly limits: ToolCallLimits = defaultToolCallLimits,
    private readonly checks?: typeof ToolDefinitionChecks,
  ) {}

  get size(): number {
    return new Set(this.tools.values()).size;
  }

  /** Whether a tool or alias of this name exists. */
  has(name: string): boolean {
    return this.tools.has(name);
  }

  /** The tool's own name for one of its names or aliases. */
  nameOf(name: string): string | undefined {
    return this.tools.get(name)?.name;
  }

  names(): string[] {
    return [...new Set([...this.tools.values()].map((tool) => tool.name))];
  }

  /** Validates every definition first, so a bad one registers nothing. */
  register(definitions: ToolDefinitions): void {
    if (typeof definitions !== "object" || definitions === null) throw new ToolDefinitionError("tools must be an object");
    const checks = this.checks ?? loadedChecks;
    if (!checks) throw new Error("secure-exec: tool definitions are checked only after loadToolDefinitionChecks()");
    const ajv = (this.ajv ??= checks.createAjv());
    const staged = new Map<string, RegisteredTool>();
    for (const [name, raw] of Object.entries(definitions)) {
      checkName(name, `tool name "${name}"`);
      const parsed = checks.definitionSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ToolDefinitionError(`tools.${name}.${issue.path.join(".") || "definition"}: ${issue.message}`);
      }
      let validate: ValidateFunction;
      try {
        validate = ajv.compile(parsed.data.inputSchema);
      } catch (error) {
        throw new ToolDefinitionError(`tools.${name}.inputSchema is not a valid JSON Schema: ${(error as Error).message}`);
      }
      const tool: RegisteredTool = { name, definition: raw, validate };
      for (const key of [name, ...(parsed.data.commandAliases ?? [])]) {
        checkName(key, `alias "${key}" of tool "${name}"`);
        if (staged.has(key) || this.tools.has(key)) {
          throw new ToolDefinitionError(`tool name or alias "${key}" is already registered`);
        }
        staged.set(key, tool);
      }
    }
    for (const [key, tool] of staged) this.tools.set(key, tool);
  }

  async call(name: unknown, input: unknown, scope: ToolCallScope): Promise<{ ok: true; result: unknown } | { ok: false; error: string; code: string }> {
    const failure = (code: string, error: string) => ({ ok: false as const, code, error });
    if (typeof name !== "string" || !this.tools.has(name)) {
      return failure("ERR_TOOL_NOT_FOUND", `unknown tool "${String(name).slice(0, 64)}"`);
    }
    const tool = this.tools.get(name)!;
    if (!scope.isAllowed(tool.name)) {
      return failure("EACCES", `tool "${tool.name}" is denied by the tool permission policy`);
    }
    if (scope.counters.calls >= this.limits.toolCalls) {
      return failure("ERR_TOOL_LIMIT", `tool call limit of ${this.limits.toolCalls} calls per run reached`);
    }
    if (scope.counters.inFlight >= this.limits.toolCallsInFlight) {
      return failure("ERR_TOOL_LIMIT", `limit of ${this.limits.toolCallsInFlight} tool calls in flight reached`);
    }
    const argumentBytes = Buffer.byteLength(JSON.stringify(input ?? null));
    if (argumentBytes > this.limits.toolArgumentBytes) {
      return failure("ERR_TOOL_LIMIT", `tool "${tool.name}" input is ${argumentBytes} bytes; the limit is ${this.limits.toolArgumentBytes}`);
    }
    if (!tool.validate(input)) {
      const detail = this.ajv!.errorsText(tool.validate.errors, { dataVar: "input" });
      return failure("ERR_TOOL_INPUT", `invalid input for tool "${tool.name}": ${detail}`);
    }
    scope.counters.calls += 1;
    scope.counters.inFlight += 1;
    const timeoutMs = tool.definition.timeoutMs ?? this.limits.toolTimeoutMs;
    const callTimedOut = new AbortController();
    // Fires when the call times out or when its run ends (even after the call returned).
    const callSignal = AbortSignal.any([scope.signal, callTimedOut.signal]);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          callTimedOut.abort(new Error("tool timed out"));
          reject(new ToolTimeout());
        }, timeoutMs);
      });
      const handler = tool.definition.handler as (input: unknown, context: unknown) => unknown;
      const result = await Promise.race([
        Promise.resolve().then(() => handler(input, { runId: scope.runId, tenant: scope.tenant, signal: callSignal })),
        timedOut,
      ]);
      let json: string | undefined;
      try {
        json = JSON.stringify(result === undefined ? null : result);
      } catch (error) {
        return failure("ERR_TOOL_RESULT", `tool "${tool.name}" returned a value that is not JSON-serialisable: ${(error as Error).message}`);
      }
      if (json === undefined) return failure("ERR_TOOL_RESULT", `tool "${tool.name}" returned a value that is not JSON-serialisable`);
      if (Buffer.byteLength(json) > this.limits.toolResultBytes) {
        return failure("ERR_TOOL_LIMIT", `tool "${tool.name}" result exceeds ${this.limits.toolResultBytes} bytes`);
      }
      return { ok: true, result: JSON.parse(json) as unknown };
    } catch (error) {
      if (error instanceof ToolTimeout) return failure("ETIMEDOUT", `tool "${tool.name}" timed out after ${timeoutMs} ms`);
      const message = error instanceof Error ? error.message : String(error);
      return failure("ERR_TOOL_FAILED", `tool "${tool.name}" failed: ${message}`);
    } finally {
      if (timer) clearTimeout(timer);
      scope.counters.inFlight -= 1;
    }
  }
}

class ToolTimeout extends Error {}

function checkName(name: string, what: string): void {
  if (!TOOL_NAME.test(name) || RESERVED_NAMES.has(name)) {
    throw new ToolDefinitionError(`${what} is not allowed: use letters, digits, ".", "_" or "-", starting with a letter`);
  }
}
