// The HTTP service against real workerd processes: routes, streaming, tenancy, limits, bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ToolContext, ToolDefinitions } from "../runtime/index.js";
import { createServerApp, startServer, type RunningServer, type ServerApp } from "../host/service/server.js";
import { loadServerConfig, parseTokenList, resolveServerConfig, ServerConfigError } from "../host/service/server-config.js";

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// The "gate" tool holds a run until the test opens it, so tests never depend on timing.
let gate = deferred();
let gateEntered = deferred();

const tools: ToolDefinitions = {
  add: {
    description: "Adds two numbers",
    inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] },
    handler: ({ a, b }: { a: number; b: number }, context: ToolContext) => ({ sum: a + b, tenant: context.tenant }),
  },
  gate: {
    description: "Resolves when the test opens the gate",
    inputSchema: { type: "object" },
    handler: async () => {
      gateEntered.resolve();
      await gate.promise;
      return "open";
    },
  },
};

const TOKENS = { a: "token-a-0123456789", b: "token-b-0123456789", c: "token-c-0123456789" } as const;
let server: RunningServer;

beforeAll(async () => {
  server = await startServer(
    {
      port: 0,
      tenants: {
        // Tenant a runs the runaways: one sandbox process (a second starts only while it is stuck).
        a: { token: TOKENS.a, limits: { processes: 1 } },
        b: {
          token: TOKENS.b,
          env: { TENANT: "b" },
          tools: { "b-only": { description: "A tool only tenant b has", inputSchema: { type: "object" }, handler: () => "for b" } },
        },
        c: { token: TOKENS.c, maxConcurrent: 1, ratePerMinute: 2 },
      },
      tools,
    },
    { defaultMetrics: false, logError: () => {} },
  );
});

afterAll(async () => {
  gate.resolve();
  await server?.close();
});

interface CallOptions {
  token?: string | null;
  body?: unknown;
  rawBody?: string | ReadableStream<Uint8Array>;
  contentType?: string | null;
  accept?: string;
  method?: string;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

function call(path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  const token = options.token === undefined ? TOKENS.b : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const contentType = options.contentType === undefined ? "application/json" : options.contentType;
  if (contentType !== null) headers["content-type"] = contentType;
  if (options.accept) headers.accept = options.accept;
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const init: RequestInit & { duplex?: "half" } = {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
    signal: options.signal,
  };
  if (body instanceof ReadableStream) init.duplex = "half";
  return fetch(`${server.url}${path}`, init);
}

async function json(path: string, options: CallOptions = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await call(path, options);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

type StreamEvent = { type: string; data?: string; exitCode?: number; value?: unknown; error?: { code: string } };

/** Reads an NDJSON response event by event. */
async function readEvents(response: Response, onEvent?: (event: StreamEvent) => void): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() === "") continue;
      const event = JSON.parse(line) as StreamEvent;
      events.push(event);
      onEvent?.(event);
    }
  }
  return events;
}

/** Joins consecutive output events of the same channel (the guest may batch or split writes). */
function coalesce(events: StreamEvent[]): StreamEvent[] {
  const out: StreamEvent[] = [];
  for (const event of events) {
    const last = out[out.length - 1];
    if (last && (event.type === "stdout" || event.type === "stderr") && last.type === event.type) last.data += event.data ?? "";
    else out.push({ ...event });
  }
  return out;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, withinMs = 15_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("service routes", () => {
  it("answers /healthz and /openapi.json", async () => {
    const health = await json("/healthz", { token: null });
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("ok");
    const openapi = await json("/openapi.json", { token: null });
    expect(openapi.status).toBe(200);
    expect(openapi.body.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(["/v1/exec", "/v1/run", "/healthz", "/metrics"]));
    expect(openapi.body.components.schemas.ExecRequest.required).toEqual(["code"]);
  });

  it("POST /v1/exec returns stdout, stderr and exit code as JSON", async () => {
    const { status, body } = await json("/v1/exec", {
      body: { code: 'console.log("hi", process.env.GREETING, process.env.TENANT); console.error("careful")', env: { GREETING: "hello" } },
    });
    expect(status).toBe(200);
    expect(body).toEqual({ stdout: "hi hello b\n", stderr: "careful\n", exitCode: 0 });
  });

  it("POST /v1/run returns the __return value, with stdin and cwd", async () => {
    const { status, body } = await json("/v1/run", {
      body: {
        code: 'let input = ""; for await (const chunk of process.stdin) input += chunk; __return({ input, cwd: process.cwd() })',
        stdin: "from the request",
        cwd: "/tmp/job",
      },
    });
    expect(status).toBe(200);
    expect(body).toEqual({ stdout: "", stderr: "", exitCode: 0, value: { input: "from the request", cwd: "/tmp/job" } });
  });

  it("passes the guest's exit code and the time limit through", async () => {
    const exited = await json("/v1/exec", { body: { code: "process.exit(3)" } });
    expect(exited.body.exitCode).toBe(3);
    const killed = await json("/v1/exec", { body: { code: 'console.log("started"); await new Promise(() => setInterval(() => {}, 1000))', timeout: 300 } });
    expect(killed.status).toBe(200);
    expect(killed.body.exitCode).toBe(137);
    expect(killed.body.stdout).toBe("started\n");
    expect(killed.body.stderr).toMatch(/time limit of 300 ms exceeded/);
  });

  it("gives every tenant's runtime the operator's tools", async () => {
    const { body } = await json("/v1/run", { body: { code: '__return(await callHostTool("add", { a: 2, b: 3 }))' } });
    expect(body).toMatchObject({ exitCode: 0, value: { sum: 5, tenant: "b" } });
  });

  it("gives a tenant's own tools to that tenant only", async () => {
    const code = 'try { __return(await callHostTool("b-only", {})) } catch (error) { __return(`refused: ${error.message}`) }';
    expect((await json("/v1/run", { body: { code } })).body.value).toBe("for b");
    const other = await json("/v1/run", { token: TOKENS.a, body: { code } });
    expect(other.body.value).toMatch(/^refused: .*b-only/);
    expect(() => resolveServerConfig({ tenants: { x: { token: "t", tools: { bad: { description: "d", inputSchema: {}, handler: 1 } } } } })).toThrow(
      /tenants\.x\.tools\.bad/,
    );
  });
});

describe("streaming", () => {
  it("streams NDJSON stdout/stderr events as produced, then the result", async () => {
    gate = deferred();
    gateEntered = deferred();
    const response = await call("/v1/run", {
      accept: "application/x-ndjson",
      body: {
        code: 'console.log("first"); await callHostTool("gate", {}); console.error("second"); console.log("third"); __return("done")',
      },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/application\/x-ndjson/);
    let sawFirstBeforeGate = false;
    const events = await readEvents(response, (event) => {
      // The run is held at the gate until this event has reached the client: it is truly streamed.
      if (event.type === "stdout" && event.data === "first\n") {
        sawFirstBeforeGate = true;
        gate.resolve();
      }
    });
    expect(sawFirstBeforeGate).toBe(true);
    expect(coalesce(events)).toEqual([
      { type: "stdout", data: "first\n" },
      { type: "stderr", data: "second\n" },
      { type: "stdout", data: "third\n" },
      { type: "result", exitCode: 0, value: "done" },
    ]);
  });

  it("speaks server-sent events with Accept: text/event-stream", async () => {
    const response = await call("/v1/exec", { accept: "text/event-stream", body: { code: 'console.log("sse"); process.exit(2)' } });
    expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
    const text = await response.text();
    expect(text).toContain('event: stdout\ndata: {"type":"stdout","data":"sse\\n"}\n\n');
    expect(text).toMatch(/event: result\ndata: \{"type":"result","exitCode":2\}\n\n$/);
  });
});

describe("tenancy", () => {
  it("answers 401 to a missing, unknown or malformed token", async () => {
    const variants: Record<string, string>[] = [{}, { authorization: "Bearer nope" }, { authorization: `Basic ${TOKENS.b}` }, { authorization: "Bearer" }];
    for (const headers of variants) {
      const response = await fetch(`${server.url}/v1/exec`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ code: "1" }),
      });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await response.json()).error.code).toBe("unauthorized");
    }
  });

  it("answers 429 with Retry-After past a tenant's concurrency cap and rate", async () => {
    gate = deferred();
    gateEntered = deferred();
    // Tenant c: maxConcurrent 1, ratePerMinute 2.
    const held = json("/v1/run", { token: TOKENS.c, body: { code: '__return(await callHostTool("gate", {}))' } });
    await gateEntered.promise;
    const busy = await json("/v1/exec", { token: TOKENS.c, body: { code: "1" } });
    expect(busy.status).toBe(429);
    expect(busy.body.error.code).toBe("concurrency_limit");
    expect(busy.headers.get("retry-after")).toBe("1");
    // Other tenants are not affected.
    expect((await json("/v1/exec", { body: { code: 'console.log("b is fine")' } })).body.stdout).toBe("b is fine\n");
    gate.resolve();
    expect((await held).body).toMatchObject({ exitCode: 0, value: "open" });

    const second = await json("/v1/exec", { token: TOKENS.c, body: { code: "1" } });
    expect(second.status).toBe(200);
    const limited = await json("/v1/exec", { token: TOKENS.c, body: { code: "1" } });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe("rate_limit");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("keeps tenant b's runs and /healthz going while tenant a spins, and a disconnect kills a's runs", async () => {
    const tenantA = server.tenants.get("a")!;
    // Tenant a: a few runaway guests with a long timeout, streamed so we know they started.
    const spinning = deferred();
    const controllers = [0, 1, 2].map(() => new AbortController());
    const runaways = controllers.map(async (controller) => {
      try {
        const response = await call("/v1/exec", {
          token: TOKENS.a,
          accept: "application/x-ndjson",
          signal: controller.signal,
          // Yield once so the output is flushed before the spin blocks the sandbox process.
          body: { code: 'console.log("spinning"); await new Promise((r) => setTimeout(r, 20)); while (true) {}', timeout: 45_000 },
        });
        await readEvents(response, (event) => {
          if (event.type === "stdout") spinning.resolve();
        });
        return "finished";
      } catch {
        return "aborted";
      }
    });
    await spinning.promise;

    const results: { stdout: string; exitCode: number }[] = [];
    const health: number[] = [];
    for (let batch = 0; batch < 10; batch += 1) {
      const [healthz, ...runs] = await Promise.all([
        call("/healthz", { token: null }).then((response) => response.status),
        ...[0, 1, 2, 3, 4].map(async (i) => (await json("/v1/exec", { body: { code: `console.log(${batch * 5 + i} * 2)` } })).body),
      ]);
      health.push(healthz as number);
      results.push(...(runs as { stdout: string; exitCode: number }[]));
    }
    expect(health).toEqual(new Array(10).fill(200));
    expect(results).toHaveLength(50);
    expect(results.map((result) => result.exitCode)).toEqual(new Array(50).fill(0));
    expect(results.map((result) => Number(result.stdout))).toEqual([...Array(50).keys()].map((i) => i * 2));
    // All 50 ended while tenant a's runaways (45 s timeout) were still spinning.
    expect(tenantA.inFlight).toBe(3);

    // Disconnecting kills tenant a's runaways; its stuck process is replaced and serves again.
    for (const controller of controllers) controller.abort();
    expect(await Promise.all(runaways)).toEqual(["aborted", "aborted", "aborted"]);
    await waitFor(() => tenantA.inFlight === 0, "tenant a's runs to end");
    await waitFor(() => (tenantA.stats()?.processesLost ?? 0) >= 1, "tenant a's stuck process to be killed");
    const after = await json("/v1/exec", { token: TOKENS.a, body: { code: 'console.log("a serves again")' } });
    expect(after.body).toEqual({ stdout: "a serves again\n", stderr: "", exitCode: 0 });
    const metrics = await (await call("/metrics", { token: null })).text();
    expect(metrics).toMatch(/secure_exec_runs_total\{tenant="a",route="exec",outcome="aborted"\} 3/);
  });

  it("ends a non-streaming run when its client disconnects", async () => {
    const tenantB = server.tenants.get("b")!;
    const controller = new AbortController();
    gate = deferred();
    gateEntered = deferred();
    const pending = call("/v1/exec", { signal: controller.signal, body: { code: 'await callHostTool("gate", {}); console.log("never")' } });
    await gateEntered.promise;
    expect(tenantB.stats()!.runsInFlight).toBe(1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await waitFor(() => tenantB.stats()!.runsInFlight === 0 && tenantB.inFlight === 0, "the run to end");
    gate.resolve();
  });
});

/** An env of `entries` names K0, K1, … */
function envOf(entries: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: entries }, (_, index) => [`K${index}`, "v"]));
}

describe("bad input", () => {
  const cases: { name: string; options: CallOptions; path?: string; status: number; code: string; mentions?: string }[] = [
    { name: "malformed JSON", options: { rawBody: '{"code": "1",' }, status: 400, code: "invalid_json" },
    { name: "missing code", options: { body: { stdin: "x" } }, status: 400, code: "invalid_request", mentions: "code" },
    { name: "code of the wrong type", options: { body: { code: 42 } }, status: 400, code: "invalid_request", mentions: "code" },
    { name: "timeout of the wrong type", options: { body: { code: "1", timeout: "soon" } }, status: 400, code: "invalid_request", mentions: "timeout" },
    { name: "negative timeout", options: { body: { code: "1", timeout: -5 } }, status: 400, code: "invalid_request", mentions: "timeout" },
    { name: "env with a non-string value", options: { body: { code: "1", env: { A: 1 } } }, status: 400, code: "invalid_request", mentions: "env.A" },
    { name: "env of 5,000 entries", options: { body: { code: "1", env: envOf(5_000) } }, status: 400, code: "invalid_request", mentions: "the limit is 4096 per env" },
    { name: "relative cwd", options: { body: { code: "1", cwd: "tmp" } }, status: 400, code: "invalid_request", mentions: "cwd" },
    { name: "unknown field", options: { body: { code: "1", timeoutMs: 5 } }, status: 400, code: "invalid_request", mentions: "timeoutMs" },
    { name: "an array body", options: { body: [1, 2] }, status: 400, code: "invalid_request" },
    { name: "a null body", options: { rawBody: "null" }, status: 400, code: "invalid_request" },
    { name: "an empty body", options: { rawBody: "" }, status: 400, code: "invalid_json" },
    { name: "text/plain body", options: { body: { code: "1" }, contentType: "text/plain" }, status: 415, code: "unsupported_media_type" },
    { name: "no content type", options: { body: { code: "1" }, contentType: null }, status: 415, code: "unsupported_media_type" },
    { name: "oversized body", options: { body: { code: "x".repeat(1024 * 1024 + 10) } }, status: 413, code: "payload_too_large" },
    { name: "unknown route", path: "/v1/nothing", options: { body: { code: "1" } }, status: 404, code: "not_found" },
    { name: "unknown top-level route", path: "/admin", options: { token: null }, status: 404, code: "not_found" },
    { name: "GET on /v1/exec", options: { method: "GET" }, status: 405, code: "method_not_allowed" },
    { name: "exec in an unknown session", path: "/v1/sessions/s1/exec", options: { body: { code: "1" } }, status: 404, code: "not_found" },
    { name: "a session exec without code", path: "/v1/sessions/s1/exec", options: { body: {} }, status: 400, code: "invalid_request" },
  ];
  for (const testCase of cases) {
    it(`answers ${testCase.status} to ${testCase.name}`, async () => {
      const { status, body } = await json(testCase.path ?? "/v1/exec", testCase.options);
      expect(status).toBe(testCase.status);
      expect(body.error.code).toBe(testCase.code);
      expect(typeof body.error.message).toBe("string");
      if (testCase.mentions) expect(body.error.message).toContain(testCase.mentions);
    });
  }

  it("answers 413 to an oversized chunked body", async () => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 24) return controller.close();
        sent += 1;
        controller.enqueue(sent === 1 ? new TextEncoder().encode('{"code":"') : chunk);
      },
    });
    const { status, body } = await json("/v1/exec", { rawBody: stream });
    expect(status).toBe(413);
    expect(body.error.code).toBe("payload_too_large");
  });

  it("never answers 5xx to ~100 random bodies", async () => {
    // Deterministic PRNG (mulberry32) so a failure can be replayed.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const randomString = (max: number) =>
      Array.from({ length: Math.floor(random() * max) }, () => String.fromCharCode(Math.floor(random() * 0x2fff))).join("");
    const randomValue = (depth: number): unknown => {
      switch (Math.floor(random() * (depth > 2 ? 5 : 7))) {
        case 0: return null;
        case 1: return random() < 0.5;
        case 2: return pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 42]);
        case 3: return randomString(20);
        case 4: return pick(["", "console.log(1)", "__return(1)", "throw new Error('x')", "}{", "process.exit(9)", "await 0"]);
        case 5: return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1));
        default: return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [pick(["code", "env", "stdin", "cwd", "timeout", "x", "__proto__", "constructor"]), randomValue(depth + 1)]));
      }
    };
    const bodies: CallOptions[] = [];
    for (let i = 0; i < 100; i += 1) {
      const kind = Math.floor(random() * 5);
      const contentType = random() < 0.9 ? "application/json" : pick([null, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8", "application/vnd.x+json"]);
      const accept = random() < 0.2 ? pick(["application/x-ndjson", "text/event-stream", "*/*"]) : undefined;
      if (kind === 0) bodies.push({ rawBody: randomString(200), contentType, accept });
      else if (kind === 1) bodies.push({ rawBody: JSON.stringify(randomValue(0)).slice(0, Math.floor(random() * 40)), contentType, accept });
      else if (kind === 2) bodies.push({ body: randomValue(0), contentType, accept });
      else {
        const body: Record<string, unknown> = { code: random() < 0.8 ? pick(["console.log(1)", "__return({a:1})", "throw 1", "}{", "", "process.exit(5)", randomString(30)]) : randomValue(1) };
        if (random() < 0.5) body.timeout = random() < 0.7 ? Math.floor(random() * 2_000) + 1 : randomValue(1);
        if (random() < 0.3) body.env = random() < 0.5 ? { K: randomString(10) } : randomValue(1);
        if (random() < 0.3) body.stdin = random() < 0.7 ? randomString(50) : randomValue(1);
        if (random() < 0.2) body.cwd = random() < 0.5 ? "/w" : randomValue(1);
        if (random() < 0.1) body[pick(["extra", "Code", "signal"])] = randomValue(1);
        bodies.push({ body, contentType, accept });
      }
    }
    const statuses: number[] = [];
    for (let i = 0; i < bodies.length; i += 5) {
      const batch = await Promise.all(
        bodies.slice(i, i + 5).map(async (options) => {
          const response = await call(pick(["/v1/exec", "/v1/run"]), options);
          const text = await response.text();
          if (response.status >= 400) {
            expect(JSON.parse(text).error.code, text).toEqual(expect.any(String));
          }
          return response.status;
        }),
      );
      statuses.push(...batch);
    }
    expect(statuses.filter((status) => status >= 500)).toEqual([]);
    expect(statuses.some((status) => status === 200)).toBe(true);
    expect(statuses.some((status) => status === 400)).toBe(true);
    expect((await json("/healthz", { token: null })).status).toBe(200);
    expect((await json("/v1/exec", { body: { code: 'console.log("ok")' } })).body.stdout).toBe("ok\n");
  });
});

describe("metrics", () => {
  it("exposes run counters, durations, kills, rejections and pool gauges", async () => {
    const response = await call("/metrics", { token: null });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/secure_exec_runs_total\{tenant="b",route="exec",outcome="ok"\} \d+/);
    expect(text).toMatch(/secure_exec_runs_total\{tenant="b",route="run",outcome="ok"\} \d+/);
    expect(text).toMatch(/secure_exec_run_duration_seconds_bucket\{le="[^"]+",tenant="b",route="exec"\} \d+/);
    expect(text).toMatch(/secure_exec_kills_total\{tenant="b",reason="timeout"\} [1-9]/);
    expect(text).toMatch(/secure_exec_rejections_total\{tenant="",reason="unauthorized"\} [1-9]/);
    expect(text).toMatch(/secure_exec_rejections_total\{tenant="c",reason="rate"\} 1/);
    // Processes are recycled as they grow, so any state (and any tenant's RSS) will do.
    expect(text).toMatch(/secure_exec_pool_processes\{tenant="b",state="\w+"\} [1-9]/);
    expect(text).toMatch(/secure_exec_pool_rss_bytes\{tenant="[abc]"\} [1-9]/);
    expect(text).toMatch(/secure_exec_runs_in_flight\{tenant="b"\} 0/);
  });
});

describe("configuration", () => {
  let anonymous: ServerApp | undefined;
  afterAll(async () => {
    await anonymous?.dispose();
  });

  it("without tenants serves an anonymous tenant on loopback only, without auth", async () => {
    expect(() => resolveServerConfig({ host: "0.0.0.0" })).toThrow(ServerConfigError);
    anonymous = createServerApp(resolveServerConfig({}), { defaultMetrics: false });
    const response = await anonymous.app.request("http://127.0.0.1/v1/exec", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: 'console.log("anonymous")' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ stdout: "anonymous\n", stderr: "", exitCode: 0 });
    const rebound = await anonymous.app.request("http://attacker.example/v1/exec", {
      method: "POST",
      headers: { "content-type": "application/json", host: "attacker.example" },
      body: JSON.stringify({ code: "1" }),
    });
    expect(rebound.status).toBe(403);
    const crossSite = await anonymous.app.request("http://127.0.0.1/v1/exec", {
      method: "POST",
      headers: { "content-type": "application/json", host: "127.0.0.1:8080", origin: "https://attacker.example" },
      body: JSON.stringify({ code: "1" }),
    });
    expect(crossSite.status).toBe(403);
    expect((await crossSite.json()).error.code).toBe("forbidden");
  });

  it("guards /metrics with metricsToken when configured", async () => {
    const guarded = createServerApp(resolveServerConfig({ tenants: { a: { token: "t" } }, metricsToken: "metrics-secret" }), { defaultMetrics: false });
    try {
      expect((await guarded.app.request("/metrics")).status).toBe(401);
      expect((await guarded.app.request("/metrics", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      const allowed = await guarded.app.request("/metrics", { headers: { authorization: "Bearer metrics-secret" } });
      expect(allowed.status).toBe(200);
      expect(await allowed.text()).toContain("secure_exec_runs_total");
    } finally {
      await guarded.dispose();
    }
  });

  it("reads SECURE_EXEC_TOKENS and names bad config values", () => {
    expect(parseTokenList("a:one, b:two:three")).toEqual({ a: "one", b: "two:three" });
    expect(() => parseTokenList("justatoken")).toThrow(/tenant:token/);
    const config = resolveServerConfig({ tenants: { a: { token: "x1", maxConcurrent: 2 } } }, { tokens: "a:y2,b:z3" });
    expect(config.tenants.map((tenant) => [tenant.name, tenant.token, tenant.maxConcurrent])).toEqual([
      ["a", "y2", 2],
      ["b", "z3", 16],
    ]);
    expect(() => resolveServerConfig({ tenants: { a: { token: 5 } } })).toThrow(/tenants\.a\.token/);
    expect(() => resolveServerConfig({ tenants: { a: { token: "same" }, b: { token: "same" } } })).toThrow(/same token/);
    expect(() => resolveServerConfig({ tools: { bad: { description: "x", inputSchema: {}, handler: 1 } } })).toThrow(/tools\.bad/);
    expect(() => resolveServerConfig({ prot: 1 })).toThrow(/prot/);
    expect(() => resolveServerConfig({ tenants: { a: { token: "t", limits: { memoryMb: 1 } } } })).toThrow(/limits\.memoryMb.*tenant "a"/);
    expect(() => resolveServerConfig({ maxTimeoutMs: 2 ** 40 })).toThrow(/maxTimeoutMs/);
    expect(() => resolveServerConfig({ instanceId: "host 1" })).toThrow(/instanceId/);
    expect(resolveServerConfig({ instanceId: "a" }, { instanceId: "host-2" }).instanceId).toBe("host-2");
  });

  it("loads the example config module, with shared and per-tenant tools", async () => {
    const config = await loadServerConfig({ configPath: "examples/server-config.example.mjs", env: {} });
    expect(config.tenants.map((tenant) => [tenant.name, Object.keys(tenant.tools ?? {}).sort()])).toEqual([
      ["acme", ["acme-quota", "get-time", "lookup-plan"]],
      ["globex", ["get-time", "lookup-plan"]],
    ]);
  });

  it("prefixes session ids with the instanceId, so a balancer can route them to their host", async () => {
    const prefixed = createServerApp(resolveServerConfig({ tenants: { a: { token: "t" } }, instanceId: "host-7" }), { defaultMetrics: false });
    try {
      const headers = { authorization: "Bearer t", "content-type": "application/json" };
      const opened = await prefixed.app.request("/v1/sessions", { method: "POST", headers, body: "{}" });
      expect(opened.status).toBe(201);
      const { id } = (await opened.json()) as { id: string };
      expect(id).toMatch(/^host-7\.[0-9a-f-]{36}$/);
      const exec = await prefixed.app.request(`/v1/sessions/${id}/exec`, { method: "POST", headers, body: JSON.stringify({ code: "__return(1 + 1)" }) });
      expect(await exec.json()).toMatchObject({ exitCode: 0, value: 2 });
    } finally {
      await prefixed.dispose();
    }
  });
});

describe("resident sessions", () => {
  it("opens a session, keeps globals between execs, and ends it with DELETE", async () => {
    const opened = await json("/v1/sessions", { body: {} });
    expect(opened.status).toBe(201);
    const id = opened.body.id as string;
    const first = await json(`/v1/sessions/${id}/exec`, { body: { code: "globalThis.counter = 41; console.log('set')" } });
    expect(first.status).toBe(200);
    expect(first.body.stdout).toBe("set\n");
    const second = await json(`/v1/sessions/${id}/exec`, { body: { code: "__return(++counter)" } });
    expect(second.body).toMatchObject({ exitCode: 0, value: 42 });
    const closed = await call(`/v1/sessions/${id}`, { method: "DELETE" });
    expect(closed.status).toBe(204);
    expect((await json(`/v1/sessions/${id}/exec`, { body: { code: "1" } })).status).toBe(404);
  });

  it("a session that times out ends with 137 and later execs get 410 or 404", async () => {
    const { body } = await json("/v1/sessions", { body: {} });
    const timedOut = await json(`/v1/sessions/${body.id}/exec`, { body: { code: "while (true) {}", timeout: 300 } });
    expect(timedOut.body.exitCode).toBe(137);
    const later = await json(`/v1/sessions/${body.id}/exec`, { body: { code: "1" } });
    expect([404, 410]).toContain(later.status);
  });
});
