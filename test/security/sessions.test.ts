// Resident sessions over HTTP are capped and admitted like runs: concurrent opens cannot
// race past the per-tenant cap (each one is a workerd process), and opens and execs take the
// tenant's concurrency and rate admission and show in the metrics.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../../host/service/server.js";
import { MAX_SESSIONS_PER_TENANT } from "../../host/service/sessions.js";
import { sleep, waitFor } from "./helpers.js";

const TOKENS = { racer: "token-racer-0123456789", bystander: "token-bystander-0123", capped: "token-capped-012345678" } as const;
let server: RunningServer;

beforeAll(async () => {
  server = await startServer(
    {
      port: 0,
      tenants: {
        racer: { token: TOKENS.racer, maxConcurrent: 64 },
        bystander: { token: TOKENS.bystander },
        capped: { token: TOKENS.capped, maxConcurrent: 1, ratePerMinute: 4 },
      },
    },
    { defaultMetrics: false, logError: () => {} },
  );
});
afterAll(async () => {
  await server?.close();
});

async function post(path: string, token: string, body: unknown = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("the session cap holds under concurrent opens", () => {
  it(`20 concurrent POST /v1/sessions open at most ${MAX_SESSIONS_PER_TENANT}; the bystander keeps serving`, async () => {
    const opens = Promise.all(Array.from({ length: 20 }, () => post("/v1/sessions", TOKENS.racer)));
    const bystander = await post("/v1/run", TOKENS.bystander, { code: "__return(6 * 7)" });
    const results = await opens;
    expect(bystander).toMatchObject({ status: 200, body: { exitCode: 0, value: 42 } });
    const opened = results.filter((result) => result.status === 201);
    const refused = results.filter((result) => result.status === 429);
    expect(opened.length).toBeLessThanOrEqual(MAX_SESSIONS_PER_TENANT);
    expect(opened.length + refused.length).toBe(20);
    for (const result of refused) expect((result.body.error as { code: string }).code).toBe("too_many_sessions");
    // Once the first sessions have ended, new ones open again.
    for (const result of opened) {
      await fetch(`${server.url}/v1/sessions/${String(result.body.id)}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKENS.racer}` } });
    }
    expect((await post("/v1/sessions", TOKENS.racer)).status).toBe(201);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/secure_exec_sessions\{tenant="racer"\} 1/);
    expect(metrics).toMatch(new RegExp(`secure_exec_session_opens_total\\{tenant="racer",outcome="ok"\\} ${opened.length + 1}`));
    expect(metrics).toMatch(/secure_exec_rejections_total\{tenant="racer",reason="sessions"\} \d+/);
  });
});

describe("session opens and execs go through the tenant's admission and metrics", () => {
  it("a session exec in flight holds the tenant's only concurrency slot", async () => {
    const opened = await post("/v1/sessions", TOKENS.capped);
    expect(opened.status).toBe(201);
    const id = String(opened.body.id);
    const tenant = server.tenants.get("capped")!;
    const slow = post(`/v1/sessions/${id}/exec`, TOKENS.capped, { code: "await new Promise((r) => setTimeout(r, 1000)); __return(1)" });
    expect(await waitFor(() => tenant.inFlight === 1, 10_000)).toBe(true);
    const run = await post("/v1/run", TOKENS.capped, { code: "__return(1)" });
    expect(run.status).toBe(429);
    expect((run.body.error as { code: string }).code).toBe("concurrency_limit");
    const open = await post("/v1/sessions", TOKENS.capped);
    expect(open.status).toBe(429);
    expect((open.body.error as { code: string }).code).toBe("concurrency_limit");
    expect((await slow).body).toMatchObject({ exitCode: 0, value: 1 });
    expect(tenant.inFlight).toBe(0);

    // The rate (4 per minute) was taken by the open and the exec; two more, then 429.
    expect((await post(`/v1/sessions/${id}/exec`, TOKENS.capped, { code: "__return(2)" })).status).toBe(200);
    expect((await post(`/v1/sessions/${id}/exec`, TOKENS.capped, { code: "__return(3)" })).status).toBe(200);
    const limited = await post(`/v1/sessions/${id}/exec`, TOKENS.capped, { code: "__return(4)" });
    expect(limited.status).toBe(429);
    expect((limited.body.error as { code: string }).code).toBe("rate_limit");
    const limitedOpen = await post("/v1/sessions", TOKENS.capped);
    expect(limitedOpen.status).toBe(429);
    expect((limitedOpen.body.error as { code: string }).code).toBe("rate_limit");

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/secure_exec_runs_total\{tenant="capped",route="session",outcome="ok"\} 3/);
    expect(metrics).toMatch(/secure_exec_rejections_total\{tenant="capped",reason="rate"\} 2/);
  });
});

describe("an open session keeps its tenant's runtime", () => {
  it("idle disposal of the runtime waits until the tenant's sessions are gone", async () => {
    const quick = await startServer(
      { port: 0, tenants: { t: { token: "token-quick-0123456789" } }, idleRuntimeMs: 200 },
      { defaultMetrics: false, logError: () => {} },
    );
    try {
      const headers = { authorization: "Bearer token-quick-0123456789", "content-type": "application/json" };
      const opened = await fetch(`${quick.url}/v1/sessions`, { method: "POST", headers, body: "{}" });
      expect(opened.status).toBe(201);
      const { id } = (await opened.json()) as { id: string };
      // Well past idleRuntimeMs with no run in flight.
      await sleep(1_500);
      const exec = await fetch(`${quick.url}/v1/sessions/${id}/exec`, { method: "POST", headers, body: JSON.stringify({ code: "__return(5)" }) });
      expect(exec.status).toBe(200);
      expect(await exec.json()).toMatchObject({ exitCode: 0, value: 5 });
      expect(quick.tenants.get("t")!.stats()).toBeDefined();
      await fetch(`${quick.url}/v1/sessions/${id}`, { method: "DELETE", headers });
      // With the session gone, the idle runtime is disposed again.
      expect(await waitFor(() => quick.tenants.get("t")!.stats() === undefined, 10_000)).toBe(true);
    } finally {
      await quick.close();
    }
  });
});
