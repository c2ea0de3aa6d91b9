// The HTTP API (SPEC §3) as a Hono app: bearer-token tenancy, per-tenant caps, streaming
// output, strict input checks and the OpenAPI description. It is built from what its host
// provides (tenants and their runtimes, metrics, sessions), so the same routes serve from
// Node (host/service/server.ts) and from the edge Worker (worker-templates/edge/edge-worker.ts).
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { sizedEnv } from "../api/options.js";
import type { ExecOptions, RunResult } from "../api/types.js";
import type { Admission } from "./admission.js";
import { sameSecret, type Authentication } from "./bearer-auth.js";

import { API_VERSION } from "../api/version.js";

export { API_VERSION } from "../api/version.js";

/** `session`: a snippet run in a resident session (`POST /v1/sessions/:id/exec`);
 * `mcp` / `mcp_session`: run_code and session_exec of the MCP tools (host/mcp/). */
export type RunRoute = "exec" | "run" | "session" | "mcp" | "mcp_session";
/** ok: exit 0; nonzero_exit: the guest failed; killed: exit 137 (time, CPU or memory limit);
 * aborted: the client went away; error: the service could not run it. */
export type RunOutcomeLabel = "ok" | "nonzero_exit" | "killed" | "aborted" | "error";
export type KillReason = "timeout" | "cpu" | "memory" | "lost" | "other";
export type RejectionReason = "unauthorized" | "concurrency" | "rate" | "bad_request" | "too_large" | "sessions" | "session_busy";

/** Best-effort: which limit killed a run, from the note appended to stderr. */
export function killReasonOf(stderr: string): KillReason {
  const tail = stderr.slice(-400);
  if (/CPU time limit of \d+ ms exceeded/.test(tail)) return "cpu";
  if (/time limit of \d+ ms exceeded/.test(tail)) return "timeout";
  if (/ran out of memory/.test(tail)) return "memory";
  if (/sandbox process lost/.test(tail)) return "lost";
  return "other";
}

/** Body of `POST /v1/exec` and `POST /v1/run`. */
export const execRequestSchema = z.strictObject({
  code: z.string().describe("Guest code: an ES module (top-level import and await work)"),
  stdin: z.string().optional().describe("Piped to the guest's process.stdin, then end-of-input"),
  env: sizedEnv(z.record(z.string().regex(/^[^=\0]+$/, { message: 'env names must not be empty or contain "=" or NUL' }), z.string()))
    .optional()
    .describe("Merged over the tenant's env for this run"),
  cwd: z.string().startsWith("/", { message: "must be an absolute path" }).optional().describe("process.cwd() of the run"),
  timeout: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("Wall-clock limit in ms; clamped to the tenant's cap. On expiry exitCode is 137"),
  cpuTimeLimitMs: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("Budget in ms of keeping the sandbox process busy; clamped to the tenant's limits.cpuTimeLimitMs. On expiry exitCode is 137"),
});
export type ExecRequest = z.infer<typeof execRequestSchema>;

export type ErrorCode =
  | "invalid_json"
  | "invalid_request"
  | "unsupported_media_type"
  | "payload_too_large"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "concurrency_limit"
  | "rate_limit"
  | "not_implemented"
  | "runtime_unavailable"
  | "shutting_down"
  | "client_closed_request"
  | "too_many_sessions"
  | "session_busy"
  | "session_ended"
  | "misconfigured"
  | "unserializable_value"
  | "internal_error";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: { path: string; message: string }[] };
}

export type StreamEvent =
  | { type: "stdout" | "stderr"; data: string }
  | { type: "result"; exitCode: number; value?: unknown }
  | ErrorBody & { type: "error" };

/** What runs a tenant's code: a `NodeRuntime` on Node, the edge runtime on Cloudflare. */
export interface RunEngine {
  exec(code: string, options: ExecOptions): Promise<RunResult>;
  run(code: string, options: ExecOptions): Promise<RunResult>;
}

export interface HttpTenant {
  readonly name: string;
  readonly config: {
    readonly defaultTimeoutMs: number;
    readonly timeoutCapMs: number;
    /** The operator's limits of the tenant's runtime; a request may lower `cpuTimeLimitMs`, never raise it. */
    readonly limits?: { readonly cpuTimeLimitMs?: number };
  };
  admit(): Admission;
  runtime(): Promise<RunEngine>;
}

export interface HttpSession {
  readonly id: string;
  readonly runner: { exec(code: string, options: { timeout: number }): Promise<RunResult> };
  busy: boolean;
  lastUsed: number;
}

export interface HttpSessions<Tenant extends HttpTenant> {
  readonly maxPerTenant: number;
  /** Sessions the tenant holds, those still opening included. */
  count(tenant: string): number;
  open(tenant: Tenant): Promise<{ id: string } | { error: "too_many_sessions" }>;
  get(tenant: string, id: string): HttpSession | undefined;
  close(tenant: string, id: string): Promise<boolean>;
  forget(id: string): void;
}

/** Where the app reports what it served (Prometheus on Node; nothing on the edge). */
export interface HttpObserver {
  observeRun(tenant: string, route: RunRoute, outcome: RunOutcomeLabel, durationSeconds: number, killReason?: KillReason): void;
  observeRejection(tenant: string, reason: RejectionReason): void;
  /** A session open that was admitted: whether its runner started, and how long that took. */
  observeSessionOpen?(tenant: string, outcome: "ok" | "error", durationSeconds: number): void;
  observeResponse(route: string, status: number): void;
}

export interface HttpAppDependencies<Tenant extends HttpTenant> {
  settings: {
    /** True when tenants are configured (bearer auth on); else only loopback names are served. */
    authenticated: boolean;
    maxBodyBytes: number;
    metricsToken: string | undefined;
  };
  authenticate(authorization: string | undefined): Authentication<Tenant>;
  observer: HttpObserver;
  /** `GET /metrics`; without it the route answers 501. */
  metrics?: { render(): Promise<string>; readonly contentType: string };
  /** Resident sessions; without them `/v1/sessions` answers 501. */
  sessions?: HttpSessions<Tenant>;
  /** MCP over Streamable HTTP at `/mcp` (host/mcp/http.ts); without it `/mcp` answers 501. */
  mcp?: (tenant: Tenant, request: Request, clientSignal: AbortSignal) => Promise<Response>;
  /** Request fields this host cannot honour, with the reason (answered 501, never ignored). */
  unsupportedFields?: Partial<Record<keyof ExecRequest, string>>;
  isShuttingDown(): boolean;
  logError(message: string, error: unknown): void;
}

type AppEnv<Tenant extends HttpTenant> = {
  Variables: {
    tenant: Tenant;
    /** The client connection's signal, captured before any middleware replaces the request. */
    clientSignal: AbortSignal;
  };
};

export function errorBody(code: ErrorCode, message: string, issues?: { path: string; message: string }[]): ErrorBody {
  return { error: issues ? { code, message, issues } : { code, message } };
}

/** 400 body for a request that failed its schema: every issue, the first three in the message. */
function invalidRequestBody(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): ErrorBody {
  const issues = error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.map(String).join(".") : "(body)",
    message: issue.message,
  }));
  const summary = issues.slice(0, 3).map((issue) => `${issue.path}: ${issue.message}`).join("; ");
  return errorBody("invalid_request", `invalid request body: ${summary}`, issues);
}

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);
const KNOWN_ROUTES = ["/v1/exec", "/v1/run", "/healthz", "/metrics", "/openapi.json", "/mcp"];

function routeLabel(path: string): string {
  if (KNOWN_ROUTES.includes(path)) return path;
  if (path === "/v1/sessions" || path.startsWith("/v1/sessions/")) return "/v1/sessions";
  return "other";
}

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith("[")) return hostHeader.slice(0, hostHeader.indexOf("]") + 1).toLowerCase();
  return hostHeader.split(":")[0]!.toLowerCase();
}

type StreamMode = "json" | "ndjson" | "sse";

function streamModeOf(accept: string | undefined): StreamMode {
  const value = (accept ?? "").toLowerCase();
  if (value.includes("application/x-ndjson")) return "ndjson";
  if (value.includes("text/event-stream")) return "sse";
  return "json";
}

function outcomeOf(exitCode: number): RunOutcomeLabel {
  if (exitCode === 0) return "ok";
  if (exitCode === 137) return "killed";
  return "nonzero_exit";
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || error.name === "ClientDisconnected");
}

/** The run ended, but the value it returned cannot be written as JSON (nested too deeply for the serializer). */
function unserializableValue(): ErrorBody {
  return errorBody("unserializable_value", "the run's __return value cannot be written as JSON (it is nested too deeply); the run itself ended");
}

export type HttpApp<Tenant extends HttpTenant> = Hono<AppEnv<Tenant>>;

/** Builds the API's routes over what the host provides. */
export function createHttpApp<Tenant extends HttpTenant>(dependencies: HttpAppDependencies<Tenant>): HttpApp<Tenant> {
  const { settings: config, observer, sessions, logError } = dependencies;
  type Env = AppEnv<Tenant>;
  const app = new Hono<Env>();
  const startedAt = Date.now();

  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      if (error.status === 400 && /malformed json/i.test(error.message)) {
        observer.observeRejection(c.get("tenant")?.name ?? "", "bad_request");
        return c.json(errorBody("invalid_json", "the request body is not valid JSON"), 400);
      }
      if (error.status === 413) return c.json(errorBody("payload_too_large", `the request body exceeds ${config.maxBodyBytes} bytes`), 413);
      const status = error.status >= 400 && error.status < 500 ? error.status : 500;
      return c.json(errorBody(status === 500 ? "internal_error" : "invalid_request", error.message || "bad request"), status);
    }
    logError("secure-exec server: unexpected error", error);
    return c.json(errorBody("internal_error", "internal error"), 500);
  });

  app.notFound((c) => c.json(errorBody("not_found", `no route ${c.req.method} ${c.req.path}`), 404));

  app.use("*", async (c, next) => {
    c.set("clientSignal", c.req.raw.signal);
    await next();
    observer.observeResponse(routeLabel(c.req.path), c.res.status);
  });

  // Without tenants there is no auth: refuse browsers' cross-site requests and DNS rebinding.
  if (!config.authenticated) {
    app.use("*", async (c, next) => {
      const host = c.req.header("host");
      if (host !== undefined && !LOOPBACK_NAMES.has(hostnameOf(host))) {
        return c.json(errorBody("forbidden", `Host "${host.slice(0, 100)}" is not allowed: this unauthenticated server answers only loopback names`), 403);
      }
      const origin = c.req.header("origin");
      if (origin !== undefined && origin !== "null") {
        let originHost = "";
        try {
          originHost = new URL(origin).hostname.toLowerCase();
        } catch {
          // fall through: refused below
        }
        if (!LOOPBACK_NAMES.has(originHost)) {
          return c.json(errorBody("forbidden", "cross-origin requests are not allowed on this unauthenticated server"), 403);
        }
      }
      await next();
    });
  }

  app.get("/healthz", (c) =>
    c.json({
      status: dependencies.isShuttingDown() ? "shutting_down" : "ok",
      version: API_VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    }, dependencies.isShuttingDown() ? 503 : 200),
  );

  app.get("/metrics", async (c) => {
    if (!dependencies.metrics) return c.json(errorBody("not_implemented", "this deployment keeps no Prometheus metrics"), 501);
    if (config.metricsToken !== undefined && !sameSecret(c.req.header("authorization") ?? "", `Bearer ${config.metricsToken}`)) {
      return c.json(errorBody("unauthorized", "GET /metrics needs the metrics bearer token"), 401, { "WWW-Authenticate": 'Bearer realm="secure-exec"' });
    }
    return c.body(await dependencies.metrics.render(), 200, { "Content-Type": dependencies.metrics.contentType });
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument({ ...config, sessions: sessions !== undefined, metrics: dependencies.metrics !== undefined })));

  // Everything under /v1, and /mcp, needs a tenant.
  const requireTenant: MiddlewareHandler<Env> = async (c, next) => {
    const auth = dependencies.authenticate(c.req.header("authorization"));
    if (!auth.ok) {
      observer.observeRejection("", "unauthorized");
      return c.json(errorBody("unauthorized", auth.message), 401, { "WWW-Authenticate": 'Bearer realm="secure-exec"' });
    }
    c.set("tenant", auth.tenant);
    await next();
  };
  app.use("/v1/*", requireTenant);
  app.use("/mcp", requireTenant);

  const limitBody = bodyLimit({
    maxSize: config.maxBodyBytes,
    onError: (c) => {
      observer.observeRejection(c.get("tenant")?.name ?? "", "too_large");
      // The unread rest of the body makes the connection unusable: tell the client not to reuse it.
      return c.json(errorBody("payload_too_large", `the request body exceeds ${config.maxBodyBytes} bytes`), 413, { Connection: "close" });
    },
  });

  app.all("/mcp", limitBody, async (c) => {
    if (!dependencies.mcp) return c.json(errorBody("not_implemented", "this deployment does not serve MCP"), 501);
    if (dependencies.isShuttingDown()) return c.json(errorBody("shutting_down", "the server is shutting down"), 503);
    return dependencies.mcp(c.get("tenant"), c.req.raw, c.get("clientSignal"));
  });

  const requireJson: MiddlewareHandler<Env> = async (c, next) => {
    const contentType = c.req.header("content-type");
    const mediaType = (contentType ?? "").split(";")[0]!.trim();
    if (!JSON_MEDIA_TYPE.test(mediaType)) {
      observer.observeRejection(c.get("tenant").name, "bad_request");
      return c.json(
        errorBody("unsupported_media_type", `send the request body as JSON with Content-Type: application/json (got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : "none"})`),
        415,
      );
    }
    await next();
  };

  const validateBody = zValidator("json", execRequestSchema, (result, c) => {
    if (result.success) return;
    // The hook's context is typed without this app's variables.
    observer.observeRejection((c as unknown as Context<Env>).get("tenant").name, "bad_request");
    return c.json(invalidRequestBody(result.error), 400);
  });

  /** The tenant's concurrency and rate admission, shared by runs, session opens and session execs. */
  const admit = (c: Context<Env>): { ok: true; release: () => void } | { ok: false; response: Response } => {
    const tenant = c.get("tenant");
    if (dependencies.isShuttingDown()) return { ok: false, response: c.json(errorBody("shutting_down", "the server is shutting down"), 503) };
    const admission = tenant.admit();
    if (admission.ok) return admission;
    observer.observeRejection(tenant.name, admission.reason);
    return {
      ok: false,
      response: c.json(errorBody(admission.reason === "rate" ? "rate_limit" : "concurrency_limit", admission.message), 429, {
        "Retry-After": String(admission.retryAfterSeconds),
      }),
    };
  };

  const handleRun = async (c: Context<Env>, route: RunRoute, body: ExecRequest): Promise<Response> => {
    const tenant = c.get("tenant");
    for (const [field, reason] of Object.entries(dependencies.unsupportedFields ?? {})) {
      if (body[field as keyof ExecRequest] !== undefined) return c.json(errorBody("not_implemented", `"${field}" is not supported here: ${reason}`), 501);
    }
    const admission = admit(c);
    if (!admission.ok) return admission.response;
    const started = performance.now();
    let released = false;
    const finish = (outcome: RunOutcomeLabel, killReason?: ReturnType<typeof killReasonOf>): void => {
      if (released) return;
      released = true;
      admission.release();
      observer.observeRun(tenant.name, route, outcome, (performance.now() - started) / 1000, killReason);
    };

    let runtime: RunEngine;
    try {
      runtime = await tenant.runtime();
    } catch (error) {
      finish("error");
      logError(`secure-exec server: cannot start the runtime of tenant "${tenant.name}"`, error);
      return c.json(errorBody("runtime_unavailable", "the sandbox runtime could not be started; try again"), 503, { "Retry-After": "1" });
    }

    const mode = streamModeOf(c.req.header("accept"));
    const streamAbort = new AbortController();
    const signal = AbortSignal.any([c.get("clientSignal"), streamAbort.signal]);
    const timeout = Math.min(body.timeout ?? tenant.config.defaultTimeoutMs, tenant.config.timeoutCapMs);
    const callOptions: ExecOptions = { timeout, signal };
    if (body.stdin !== undefined) callOptions.stdin = body.stdin;
    if (body.env !== undefined) callOptions.env = body.env;
    if (body.cwd !== undefined) callOptions.cwd = body.cwd;
    if (body.cpuTimeLimitMs !== undefined) {
      const cpuCap = tenant.config.limits?.cpuTimeLimitMs;
      callOptions.cpuTimeLimitMs = cpuCap === undefined ? body.cpuTimeLimitMs : Math.min(body.cpuTimeLimitMs, cpuCap);
    }

    const execute = async (): Promise<RunResult> =>
      route === "run" ? runtime.run(body.code, callOptions) : runtime.exec(body.code, callOptions);

    const failureOf = (error: unknown): { status: 499 | 503 | 500; body: ErrorBody; outcome: RunOutcomeLabel } => {
      if (isAbortError(error) || signal.aborted) {
        return { status: 499, body: errorBody("client_closed_request", "the client went away; the run was killed"), outcome: "aborted" };
      }
      if (error instanceof Error && error.name === "CompilerBusyError") {
        return { status: 503, body: errorBody("runtime_unavailable", error.message), outcome: "error" };
      }
      if (error instanceof Error && error.name === "RuntimeDisposedError") {
        return { status: 503, body: errorBody("shutting_down", "the tenant's runtime was shut down during the run"), outcome: "error" };
      }
      logError(`secure-exec server: run of tenant "${tenant.name}" failed`, error);
      return { status: 500, body: errorBody("internal_error", "the run failed inside the service"), outcome: "error" };
    };

    if (mode === "json") {
      try {
        const result = await execute();
        finish(outcomeOf(result.exitCode), result.exitCode === 137 ? killReasonOf(result.stderr) : undefined);
        const payload: RunResult = { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode };
        if (route === "run" && result.value !== undefined) payload.value = result.value;
        let text: string;
        try {
          text = JSON.stringify(payload);
        } catch {
          return c.json(unserializableValue(), 500);
        }
        return c.body(text, 200, { "Content-Type": "application/json" });
      } catch (error) {
        const failure = failureOf(error);
        finish(failure.outcome);
        // 499 (client gone) is outside Hono's status union; nobody reads it anyway.
        const headers: Record<string, string> = { "Content-Type": "application/json" };
        if (failure.status === 503) headers["Retry-After"] = "1";
        return new Response(JSON.stringify(failure.body), { status: failure.status, headers });
      }
    }

    // Streaming: output events as produced, then one result (or error) event.
    const encoder = new TextEncoder();
    const format = (event: StreamEvent): Uint8Array =>
      encoder.encode(mode === "sse" ? `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n` : `${JSON.stringify(event)}\n`);
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    let open = true;
    /** Sends one event; false if it cannot be written as JSON (nothing was sent). */
    const send = (event: StreamEvent): boolean => {
      if (!open || !controller) return true;
      let bytes: Uint8Array;
      try {
        bytes = format(event);
      } catch {
        return false;
      }
      try {
        controller.enqueue(bytes);
      } catch {
        open = false;
      }
      return true;
    };
    // However the run ended, the stream ends: a client must never wait on a stream nothing writes.
    const end = (): void => {
      if (!open || !controller) return;
      open = false;
      try {
        controller.close();
      } catch {
        // already closed by the client
      }
    };
    const stream = new ReadableStream<Uint8Array>({
      start(streamController) {
        controller = streamController;
      },
      cancel() {
        open = false;
        const reason = new Error("the client closed the response stream");
        reason.name = "ClientDisconnected";
        streamAbort.abort(reason);
      },
    });
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    const forward = (type: "stdout" | "stderr") => (chunk: Uint8Array) => {
      const data = decoders[type].decode(chunk, { stream: true });
      if (data.length > 0) send({ type, data });
    };
    callOptions.onStdout = forward("stdout");
    callOptions.onStderr = forward("stderr");

    void (async () => {
      try {
        const result = await execute();
        finish(outcomeOf(result.exitCode), result.exitCode === 137 ? killReasonOf(result.stderr) : undefined);
        for (const type of ["stdout", "stderr"] as const) {
          const rest = decoders[type].decode();
          if (rest.length > 0) send({ type, data: rest });
        }
        const event: StreamEvent = { type: "result", exitCode: result.exitCode };
        if (route === "run" && result.value !== undefined) event.value = result.value;
        if (!send(event)) send({ type: "error", ...unserializableValue() });
      } catch (error) {
        const failure = failureOf(error);
        finish(failure.outcome);
        send({ type: "error", ...failure.body });
      } finally {
        end();
      }
    })().catch((error: unknown) => logError(`secure-exec server: the result stream of tenant "${tenant.name}" failed`, error));

    return c.body(stream, 200, {
      "Content-Type": mode === "sse" ? "text/event-stream; charset=utf-8" : "application/x-ndjson; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      "X-Accel-Buffering": "no",
    });
  };

  for (const route of ["exec", "run"] as const) {
    app.post(`/v1/${route}`, limitBody, requireJson, validateBody, (c) => handleRun(c, route, c.req.valid("json")));
    app.all(`/v1/${route}`, (c) =>
      c.json(errorBody("method_not_allowed", `${c.req.method} is not allowed on /v1/${route}; use POST`), 405, { Allow: "POST" }),
    );
  }

  // Resident sessions: a live guest per session; globals persist between its execs.
  const sessionExecSchema = z.strictObject({
    code: z.string().describe("A snippet; globals persist between the session's snippets"),
    timeout: z.number().int().positive().optional().describe("Wall-clock limit in ms; on expiry the session ends"),
  });
  const validateSessionExec = zValidator("json", sessionExecSchema, (result, c) => {
    if (!result.success) return c.json(invalidRequestBody(result.error), 400);
  });
  const sessionsMissing = (c: Context<Env>) => c.json(errorBody("not_implemented", "this deployment has no resident sessions"), 501);
  const tooManySessions = (c: Context<Env>, max: number) => {
    observer.observeRejection(c.get("tenant").name, "sessions");
    return c.json(errorBody("too_many_sessions", `a tenant may hold at most ${max} sessions; DELETE one first`), 429, { "Retry-After": "1" });
  };
  // Opening a session starts a workerd process: it is admitted like a run (the tenant's
  // concurrency and rate), after the session cap, so a refused open consumes nothing.
  app.post("/v1/sessions", async (c) => {
    if (!sessions) return sessionsMissing(c);
    const tenant = c.get("tenant");
    if (sessions.count(tenant.name) >= sessions.maxPerTenant) return tooManySessions(c, sessions.maxPerTenant);
    const admission = admit(c);
    if (!admission.ok) return admission.response;
    const started = performance.now();
    try {
      // Takes the session slot synchronously, in the same turn as the check above.
      const opened = await sessions.open(tenant);
      if ("error" in opened) return tooManySessions(c, sessions.maxPerTenant);
      observer.observeSessionOpen?.(tenant.name, "ok", (performance.now() - started) / 1000);
      return c.json({ id: opened.id }, 201);
    } catch (error) {
      observer.observeSessionOpen?.(tenant.name, "error", (performance.now() - started) / 1000);
      if (dependencies.isShuttingDown()) return c.json(errorBody("shutting_down", "the server is shutting down"), 503);
      logError(`secure-exec server: cannot open a session for tenant "${tenant.name}"`, error);
      return c.json(errorBody("runtime_unavailable", "the session could not be started; try again"), 503, { "Retry-After": "1" });
    } finally {
      admission.release();
    }
  });
  app.post("/v1/sessions/:id/exec", limitBody, requireJson, validateSessionExec, async (c) => {
    if (!sessions) return sessionsMissing(c);
    const tenant = c.get("tenant");
    const session = sessions.get(tenant.name, c.req.param("id"));
    if (!session) return c.json(errorBody("not_found", "no such session (it may have ended or expired)"), 404);
    const body = c.req.valid("json");
    const timeout = Math.min(body.timeout ?? tenant.config.defaultTimeoutMs, tenant.config.timeoutCapMs);
    if (session.busy) {
      observer.observeRejection(tenant.name, "session_busy");
      return c.json(errorBody("session_busy", "secure-exec: another exec of this session is in flight"), 409);
    }
    const admission = admit(c);
    if (!admission.ok) return admission.response;
    const started = performance.now();
    const finish = (outcome: RunOutcomeLabel, killReason?: KillReason): void =>
      observer.observeRun(tenant.name, "session", outcome, (performance.now() - started) / 1000, killReason);
    session.busy = true;
    try {
      const result = await session.runner.exec(body.code, { timeout });
      finish(outcomeOf(result.exitCode), result.exitCode === 137 ? killReasonOf(result.stderr) : undefined);
      return c.json(result, 200);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof Error && error.name === "ResidentRunnerBusyError") {
        observer.observeRejection(tenant.name, "session_busy");
        return c.json(errorBody("session_busy", message), 409);
      }
      finish("error");
      sessions.forget(session.id);
      return c.json(errorBody("session_ended", message), 410);
    } finally {
      admission.release();
      session.busy = false;
      session.lastUsed = Date.now();
    }
  });
  app.delete("/v1/sessions/:id", async (c) => {
    if (!sessions) return sessionsMissing(c);
    const closed = await sessions.close(c.get("tenant").name, c.req.param("id"));
    return closed ? c.body(null, 204) : c.json(errorBody("not_found", "no such session"), 404);
  });
  app.all("/v1/sessions", (c) => c.json(errorBody("method_not_allowed", `${c.req.method} is not allowed on /v1/sessions; use POST`), 405, { Allow: "POST" }));

  return app;
}

/** Hand-written OpenAPI 3.1 description; the request schema is generated from the zod schema. */
export function openApiDocument(config: { authenticated: boolean; maxBodyBytes: number; sessions: boolean; metrics: boolean }): Record<string, unknown> {
  const requestSchema = z.toJSONSchema(execRequestSchema) as Record<string, unknown>;
  delete requestSchema.$schema;
  const errorRef = { $ref: "#/components/schemas/Error" };
  const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: errorRef } } });
  const runOperation = (route: RunRoute) => ({
    summary: route === "run" ? "Run guest code and return its output and __return value" : "Run guest code and return its output",
    operationId: route,
    ...(config.authenticated ? { security: [{ bearer: [] }] } : {}),
    requestBody: {
      required: true,
      description: `JSON, at most ${config.maxBodyBytes} bytes`,
      content: { "application/json": { schema: { $ref: "#/components/schemas/ExecRequest" } } },
    },
    responses: {
      "200": {
        description:
          "The run ended (any exit code; 137 = killed by a limit). With Accept: application/x-ndjson or text/event-stream the body is a stream of StreamEvent.",
        content: {
          "application/json": { schema: { $ref: route === "run" ? "#/components/schemas/RunResult" : "#/components/schemas/ExecResult" } },
          "application/x-ndjson": { schema: { $ref: "#/components/schemas/StreamEvent" } },
          "text/event-stream": { schema: { type: "string", description: "event: <type>\\ndata: <StreamEvent JSON>\\n\\n" } },
        },
      },
      "400": errorResponse("Malformed JSON (invalid_json) or a bad field (invalid_request; error.issues lists them)"),
      "401": errorResponse("Missing or unknown bearer token"),
      "403": errorResponse("Unauthenticated (loopback-only) server: a non-loopback Host or Origin"),
      "405": errorResponse("Not POST"),
      "413": errorResponse("Body too large"),
      "415": errorResponse("Body not sent as application/json"),
      "429": {
        ...errorResponse("The tenant's concurrency cap (concurrency_limit) or rate (rate_limit) is exhausted; see Retry-After"),
        headers: { "Retry-After": { schema: { type: "integer" }, description: "Seconds to wait" } },
      },
      "503": errorResponse("The runtime could not start or is shutting down"),
    },
  });
  return {
    openapi: "3.1.0",
    info: {
      title: "secure-exec HTTP API",
      version: API_VERSION,
      description: "Run untrusted JavaScript in workerd sandboxes. See docs/http-api.md.",
    },
    paths: {
      "/v1/exec": { post: runOperation("exec") },
      "/v1/run": { post: runOperation("run") },
      "/v1/sessions": {
        post: {
          summary: "Open a resident session (a live guest whose globals persist between execs)",
          operationId: "createSession",
          responses: {
            "201": { description: "Session opened", content: { "application/json": { schema: { type: "object", properties: { id: { type: "string" } }, required: ["id"] } } } },
            "429": errorResponse("The tenant holds too many sessions (too_many_sessions), or its concurrency cap or rate is exhausted"),
            "503": errorResponse("The session's runner could not start, or the server is shutting down"),
          },
        },
      },
      "/v1/sessions/{id}/exec": {
        post: {
          summary: "Evaluate a snippet in the session",
          operationId: "execInSession",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          requestBody: {
            required: true,
            content: { "application/json": { schema: { type: "object", properties: { code: { type: "string" }, timeout: { type: "integer", minimum: 1 } }, required: ["code"] } } },
          },
          responses: {
            "200": { description: "The snippet's result ({ stdout, stderr, exitCode, value? })" },
            "404": errorResponse("No such session"),
            "409": errorResponse("Another exec of this session is in flight"),
            "429": errorResponse("The tenant's concurrency cap (concurrency_limit) or rate (rate_limit) is exhausted"),
            "410": errorResponse("The session has ended (timeout, process.exit, crash)"),
          },
        },
      },
      "/v1/sessions/{id}": {
        delete: {
          summary: "End the session",
          operationId: "deleteSession",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: { "204": { description: "Ended" }, "404": errorResponse("No such session") },
        },
      },
      "/healthz": {
        get: {
          summary: "Liveness of the HTTP host",
          operationId: "healthz",
          responses: {
            "200": {
              description: "Up",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: { status: { type: "string" }, version: { type: "string" }, uptimeSeconds: { type: "integer" } },
                  },
                },
              },
            },
            "503": { description: "Shutting down" },
          },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics (text exposition format)",
          operationId: "metrics",
          responses: { "200": { description: "Metrics", content: { "text/plain": { schema: { type: "string" } } } } },
        },
      },
      "/openapi.json": {
        get: { summary: "This document", operationId: "openapi", responses: { "200": { description: "OpenAPI 3.1 document" } } },
      },
    },
    components: {
      ...(config.authenticated ? { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } } : {}),
      schemas: {
        ExecRequest: requestSchema,
        ExecResult: {
          type: "object",
          required: ["stdout", "stderr", "exitCode"],
          properties: { stdout: { type: "string" }, stderr: { type: "string" }, exitCode: { type: "integer" } },
        },
        RunResult: {
          type: "object",
          required: ["stdout", "stderr", "exitCode"],
          properties: {
            stdout: { type: "string" },
            stderr: { type: "string" },
            exitCode: { type: "integer" },
            value: { description: "What the guest passed to __return (only when exitCode is 0 and __return was called)" },
          },
        },
        StreamEvent: {
          oneOf: [
            {
              type: "object",
              required: ["type", "data"],
              properties: { type: { enum: ["stdout", "stderr"] }, data: { type: "string" } },
            },
            {
              type: "object",
              required: ["type", "exitCode"],
              properties: { type: { const: "result" }, exitCode: { type: "integer" }, value: {} },
            },
            {
              type: "object",
              required: ["type", "error"],
              properties: { type: { const: "error" }, error: { $ref: "#/components/schemas/ErrorDetail" } },
            },
          ],
        },
        Error: {
          type: "object",
          required: ["error"],
          properties: { error: { $ref: "#/components/schemas/ErrorDetail" } },
        },
        ErrorDetail: {
          type: "object",
          required: ["code", "message"],
          properties: {
            code: { type: "string", description: "Stable machine-readable code, e.g. invalid_request, rate_limit" },
            message: { type: "string", description: "What was wrong, for humans" },
            issues: {
              type: "array",
              description: "Every field problem of an invalid_request",
              items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } },
            },
          },
        },
      },
    },
  };
}
