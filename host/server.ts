// The HTTP front-end (SPEC §3): a Hono app presenting the SDK over HTTP, with bearer-token
// tenancy, per-tenant caps, streaming output, Prometheus metrics and strict input checks.
// The host process only moves bytes: guests run in workerd processes of their tenant's
// runtime, so a runaway guest never stalls this event loop, /healthz or another tenant.
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import type { ExecOptions, RunResult } from "../runtime/types.js";
import { createServerMetrics, killReasonOf, type RunOutcomeLabel, type RunRoute, type ServerMetrics } from "./metrics.js";
import { API_VERSION, resolveServerConfig, type ResolvedServerConfig } from "./server-config.js";
import { TenantRegistry, type Tenant } from "./tenancy.js";
import { MAX_SESSIONS_PER_TENANT, SessionRegistry } from "./sessions.js";

export { API_VERSION } from "./server-config.js";

/** Body of `POST /v1/exec` and `POST /v1/run`. */
export const execRequestSchema = z.strictObject({
  code: z.string().describe("Guest code: an ES module (top-level import and await work)"),
  stdin: z.string().optional().describe("Piped to the guest's process.stdin, then end-of-input"),
  env: z
    .record(z.string().regex(/^[^=\0]+$/, { message: 'env names must not be empty or contain "=" or NUL' }), z.string())
    .optional()
    .describe("Merged over the tenant's env for this run"),
  cwd: z.string().startsWith("/", { message: "must be an absolute path" }).optional().describe("process.cwd() of the run"),
  timeout: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("Wall-clock limit in ms; clamped to the tenant's cap. On expiry exitCode is 137"),
  cpuTimeLimitMs: z.number().int().positive().optional().describe("Budget in ms of keeping the sandbox process busy; on expiry exitCode is 137"),
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
  | "internal_error";

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: { path: string; message: string }[] };
}

export type StreamEvent =
  | { type: "stdout" | "stderr"; data: string }
  | { type: "result"; exitCode: number; value?: unknown }
  | ErrorBody & { type: "error" };

type AppEnv = {
  Variables: {
    tenant: Tenant;
    /** The client connection's signal, captured before any middleware replaces the request. */
    clientSignal: AbortSignal;
  };
};

export interface ServerApp {
  app: Hono<AppEnv>;
  tenants: TenantRegistry;
  metrics: ServerMetrics;
  config: ResolvedServerConfig;
  /** Disposes every tenant's runtime (in-flight runs end with 503 / an error event). */
  dispose(): Promise<void>;
}

export interface ServerAppOptions {
  /** Collect Node process metrics (`secure_exec_host_*`) too. Default true. */
  defaultMetrics?: boolean;
  /** Where unexpected errors are reported. Default `console.error`. */
  logError?: (message: string, error: unknown) => void;
}

/** Constant-time comparison of two secrets (via fixed-length digests). */
function sameSecret(presented: string, expected: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

function errorBody(code: ErrorCode, message: string, issues?: { path: string; message: string }[]): ErrorBody {
  return { error: issues ? { code, message, issues } : { code, message } };
}

function formatIssues(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): { path: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.map(String).join(".") : "(body)",
    message: issue.message,
  }));
}

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);
const KNOWN_ROUTES = ["/v1/exec", "/v1/run", "/healthz", "/metrics", "/openapi.json"];

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

/** Builds the Hono app and its tenants from a config (`ServerConfig` or resolved). */
export function createServerApp(config: ResolvedServerConfig, options: ServerAppOptions = {}): ServerApp {
  const logError = options.logError ?? ((message: string, error: unknown) => console.error(message, error));
  const tenants = new TenantRegistry(config);
  const sessions = new SessionRegistry();
  const metrics = createServerMetrics(tenants, { defaultMetrics: options.defaultMetrics });
  const app = new Hono<AppEnv>();
  const startedAt = Date.now();
  let shuttingDown = false;

  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      if (error.status === 400 && /malformed json/i.test(error.message)) {
        metrics.observeRejection(c.get("tenant")?.name ?? "", "bad_request");
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
    metrics.observeResponse(routeLabel(c.req.path), c.res.status);
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
      status: shuttingDown ? "shutting_down" : "ok",
      version: API_VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    }, shuttingDown ? 503 : 200),
  );

  app.get("/metrics", async (c) => {
    if (config.metricsToken !== undefined && !sameSecret(c.req.header("authorization") ?? "", `Bearer ${config.metricsToken}`)) {
      return c.json(errorBody("unauthorized", "GET /metrics needs the metrics bearer token"), 401, { "WWW-Authenticate": 'Bearer realm="secure-exec"' });
    }
    return c.body(await metrics.render(), 200, { "Content-Type": metrics.contentType });
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument(config)));

  // Everything under /v1 needs a tenant.
  app.use("/v1/*", async (c, next) => {
    const auth = tenants.authenticate(c.req.header("authorization"));
    if (!auth.ok) {
      metrics.observeRejection("", "unauthorized");
      return c.json(errorBody("unauthorized", auth.message), 401, { "WWW-Authenticate": 'Bearer realm="secure-exec"' });
    }
    c.set("tenant", auth.tenant);
    await next();
  });

  const limitBody = bodyLimit({
    maxSize: config.maxBodyBytes,
    onError: (c) => {
      metrics.observeRejection(c.get("tenant")?.name ?? "", "too_large");
      // The unread rest of the body makes the connection unusable: tell the client not to reuse it.
      return c.json(errorBody("payload_too_large", `the request body exceeds ${config.maxBodyBytes} bytes`), 413, { Connection: "close" });
    },
  });

  const requireJson: MiddlewareHandler<AppEnv> = async (c, next) => {
    const contentType = c.req.header("content-type");
    const mediaType = (contentType ?? "").split(";")[0]!.trim();
    if (!JSON_MEDIA_TYPE.test(mediaType)) {
      metrics.observeRejection(c.get("tenant").name, "bad_request");
      return c.json(
        errorBody("unsupported_media_type", `send the request body as JSON with Content-Type: application/json (got ${contentType ? JSON.stringify(contentType.slice(0, 100)) : "none"})`),
        415,
      );
    }
    await next();
  };

  const validateBody = zValidator("json", execRequestSchema, (result, c) => {
    if (result.success) return;
    const issues = formatIssues(result.error);
    // The hook's context is typed without this app's variables.
    metrics.observeRejection((c as unknown as Context<AppEnv>).get("tenant").name, "bad_request");
    const summary = issues.slice(0, 3).map((issue) => `${issue.path}: ${issue.message}`).join("; ");
    return c.json(errorBody("invalid_request", `invalid request body: ${summary}`, issues), 400);
  });

  const handleRun = async (c: Context<AppEnv>, route: RunRoute, body: ExecRequest): Promise<Response> => {
    const tenant = c.get("tenant");
    if (shuttingDown) return c.json(errorBody("shutting_down", "the server is shutting down"), 503);
    const admission = tenant.admit();
    if (!admission.ok) {
      metrics.observeRejection(tenant.name, admission.reason);
      return c.json(errorBody(admission.reason === "rate" ? "rate_limit" : "concurrency_limit", admission.message), 429, {
        "Retry-After": String(admission.retryAfterSeconds),
      });
    }
    const started = performance.now();
    let released = false;
    const finish = (outcome: RunOutcomeLabel, killReason?: ReturnType<typeof killReasonOf>): void => {
      if (released) return;
      released = true;
      admission.release();
      metrics.observeRun(tenant.name, route, outcome, (performance.now() - started) / 1000, killReason);
    };

    let runtime;
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
    if (body.cpuTimeLimitMs !== undefined) callOptions.cpuTimeLimitMs = body.cpuTimeLimitMs;

    const execute = async (): Promise<RunResult> =>
      route === "run" ? runtime.run(body.code, callOptions) : runtime.exec(body.code, callOptions);

    const failureOf = (error: unknown): { status: 499 | 503 | 500; body: ErrorBody; outcome: RunOutcomeLabel } => {
      if (isAbortError(error) || signal.aborted) {
        return { status: 499, body: errorBody("client_closed_request", "the client went away; the run was killed"), outcome: "aborted" };
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
        return c.json(payload, 200);
      } catch (error) {
        const failure = failureOf(error);
        finish(failure.outcome);
        // 499 (client gone) is outside Hono's status union; nobody reads it anyway.
        return new Response(JSON.stringify(failure.body), { status: failure.status, headers: { "Content-Type": "application/json" } });
      }
    }

    // Streaming: output events as produced, then one result (or error) event.
    const encoder = new TextEncoder();
    const format = (event: StreamEvent): Uint8Array =>
      encoder.encode(mode === "sse" ? `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n` : `${JSON.stringify(event)}\n`);
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    let open = true;
    const send = (event: StreamEvent): void => {
      if (!open || !controller) return;
      try {
        controller.enqueue(format(event));
      } catch {
        open = false;
      }
    };
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
        send(event);
      } catch (error) {
        const failure = failureOf(error);
        finish(failure.outcome);
        send({ type: "error", ...failure.body });
      } finally {
        end();
      }
    })();

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
    if (result.success) return;
    const issues = formatIssues(result.error);
    const summary = issues.slice(0, 3).map((issue) => `${issue.path}: ${issue.message}`).join("; ");
    return c.json(errorBody("invalid_request", `invalid request body: ${summary}`, issues), 400);
  });
  app.post("/v1/sessions", async (c) => {
    const tenant = c.get("tenant");
    const opened = await sessions.open(tenant);
    if ("error" in opened) {
      return c.json(errorBody("too_many_sessions", `a tenant may hold at most ${MAX_SESSIONS_PER_TENANT} sessions; DELETE one first`), 429, {
        "Retry-After": "1",
      });
    }
    return c.json({ id: opened.id }, 201);
  });
  app.post("/v1/sessions/:id/exec", limitBody, requireJson, validateSessionExec, async (c) => {
    const tenant = c.get("tenant");
    const session = sessions.get(tenant.name, c.req.param("id"));
    if (!session) return c.json(errorBody("not_found", "no such session (it may have ended or expired)"), 404);
    const body = c.req.valid("json");
    const timeout = Math.min(body.timeout ?? tenant.config.defaultTimeoutMs, tenant.config.timeoutCapMs);
    session.busy = true;
    try {
      const result = await session.runner.exec(body.code, { timeout });
      return c.json(result, 200);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof Error && error.name === "ResidentRunnerBusyError") {
        return c.json(errorBody("session_busy", message), 409);
      }
      sessions.forget(session.id);
      return c.json(errorBody("session_ended", message), 410);
    } finally {
      session.busy = false;
      session.lastUsed = Date.now();
    }
  });
  app.delete("/v1/sessions/:id", async (c) => {
    const closed = await sessions.close(c.get("tenant").name, c.req.param("id"));
    return closed ? c.body(null, 204) : c.json(errorBody("not_found", "no such session"), 404);
  });
  app.all("/v1/sessions", (c) => c.json(errorBody("method_not_allowed", `${c.req.method} is not allowed on /v1/sessions; use POST`), 405, { Allow: "POST" }));

  return {
    app,
    tenants,
    metrics,
    config,
    async dispose() {
      shuttingDown = true;
      await sessions.dispose();
      await tenants.dispose();
    },
  };
}

export interface RunningServer extends ServerApp {
  server: Server;
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  port: number;
  host: string;
  /** Stops accepting, disposes the tenants' runtimes, closes connections. */
  close(): Promise<void>;
}

/** Starts the service (port 0 picks a free port). Accepts a raw `ServerConfig` or a resolved one. */
export async function startServer(
  config: ResolvedServerConfig | Parameters<typeof resolveServerConfig>[0],
  options: ServerAppOptions = {},
): Promise<RunningServer> {
  const resolved = isResolved(config) ? config : resolveServerConfig(config);
  const serverApp = createServerApp(resolved, options);
  const server = await new Promise<Server>((resolve, reject) => {
    const created = serve({ fetch: serverApp.app.fetch, port: resolved.port, hostname: resolved.host }) as Server;
    const onError = (error: Error) => reject(error);
    created.once("error", onError);
    created.once("listening", () => {
      created.off("error", onError);
      resolve(created);
    });
  }).catch(async (error: unknown) => {
    await serverApp.dispose();
    throw error;
  });
  // Keep-alive connections may outlive a request by a few seconds; never hold the host open.
  server.keepAliveTimeout = 5_000;
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    ...serverApp,
    server,
    port: address.port,
    host: resolved.host,
    url: `http://${urlHost}:${address.port}`,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await serverApp.dispose();
        server.closeIdleConnections();
        const grace = setTimeout(() => server.closeAllConnections(), 2_000);
        grace.unref();
        await closed;
        clearTimeout(grace);
      })();
      return closing;
    },
  };
}

function isResolved(config: unknown): config is ResolvedServerConfig {
  return typeof config === "object" && config !== null && "authenticated" in config && Array.isArray((config as { tenants?: unknown }).tenants);
}

/** Hand-written OpenAPI 3.1 description; the request schema is generated from the zod schema. */
export function openApiDocument(config: Pick<ResolvedServerConfig, "authenticated" | "maxBodyBytes">): Record<string, unknown> {
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
            "429": errorResponse("The tenant holds too many sessions"),
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
