// A run's attempt can be withdrawn (its process stopped answering) while one of its host calls
// is still arriving. The call's token was checked when the call arrived; it must be checked
// again once the body is in, or the withdrawn attempt reaches a tool beside the attempt that
// replaced it (seen once as a run whose tool ran twice in test/security/placement.test.ts).
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleHostCall, registerRunToken } from "../../host/engine/host-router.js";
import { RUN_TOKEN_HEADER } from "../../host/engine/supervisor-protocol.js";

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer(handleHostCall);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Sends a host call in two pieces, running `between` after the first has been received. */
function callInTwoPieces(token: string, between: () => void): Promise<{ status: number; body: string }> {
  const body = JSON.stringify({ kind: "tool", name: "record", input: { n: 1 } });
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: "127.0.0.1", port, method: "POST", path: "/call", headers: { [RUN_TOKEN_HEADER]: token, "content-length": Buffer.byteLength(body) } },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
      },
    );
    outgoing.on("error", reject);
    outgoing.write(body.slice(0, 10));
    setTimeout(() => {
      between();
      outgoing.end(body.slice(10));
    }, 100);
  });
}

describe("a host call whose attempt is withdrawn while its body arrives", () => {
  it("is refused and never reaches the run's handler", async () => {
    let handled = 0;
    const token = "withdrawn-attempt-token";
    const revoke = registerRunToken(token, async () => {
      handled += 1;
      return { ok: true, value: 1 };
    });
    const reply = await callInTwoPieces(token, revoke);
    expect(reply.status).toBe(403);
    expect(JSON.parse(reply.body)).toMatchObject({ ok: false });
    expect(handled).toBe(0);
  });

  it("a live attempt's call in two pieces still reaches it", async () => {
    let handled = 0;
    const token = "live-attempt-token";
    const revoke = registerRunToken(token, async () => {
      handled += 1;
      return { ok: true, value: 1 };
    });
    const reply = await callInTwoPieces(token, () => {});
    revoke();
    expect(reply.status).toBe(200);
    expect(handled).toBe(1);
  });
});
