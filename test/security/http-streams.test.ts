// Every /v1/run answer ends: a result that cannot be written as JSON (a value nested deeper
// than the serializer goes) ends a stream with an error event and a plain request with a
// clear 500, and the service keeps serving.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../../host/service/server.js";

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

// Valid JSON (V8 parses it without recursion) that JSON.stringify cannot write back.
const DEEP = 'console.log("before"); __return(JSON.parse("[".repeat(1e6) + "]".repeat(1e6)))';

function post(accept: string | undefined, code: string): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  if (accept) headers.accept = accept;
  return fetch(`${server.url}/v1/run`, { method: "POST", headers, body: JSON.stringify({ code, timeout: 30_000 }), signal: AbortSignal.timeout(30_000) });
}

describe("a result that cannot be serialised", () => {
  it("ends an NDJSON stream with an error event", async () => {
    const response = await post("application/x-ndjson", DEEP);
    expect(response.status).toBe(200);
    // Without the fix the body never ends and this read times out.
    const events = (await response.text()).trim().split("\n").map((line) => JSON.parse(line) as { type: string; error?: { code: string } });
    expect(events[0]).toEqual({ type: "stdout", data: "before\n" });
    expect(events.at(-1)).toEqual({
      type: "error",
      error: { code: "unserializable_value", message: expect.stringMatching(/cannot be written as JSON/) },
    });
  });

  it("ends an SSE stream with an error event", async () => {
    const response = await post("text/event-stream", DEEP);
    const text = await response.text();
    expect(text.endsWith("\n\n")).toBe(true);
    expect(text).toMatch(/event: error\ndata: \{"type":"error","error":\{"code":"unserializable_value"/);
  });

  it("answers a plain request with 500 unserializable_value; the service keeps serving", async () => {
    const response = await post(undefined, DEEP);
    expect(response.status).toBe(500);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unserializable_value");
    const next = await post("application/x-ndjson", "__return(6 * 7)");
    expect((await next.text()).trim()).toBe('{"type":"result","exitCode":0,"value":42}');
  });
});
