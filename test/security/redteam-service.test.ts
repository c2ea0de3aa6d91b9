// Attacks by a client holding a valid token, and by one run against another of the same
// runtime: MCP session opens are admitted like HTTP ones, a request cannot lift the
// operator's CPU budget, and a guest server cannot take another run's port.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startServer, type RunningServer } from "../../host/service/server.js";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, waitFor } from "./helpers.js";

const TOKENS = { churner: "token-churner-0123456789", cpu: "token-cpu-0123456789abcd" } as const;

interface ToolResult {
  content: { type: string; text?: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}
const textOf = (result: ToolResult) => result.content.map((part) => part.text ?? "").join("\n");

describe("a client with a valid token", () => {
  let server: RunningServer;
  let client: Client;
  beforeAll(async () => {
    server = await startServer(
      {
        port: 0,
        tenants: {
          churner: { token: TOKENS.churner, ratePerMinute: 3 },
          cpu: { token: TOKENS.cpu, timeoutMs: 20_000, limits: { cpuTimeLimitMs: 300 } },
        },
      },
      { defaultMetrics: false, logError: () => {} },
    );
    client = new Client({ name: "redteam", version: "0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${TOKENS.churner}` } } }),
    );
  }, 60_000);
  afterAll(async () => {
    await client?.close().catch(() => {});
    await server?.close();
  });

  it("cannot open and close MCP sessions past the tenant's rate (each open is a workerd process)", async () => {
    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as ToolResult;
    const outcomes: string[] = [];
    for (let round = 0; round < 5; round += 1) {
      const created = await call("create_session", {});
      if (created.isError) {
        outcomes.push(textOf(created));
        continue;
      }
      outcomes.push("opened");
      await call("close_session", { sessionId: created.structuredContent?.sessionId as string });
    }
    // ratePerMinute 3: the burst holds three starts; the rest wait for the bucket to refill.
    expect(outcomes.filter((outcome) => outcome === "opened").length).toBeLessThanOrEqual(3);
    expect(outcomes.some((outcome) => /exceeded its rate of 3 runs per minute/.test(outcome))).toBe(true);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/secure_exec_rejections_total\{tenant="churner",reason="rate"\} [1-9]/);
    expect(metrics).toMatch(/secure_exec_session_opens_total\{tenant="churner",outcome="ok"\} [1-3]/);
  }, 120_000);

  it("cannot raise its CPU budget above the operator's limits.cpuTimeLimitMs", async () => {
    const response = await fetch(`${server.url}/v1/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKENS.cpu}`, "content-type": "application/json" },
      body: JSON.stringify({ code: "while (true) {}", cpuTimeLimitMs: 600_000, timeout: 15_000 }),
    });
    const body = (await response.json()) as { exitCode: number; stderr: string };
    expect(body.exitCode).toBe(137);
    expect(body.stderr).toMatch(/CPU time limit of 300 ms exceeded/);
  }, 60_000);
});

describe("guest servers of one runtime", () => {
  let rt: NodeRuntime;
  beforeAll(async () => {
    rt = await createRuntime();
  }, 60_000);
  afterAll(async () => {
    await rt?.dispose();
  });
  // A failed test must not leave its guests holding the port for the next one.
  const started: { kill(): void; wait(): Promise<unknown> }[] = [];
  afterEach(async () => {
    for (const guest of started.splice(0)) {
      guest.kill();
      await guest.wait().catch(() => {});
    }
  });
  const spawn: NodeRuntime["spawn"] = async (...args) => {
    const guest = await rt.spawn(...args);
    started.push(guest);
    return guest;
  };

  const server = (who: string) =>
    `import http from "node:http";
     http.createServer((req, res) => { let body = ""; req.on("data", (c) => (body += c)); req.on("end", () => { console.log(${JSON.stringify(who)} + " got " + body); res.end(${JSON.stringify(who)}); }); }).listen(3000, () => console.log(${JSON.stringify(who)} + " listening"));`;

  it("a later run listening on the same port does not receive the first one's requests", async () => {
    const seen: Record<"A" | "B", string> = { A: "", B: "" };
    const a = await spawn(server("A"), { onStdout: (chunk) => (seen.A += Buffer.from(chunk).toString()) });
    const first = await rt.waitForListener({ port: 3000 }, { timeoutMs: 15_000 });
    expect((await rt.fetch(3000, { method: "POST", body: "for-A-1" })).body).toBe("A");
    const b = await spawn(server("B"), { onStdout: (chunk) => (seen.B += Buffer.from(chunk).toString()) });
    // B's listen reached the host before its "listening" line did (one ordered stream).
    expect(await waitFor(() => seen.B.includes("B listening"), 15_000)).toBe(true);
    expect((await rt.fetch(3000, { method: "POST", body: "for-A-2" })).body).toBe("A");
    expect(rt.findListener({ port: 3000 })?.pid).toBe(first.pid);
    // B going away leaves A's port alone.
    b.kill();
    await b.wait();
    expect(rt.findListener({ port: 3000 })?.pid).toBe(a.pid);
    expect((await rt.fetch(3000, { method: "POST", body: "for-A-3" })).body).toBe("A");
    // The reply and A's stdout travel on two streams: the line may land just after the reply.
    expect(await waitFor(() => seen.A.includes("for-A-3"), 15_000)).toBe(true);
    expect(seen.B).not.toMatch(/for-A/);
    expect(seen.A).toMatch(/for-A-1[\s\S]*for-A-2[\s\S]*for-A-3/);
    a.kill();
    await a.wait();
    expect(rt.findListener({ port: 3000 })).toBeUndefined();
  }, 60_000);

  it("once the holder stops, the next run still listening gets the port", async () => {
    const a = await spawn(server("A"));
    await rt.waitForListener({ port: 3000 }, { timeoutMs: 15_000 });
    let outB = "";
    const b = await spawn(server("B"), { onStdout: (chunk) => (outB += Buffer.from(chunk).toString()) });
    expect(await waitFor(() => outB.includes("B listening"), 15_000)).toBe(true);
    a.kill();
    await a.wait();
    expect(rt.findListener({ port: 3000 })?.pid).toBe(b.pid);
    expect((await rt.fetch(3000, { method: "POST", body: "x" })).body).toBe("B");
    b.kill();
    await b.wait();
  }, 60_000);
});
