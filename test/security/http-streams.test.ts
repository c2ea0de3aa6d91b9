// Every /v1/run answer ends. A guest's value the host cannot write back as JSON (nested
// deeper than the serializer goes) is refused before it is parsed, and however the finishing
// step fails, a stream ends with an error event and a plain request with a clear 500.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../../host/service/server.js";
import { AdmissionGate } from "../../host/service/admission.js";
import { createHttpApp, type HttpTenant, type RunEngine } from "../../host/service/http-app.js";
import type { ExecOptions, RunResult } from "../../host/api/types.js";

const TOKEN = "token-streams-0123456789";
let server: RunningServer;

beforeAll(async () => {
  server = await startServer(
    { port: 0, tenants: { t: { token: TOKEN, limits: { processes: 1 } } } },
    { defaultMetrics: false, logError: () => {} },
  );
});
afterAll(async () => {
  await server?.close();
});

type Event = { type: string; data?: string; exitCode?: number; error?: { code: string; message: string } };

function post(url: string, accept: string | undefined, code: string): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  if (accept) headers.accept = accept;
  // Without the fix the body of such a stream never ends: the read times out.
  return fetch(`${url}/v1/run`, { method: "POST", headers, body: JSON.stringify({ code, timeout: 30_000 }), signal: AbortSignal.timeout(30_000) });
}

describe("a guest value nested 100,000 deep (valid JSON that JSON.stringify cannot write)", () => {
  const DEEP = 'console.log("before"); __return(JSON.parse("[".repeat(1e5) + "]".repeat(1e5)))';

  it("is refused before the host parses it; the NDJSON stream ends with the result", async () => {
    const response = await post(server.url, "application/x-ndjson", DEEP);
    const events = (await response.text()).trim().split("\n").map((line) => JSON.parse(line) as Event);
    expect(events[0]).toEqual({ type: "stdout", data: "before\n" });
    expect(events.filter((event) => event.type === "stderr").map((event) => event.data).join("")).toBe(
      "secure-exec: the value passed to __return nests deeper than 1000 levels; the guest was killed\n",
    );
    expect(events.at(-1)).toEqual({ type: "result", exitCode: 137 });
  });

  it("the service keeps serving", async () => {
    const next = await post(server.url, "application/x-ndjson", "__return(6 * 7)");
    expect((await next.text()).trim()).toBe('{"type":"result","exitCode":0,"value":42}');
  });
});

describe("a result the finishing step cannot serialise", () => {
  // The HTTP layer over an engine whose result holds a BigInt: the serialisation fails.
  const engine: RunEngine = {
    exec: (code, options) => engine.run(code, options),
    async run(_code: string, options: ExecOptions): Promise<RunResult> {
      options.onStdout?.(new TextEncoder().encode("before\n"));
      return { stdout: "before\n", stderr: "", exitCode: 0, value: { big: 10n } };
    },
  };
  const tenant: HttpTenant = {
    name: "t",
    config: { defaultTimeoutMs: 30_000, timeoutCapMs: 60_000 },
    admit: () => gate.admit(),
    runtime: async () => engine,
  };
  const gate = new AdmissionGate("t", { maxConcurrent: 4, ratePerMinute: undefined });
  const ignore = (): void => {};
  const app = createHttpApp({
    settings: { authenticated: true, maxBodyBytes: 1 << 20, metricsToken: undefined },
    authenticate: () => ({ ok: true as const, tenant }),
    observer: { observeRun: ignore, observeRejection: ignore, observeResponse: ignore },
    isShuttingDown: () => false,
    logError: ignore,
  });
  const request = (accept?: string): Promise<Response> =>
    app.request("/v1/run", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...(accept ? { accept } : {}) },
      body: JSON.stringify({ code: "1" }),
    }) as Promise<Response>;

  it("ends an NDJSON stream with an unserializable_value error event", async () => {
    const response = await request("application/x-ndjson");
    const events = (await response.text()).trim().split("\n").map((line) => JSON.parse(line) as Event);
    expect(events[0]).toEqual({ type: "stdout", data: "before\n" });
    expect(events.at(-1)).toEqual({ type: "error", error: { code: "unserializable_value", message: expect.stringMatching(/cannot be written as JSON/) } });
  });

  it("ends an SSE stream the same way", async () => {
    const text = await (await request("text/event-stream")).text();
    expect(text).toMatch(/event: error\ndata: \{"type":"error","error":\{"code":"unserializable_value".*\n\n$/);
  });

  it("answers a plain request with 500 unserializable_value, and frees the tenant's slot", async () => {
    const response = await request();
    expect(response.status).toBe(500);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unserializable_value");
    expect(gate.inFlight).toBe(0);
  });
});
