// The MCP tools of `secure-exec mcp` and `/mcp`: run code, resident sessions and the virtual
// filesystem of one tenant. Every run takes the tenant's admission first and is counted in
// the service metrics; output is cut for the model with a marker; every failure is a tool
// result with `isError: true` and a message the model can act on. Operator tools (from the
// server config) are host functions of the tenant's runtime: guests call them with
// `callHostTool`; they are never MCP tools of their own.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult, ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { z } from "zod";
import type { NodeRuntime } from "../../runtime/index.js";
import type { ExecOptions, RunResult } from "../api/types.js";
import { API_VERSION, killReasonOf, type HttpObserver, type RunOutcomeLabel } from "../service/http-app.js";
import type { SessionRegistry } from "../service/sessions.js";
import type { Tenant } from "../service/tenancy.js";

/** Characters of each output channel (and of a value or file) shown to the model. */
export const MCP_OUTPUT_CHARS = 20_000;
/** Progress notifications sent for one run at most (output past it still arrives in the result). */
export const MAX_PROGRESS_NOTIFICATIONS = 200;
const PROGRESS_MESSAGE_CHARS = 2_000;
/** Largest code a tool accepts (the HTTP body cap applies on /mcp first). */
const MAX_CODE_CHARS = 1024 * 1024;
/** Largest file content a write_file call accepts. */
const MAX_FILE_CHARS = 8 * 1024 * 1024;

export interface McpToolsBackend {
  tenant: Tenant;
  sessions: SessionRegistry;
  /** Where runs are counted (the service's Prometheus metrics); none for a bare stdio server. */
  observer?: Pick<HttpObserver, "observeRun" | "observeRejection" | "observeSessionOpen">;
  /** Aborts every run of this connection (the HTTP request went away). */
  signal?: AbortSignal;
  logError?: (message: string, error: unknown) => void;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Cuts `text` to `limit` characters with a marker naming what was left out. */
export function truncateForModel(text: string, limit = MCP_OUTPUT_CHARS): { text: string; truncated: boolean } {
  if (text.length <= limit) return { text, truncated: false };
  return { text: `${text.slice(0, limit)}\n[secure-exec: output truncated, ${text.length - limit} more characters not shown]`, truncated: true };
}

function errorResult(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

const runShape = {
  stdout: z.string(),
  stderr: z.string(),
  exitCode: z.number().int(),
  value: z.unknown().optional(),
  truncated: z.boolean().optional(),
};

const timeoutMsField = z.number().int().positive().optional();

/** The tool result of a finished run: readable text plus the same fields as structuredContent. */
function runResult(result: RunResult, what: string, hint: string): CallToolResult {
  const stdout = truncateForModel(result.stdout);
  const stderr = truncateForModel(result.stderr);
  let valueText: string | undefined;
  let value = result.value;
  let valueTruncated = false;
  if (result.value !== undefined) {
    const json = JSON.stringify(result.value) ?? "null";
    const cut = truncateForModel(json);
    valueText = cut.text;
    if (cut.truncated) {
      valueTruncated = true;
      value = cut.text;
    }
  }
  const truncated = stdout.truncated || stderr.truncated || valueTruncated;
  const lines = [`exit code: ${result.exitCode}`];
  if (stdout.text) lines.push(`--- stdout ---\n${stdout.text}`);
  if (stderr.text) lines.push(`--- stderr ---\n${stderr.text}`);
  if (valueText !== undefined) lines.push(`--- value (__return) ---\n${valueText}`);
  if (result.exitCode === 137) lines.push(`The ${what} was killed by a limit (${killReasonOf(result.stderr)}). ${hint}`);
  else if (result.exitCode !== 0) lines.push(`The ${what} failed with exit code ${result.exitCode}; see stderr.`);
  const structured: Record<string, unknown> = { stdout: stdout.text, stderr: stderr.text, exitCode: result.exitCode };
  if (value !== undefined) structured.value = value;
  if (truncated) structured.truncated = true;
  return { content: [{ type: "text", text: lines.join("\n") }], structuredContent: structured, isError: result.exitCode !== 0 };
}

/** Streams output chunks as progress notifications when the client asked for progress. */
function progressReporter(extra: Extra): Pick<ExecOptions, "onStdout" | "onStderr"> {
  const token = extra._meta?.progressToken;
  if (token === undefined) return {};
  let sent = 0;
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  const forward = (channel: "stdout" | "stderr") => (chunk: Uint8Array) => {
    const text = decoders[channel].decode(chunk, { stream: true });
    if (text === "" || sent >= MAX_PROGRESS_NOTIFICATIONS) return;
    sent += 1;
    const message = `${channel}: ${text.length > PROGRESS_MESSAGE_CHARS ? `${text.slice(0, PROGRESS_MESSAGE_CHARS)}…` : text}`;
    extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: sent, message } }).catch(() => {});
  };
  return { onStdout: forward("stdout"), onStderr: forward("stderr") };
}

/** An McpServer whose tools run code as `backend.tenant`. */
export function createMcpToolsServer(backend: McpToolsBackend): McpServer {
  const { tenant, sessions, observer } = backend;
  const server = new McpServer(
    { name: "secure-exec", version: API_VERSION },
    {
      instructions:
        "Run JavaScript (or TypeScript) in a fresh, isolated V8 sandbox with no network and no host access. " +
        "Use run_code for one-off runs (print with console.log, or hand back a JSON value with __return(value)); " +
        "use create_session + session_exec when state must persist between snippets.",
    },
  );
  const cap = tenant.config.timeoutCapMs;
  const timeoutOf = (requested: number | undefined) => Math.min(requested ?? tenant.config.defaultTimeoutMs, cap);
  const timeoutHint = `Make the code faster, or pass a larger timeoutMs (at most ${cap}).`;
  const signalOf = (extra: Extra) => (backend.signal ? AbortSignal.any([extra.signal, backend.signal]) : extra.signal);

  /** Takes the tenant's admission for one run; the answer is an error result when refused. */
  const admitted = async (route: "run" | "session", work: () => Promise<{ result: CallToolResult; run?: RunResult }>): Promise<CallToolResult> => {
    const admission = tenant.admit();
    if (!admission.ok) {
      observer?.observeRejection(tenant.name, admission.reason);
      return errorResult(`${admission.message}; retry in ${admission.retryAfterSeconds} s`);
    }
    const started = performance.now();
    let outcome: RunOutcomeLabel = "error";
    let killReason: ReturnType<typeof killReasonOf> | undefined;
    try {
      const { result, run } = await work();
      if (run) {
        outcome = run.exitCode === 0 ? "ok" : run.exitCode === 137 ? "killed" : "nonzero_exit";
        if (run.exitCode === 137) killReason = killReasonOf(run.stderr);
      }
      return result;
    } catch (error) {
      if (error instanceof Error && (error.name === "AbortError" || error.name === "ClientDisconnected")) {
        outcome = "aborted";
        return errorResult("The run was cancelled; the guest was killed.");
      }
      return errorResult(failureMessage(error, backend));
    } finally {
      admission.release();
      observer?.observeRun(tenant.name, route === "run" ? "mcp" : "mcp_session", outcome, (performance.now() - started) / 1000, killReason);
    }
  };

  const runtimeOf = async (): Promise<NodeRuntime> => tenant.runtime();

  const operatorTools = Object.entries(tenant.config.tools ?? {}).map(([name, tool]) => `- ${name}: ${tool.description}`.slice(0, 300));
  const operatorNote =
    operatorTools.length > 0
      ? `\n\nHost tools the code can call with \`await callHostTool(name, input)\`:\n${operatorTools.slice(0, 50).join("\n")}`
      : "";

  server.registerTool(
    "run_code",
    {
      title: "Run code in a fresh sandbox",
      description:
        "Runs JavaScript as an ES module in a fresh, isolated sandbox (top-level await and node:* builtins work; " +
        "no network; files come from write_file). Returns stdout, stderr, the exit code and the value passed to " +
        `__return(value). Long output is cut with a marker. Exit code 137 means a limit killed it (default time ${tenant.config.defaultTimeoutMs} ms).` +
        operatorNote,
      inputSchema: {
        code: z.string().max(MAX_CODE_CHARS).describe("The program: an ES module. console.log prints; __return(value) hands back a JSON value"),
        stdin: z.string().optional().describe("Text piped to process.stdin"),
        env: z
          .record(z.string().regex(/^[^=\0]+$/, { message: 'env names must not be empty or contain "=" or NUL' }), z.string())
          .optional()
          .describe("Environment variables of this run"),
        timeoutMs: timeoutMsField.describe(`Wall-clock limit in ms (default ${tenant.config.defaultTimeoutMs}, at most ${cap})`),
        language: z.enum(["js", "ts"]).optional().describe('"ts" strips TypeScript types first (default "js")'),
      },
      outputSchema: runShape,
    },
    async (input, extra) =>
      admitted("run", async () => {
        const runtime = await runtimeOf();
        const options: ExecOptions = { timeout: timeoutOf(input.timeoutMs), signal: signalOf(extra), ...progressReporter(extra) };
        if (input.stdin !== undefined) options.stdin = input.stdin;
        if (input.env !== undefined) options.env = input.env;
        if (input.language !== undefined) options.language = input.language;
        const run = await runtime.run(input.code, options);
        return { result: runResult(run, "run", timeoutHint), run };
      }),
  );

  server.registerTool(
    "create_session",
    {
      title: "Start a session",
      description:
        `Starts a resident sandbox whose globals persist between session_exec calls (a REPL). A tenant holds at most ${sessions.maxPerTenant} sessions; ` +
        "end them with close_session (idle ones end on their own).",
      inputSchema: {},
      outputSchema: { sessionId: z.string() },
    },
    async () => {
      const tooMany = () => {
        observer?.observeRejection(tenant.name, "sessions");
        return errorResult(`This tenant already holds ${sessions.maxPerTenant} sessions; close one with close_session first.`);
      };
      if (sessions.count(tenant.name) >= sessions.maxPerTenant) return tooMany();
      // A session is a workerd process: opening one takes the tenant's concurrency and rate
      // admission, as POST /v1/sessions does, so open/close loops cannot start processes unmetered.
      const admission = tenant.admit();
      if (!admission.ok) {
        observer?.observeRejection(tenant.name, admission.reason);
        return errorResult(`${admission.message}; retry in ${admission.retryAfterSeconds} s`);
      }
      const started = performance.now();
      try {
        const opened = await sessions.open(tenant);
        if ("error" in opened) return tooMany();
        observer?.observeSessionOpen?.(tenant.name, "ok", (performance.now() - started) / 1000);
        return { content: [{ type: "text", text: `session started: ${opened.id}` }], structuredContent: { sessionId: opened.id } };
      } catch (error) {
        observer?.observeSessionOpen?.(tenant.name, "error", (performance.now() - started) / 1000);
        return errorResult(failureMessage(error, backend));
      } finally {
        admission.release();
      }
    },
  );

  server.registerTool(
    "session_exec",
    {
      title: "Run a snippet in a session",
      description:
        "Evaluates a snippet in a session made by create_session; variables and globals persist to the next snippet. " +
        "The value of the last expression (or of __return) comes back as value. A timeout or process.exit ends the session.",
      inputSchema: {
        sessionId: z.string().min(1).describe("The id create_session returned"),
        code: z.string().max(MAX_CODE_CHARS).describe("A snippet; top-level await works"),
        timeoutMs: timeoutMsField.describe(`Wall-clock limit in ms (default ${tenant.config.defaultTimeoutMs}, at most ${cap}); on expiry the session ends`),
      },
      outputSchema: runShape,
    },
    async (input) => {
      const session = sessions.get(tenant.name, input.sessionId);
      if (!session) return errorResult(`No session "${input.sessionId.slice(0, 100)}" (it may have ended or expired); start one with create_session.`);
      // Checked here, not only by the runner: a refused exec must not clear the flag the one in flight set.
      if (session.busy) return errorResult("This session is already running a snippet; wait for it to finish.");
      return admitted("session", async () => {
        session.busy = true;
        try {
          const run = await session.runner.exec(input.code, { timeout: timeoutOf(input.timeoutMs) });
          return { result: runResult(run, "snippet", `${timeoutHint} The session has ended; start a new one with create_session.`), run };
        } catch (error) {
          if (error instanceof Error && error.name === "ResidentRunnerBusyError") {
            return { result: errorResult("This session is already running a snippet; wait for it to finish.") };
          }
          sessions.forget(session.id);
          return { result: errorResult(`The session has ended (${error instanceof Error ? error.message : String(error)}); start a new one with create_session.`) };
        } finally {
          session.busy = false;
          session.lastUsed = Date.now();
        }
      });
    },
  );

  server.registerTool(
    "close_session",
    {
      title: "End a session",
      description: "Ends a session made by create_session and frees its sandbox.",
      inputSchema: { sessionId: z.string().min(1).describe("The id create_session returned") },
    },
    async (input) => {
      const closed = await sessions.close(tenant.name, input.sessionId);
      return closed
        ? { content: [{ type: "text", text: `session ${input.sessionId} closed` }] }
        : errorResult(`No session "${input.sessionId.slice(0, 100)}" (it may have ended already).`);
    },
  );

  const pathField = z.string().startsWith("/", { message: "must be an absolute path such as /workspace/data.json" });
  const encodingField = z.enum(["utf8", "base64"]).optional();

  server.registerTool(
    "write_file",
    {
      title: "Write a file",
      description: "Writes a file into the sandbox's virtual filesystem; later run_code runs read it with node:fs (cwd is /workspace).",
      inputSchema: {
        path: pathField.describe("Absolute path, e.g. /workspace/input.csv"),
        content: z.string().max(MAX_FILE_CHARS).describe("The file's contents"),
        encoding: encodingField.describe('"base64" when content is base64-encoded bytes (default "utf8")'),
      },
    },
    async (input) => {
      try {
        const runtime = await runtimeOf();
        const data = input.encoding === "base64" ? Buffer.from(input.content, "base64") : input.content;
        await runtime.writeFile(input.path, data);
        return { content: [{ type: "text", text: `wrote ${typeof data === "string" ? Buffer.byteLength(data) : data.byteLength} bytes to ${input.path}` }] };
      } catch (error) {
        return errorResult(failureMessage(error, backend));
      }
    },
  );

  server.registerTool(
    "read_file",
    {
      title: "Read a file",
      description: "Reads a file of the sandbox's virtual filesystem (what write_file or a run wrote). Long files are cut with a marker.",
      inputSchema: {
        path: pathField.describe("Absolute path, e.g. /workspace/out.json"),
        encoding: encodingField.describe('"base64" to get the bytes base64-encoded (default "utf8")'),
      },
    },
    async (input) => {
      try {
        const runtime = await runtimeOf();
        const bytes = await runtime.readFile(input.path);
        const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(input.encoding === "base64" ? "base64" : "utf8");
        return { content: [{ type: "text", text: truncateForModel(text).text }] };
      } catch (error) {
        return errorResult(failureMessage(error, backend));
      }
    },
  );

  server.registerTool(
    "list_files",
    {
      title: "List a directory",
      description: "Lists a directory of the sandbox's virtual filesystem.",
      inputSchema: { path: pathField.default("/workspace").describe("Absolute directory path (default /workspace)") },
    },
    async (input) => {
      try {
        const runtime = await runtimeOf();
        const entries = await runtime.readDir(input.path);
        const shown = entries.slice(0, 1_000);
        const more = entries.length > shown.length ? `\n[secure-exec: ${entries.length - shown.length} more entries not shown]` : "";
        return { content: [{ type: "text", text: shown.length > 0 ? `${shown.join("\n")}${more}` : `${input.path} is empty` }] };
      } catch (error) {
        return errorResult(failureMessage(error, backend));
      }
    },
  );

  return server;
}

/** A message a model can act on; unexpected failures are reported to the operator too. */
function failureMessage(error: unknown, backend: McpToolsBackend): string {
  const message = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : "";
  if (name === "RuntimeDisposedError" || name === "PoolDisposedError") return "The sandbox runtime was shut down; try again.";
  if (name === "CompilerBusyError") return `${message}`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return message.replace(/^secure-exec: /, "");
  if (error instanceof TypeError || name === "InvalidOptionsError") return message.replace(/^secure-exec: /, "");
  backend.logError?.("secure-exec mcp: tool failed", error);
  return `The sandbox could not run this: ${message.replace(/^secure-exec: /, "")}`;
}
