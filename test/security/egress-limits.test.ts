// Egress is bounded per run: a guest's unread body stops the download (backpressure) instead
// of growing host memory; a run's end (or its kill) aborts its downloads; requests in flight
// (limits.egressConnections) and bytes (limits.egressBytes) are capped before work starts.
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing, sleep, waitFor } from "./helpers.js";

const MiB = 1024 * 1024;

/** A loopback upstream: `/big` streams up to 1 GiB (chunked), `/sized` 4 MiB with a length, `/slow` answers after 2 s. */
interface Upstream {
  port: number;
  sentBytes: number;
  receivedBytes: number;
  openBigResponses: number;
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const sockets = new Set<Socket>();
  const chunk = Buffer.alloc(64 * 1024, 120);
  const upstream: Upstream = {
    port: 0,
    sentBytes: 0,
    receivedBytes: 0,
    openBigResponses: 0,
    inFlight: 0,
    maxInFlight: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const streamBig = (response: ServerResponse, total: number): void => {
    upstream.openBigResponses += 1;
    let sent = 0;
    let closed = false;
    response.on("close", () => {
      closed = true;
      upstream.openBigResponses -= 1;
    });
    // Writes as fast as the reader takes it (and no faster): what the host reads is what it sent.
    const pump = (): void => {
      while (!closed && sent < total) {
        sent += chunk.length;
        upstream.sentBytes += chunk.length;
        if (!response.write(chunk)) {
          response.once("drain", pump);
          return;
        }
      }
      if (!closed) response.end();
    };
    pump();
  };
  const server: Server = createServer((request, response) => {
    if (request.url === "/big") {
      response.writeHead(200, { "content-type": "application/octet-stream" });
      streamBig(response, 1024 * MiB);
    } else if (request.url === "/sized") {
      response.writeHead(200, { "content-length": String(4 * MiB) });
      response.end(Buffer.alloc(4 * MiB, 121));
    } else if (request.url === "/sink") {
      request.on("data", (data: Buffer) => (upstream.receivedBytes += data.length));
      request.on("end", () => response.end("received"));
    } else if (request.url === "/slow") {
      upstream.inFlight += 1;
      upstream.maxInFlight = Math.max(upstream.maxInFlight, upstream.inFlight);
      setTimeout(() => {
        upstream.inFlight -= 1;
        response.end("slow");
      }, 2_000);
    } else {
      response.end("ok");
    }
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream.port = (server.address() as AddressInfo).port;
  return upstream;
}

let upstream: Upstream;
let rt: NodeRuntime;
let capped: NodeRuntime;
beforeAll(async () => {
  upstream = await startUpstream();
  const network = { default: "deny" as const, rules: [{ pattern: `127.0.0.1:${upstream.port}`, action: "allow" as const }] };
  [rt, capped] = await Promise.all([
    createRuntime({ permissions: { network }, limits: { egressBytes: 4096 * MiB } }),
    createRuntime({ permissions: { network }, limits: { egressBytes: MiB, egressConnections: 4 } }),
  ]);
});
afterAll(async () => {
  await Promise.all([rt?.dispose(), capped?.dispose()]);
  await upstream?.close();
});

describe("egress backpressure and cancellation", () => {
  it("a body the guest never reads stops the download instead of growing host memory", async () => {
    upstream.sentBytes = 0;
    const rssBefore = process.memoryUsage().rss;
    const result = await rt.run(
      `const response = await fetch("http://127.0.0.1:${upstream.port}/big");
       await new Promise((resolve) => setTimeout(resolve, 3000));
       __return(response.status);`,
      { timeout: 30_000 },
    );
    expect(result.value).toBe(200);
    // Socket and stream buffers hold a few MiB; without backpressure the host read it all (1 GiB).
    expect(upstream.sentBytes).toBeLessThan(128 * MiB);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * MiB);
    // The run ended with the body unread: its download was aborted.
    expect(await waitFor(() => upstream.openBigResponses === 0, 5_000)).toBe(true);
  });

  it("a download in progress is aborted when its guest is killed", async () => {
    upstream.sentBytes = 0;
    const result = await rt.run(
      `const response = await fetch("http://127.0.0.1:${upstream.port}/big");
       const reader = response.body.getReader();
       for (;;) { await reader.read(); await new Promise((resolve) => setTimeout(resolve, 5)); }`,
      { timeout: 1_500 },
    );
    expect(result.exitCode).toBe(137);
    expect(await waitFor(() => upstream.openBigResponses === 0, 5_000)).toBe(true);
    const sentAtKill = upstream.sentBytes;
    await sleep(1_000);
    expect(upstream.sentBytes - sentAtKill).toBeLessThan(8 * MiB);
    expect(upstream.sentBytes).toBeLessThan(512 * MiB);
  });
});

describe("egress caps per run", () => {
  it("requests beyond limits.egressConnections are refused before they reach the upstream", async () => {
    upstream.maxInFlight = 0;
    const result = await capped.run(
      `const outcomes = await Promise.all(Array.from({ length: 12 }, () =>
         fetch("http://127.0.0.1:${upstream.port}/slow").then((r) => r.text(), (e) => e.code + " " + e.message + ": " + e.cause?.message)));
       __return(outcomes);`,
      { timeout: 30_000 },
    );
    const outcomes = result.value as string[];
    expect(outcomes.filter((outcome) => outcome === "slow").length).toBeLessThanOrEqual(4);
    expect(outcomes.filter((outcome) => /limits\.egressConnections = 4/.test(outcome)).length).toBeGreaterThanOrEqual(8);
    expect(upstream.maxInFlight).toBeLessThanOrEqual(4);
    // The cap is on requests in flight: once they are done, the run may fetch again.
    const again = await capped.run(`__return(await (await fetch("http://127.0.0.1:${upstream.port}/ok")).text())`);
    expect(again.value).toBe("ok");
  });

  it("child processes share their run's limits.egressConnections", async () => {
    upstream.maxInFlight = 0;
    const child = `Promise.all(Array.from({ length: 4 }, () => fetch("http://127.0.0.1:${upstream.port}/slow").then((r) => r.text(), (e) => "refused"))).then((o) => console.log(o.join(",")))`;
    const result = await capped.run(
      `import { execFile } from "node:child_process";
       const run = () => new Promise((resolve) => execFile("node", ["-e", ${JSON.stringify(child)}], (error, stdout) => resolve(stdout.trim())));
       __return((await Promise.all([run(), run(), run()])).join(","));`,
      { timeout: 30_000 },
    );
    const outcomes = String(result.value).split(",");
    expect(outcomes).toHaveLength(12);
    expect(outcomes.filter((outcome) => outcome === "slow").length).toBeLessThanOrEqual(4);
    expect(upstream.maxInFlight).toBeLessThanOrEqual(4);
  });

  it("a response larger than what is left of limits.egressBytes is refused from its length", async () => {
    const result = await capped.run(
      `try { await fetch("http://127.0.0.1:${upstream.port}/sized"); __return("fetched"); } catch (e) { __return(e.cause.message); }`,
      { timeout: 30_000 },
    );
    expect(result.value).toMatch(/would exceed this run's limits\.egressBytes = 1048576 bytes/);
  });

  it("a streamed body is cut off once the run has used limits.egressBytes", async () => {
    upstream.sentBytes = 0;
    const result = await capped.run(
      `let received = 0;
       try {
         const reader = (await fetch("http://127.0.0.1:${upstream.port}/big")).body.getReader();
         for (;;) { const { done, value } = await reader.read(); if (done) break; received += value.length; }
         __return("complete " + received);
       } catch (e) { __return("cut off after " + received); }`,
      { timeout: 30_000 },
    );
    expect(result.value).toMatch(/^cut off after \d+$/);
    expect(Number((result.value as string).split(" ").pop())).toBeLessThanOrEqual(MiB);
    expect(await waitFor(() => upstream.openBigResponses === 0, 5_000)).toBe(true);
    expect(upstream.sentBytes).toBeLessThan(64 * MiB);
    // The budget is the run's: the next run starts afresh.
    await expectServing(capped);
    const next = await capped.run(`__return(await (await fetch("http://127.0.0.1:${upstream.port}/ok")).text())`);
    expect(next.value).toBe("ok");
  });

  it("a request body is cut off once the run has used limits.egressBytes", async () => {
    upstream.receivedBytes = 0;
    const result = await capped.run(
      `try { const r = await fetch("http://127.0.0.1:${upstream.port}/sink", { method: "POST", body: new Uint8Array(8 * 1024 * 1024) }); __return(await r.text()); }
       catch (e) { __return("refused: " + e.message); }`,
      { timeout: 30_000 },
    );
    expect(result.value).toMatch(/^refused: /);
    expect(upstream.receivedBytes).toBeLessThanOrEqual(2 * MiB);
  });

  it("limits are validated", async () => {
    await expect(createRuntime({ limits: { egressConnections: 0 } })).rejects.toThrow(/limits\.egressConnections/);
    await expect(createRuntime({ limits: { egressBytes: -1 } })).rejects.toThrow(/limits\.egressBytes/);
  });
});
