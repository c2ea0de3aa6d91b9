import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

let upstream: Server;
let port = 0;
const received: string[] = [];

beforeAll(async () => {
  upstream = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      received.push(`${request.method} ${request.url} ${body}`);
      response.setHeader("x-upstream", "yes");
      response.end(`upstream saw ${request.method} ${request.url} ${body}`);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  port = (upstream.address() as { port: number }).port;
});
afterAll(() => {
  upstream.close();
});

describe("node:http client", () => {
  it("reaches an allowed host through the egress proxy; a denied one and a refused loopback port are 'error' events", async () => {
    const rt = await NodeRuntime.create({
      permissions: { network: { default: "deny", rules: [{ pattern: `127.0.0.1:${port}`, action: "allow" }] } },
    });
    try {
      const result = await rt.exec(`
        import http from "node:http";
        const get = (url) => new Promise((resolve) => {
          http.get(url, (res) => { let body = ""; res.on("data", (c) => body += c); res.on("end", () => resolve(res.statusCode + " " + res.headers["x-upstream"] + " " + body)); })
            .on("error", (e) => resolve("error " + e.code));
        });
        console.log(await get("http://127.0.0.1:${port}/via-http"));
        console.log(await get("http://127.0.0.1:${port + 1}/"));
        console.log(await get("http://example.invalid/"));
      `);
      expect(result.stderr).toBe("");
      expect(result.stdout).toBe(`200 yes upstream saw GET /via-http \nerror ECONNREFUSED\nerror EACCES\n`);
    } finally {
      await rt.dispose();
    }
  });
});

describe("network permission", () => {
  it("is denied by default: guest fetch cannot leave the sandbox", async () => {
    const rt = await NodeRuntime.create();
    try {
      const before = received.length;
      const result = await rt.exec(`try { await fetch("http://127.0.0.1:${port}/") ; console.log("reached") } catch (e) { console.log("blocked", e.name, e.message, e.code, e.cause.code, e.cause.message) }`);
      // Node's refused fetch (TypeError: fetch failed), the refusal in its cause.
      expect(result.stdout).toBe("blocked TypeError fetch failed EACCES EACCES secure-exec: this runtime has no network permission (permissions.network)\n");
      expect(received.length).toBe(before);
    } finally {
      await rt.dispose();
    }
  });

  it("an allow-list routes fetch through the host's egress proxy and enforces it", async () => {
    const rt = await NodeRuntime.create({
      permissions: { network: { default: "deny", rules: [{ pattern: `127.0.0.1:${port}`, action: "allow" }] } },
    });
    try {
      const result = await rt.run(`
        const ok = await fetch("http://127.0.0.1:${port}/items?x=1");
        const posted = await fetch("http://127.0.0.1:${port}/post", { method: "POST", body: "payload" });
        const denied = [];
        for (const url of ["http://127.0.0.1:${port + 1}/", "http://169.254.169.254/latest/meta-data", "http://example.invalid/"]) {
          try { await fetch(url); denied.push("reached " + url) } catch (e) { denied.push(e.code + " " + e.message + ": " + e.cause.message) }
        }
        __return({ status: ok.status, header: ok.headers.get("x-upstream"), body: await ok.text(), posted: await posted.text(), denied });
      `);
      const value = result.value as { status: number; header: string; body: string; posted: string; denied: string[] };
      expect(value.status).toBe(200);
      expect(value.header).toBe("yes");
      expect(value.body).toBe("upstream saw GET /items?x=1 ");
      expect(value.posted).toBe("upstream saw POST /post payload");
      expect(value.denied).toHaveLength(3);
      for (const line of value.denied) expect(line).toMatch(/^EACCES fetch failed: secure-exec: .*denied by the network permission policy/);
    } finally {
      await rt.dispose();
    }
  });

  it("keeps loopback, private and link-local addresses denied unless a rule names them", async () => {
    const rt = await NodeRuntime.create({ permissions: { network: "allow" } });
    try {
      const before = received.length;
      const result = await rt.run(`
        const out = [];
        for (const url of ["http://127.0.0.1:${port}/", "http://localhost:${port}/", "http://[::1]:${port}/", "http://10.0.0.1/", "http://169.254.169.254/"]) {
          try { await fetch(url); out.push("reached") } catch (e) { out.push(e.code) }
        }
        __return(out);
      `);
      expect(result.value).toEqual(["EACCES", "EACCES", "EACCES", "EACCES", "EACCES"]);
      expect(received.length).toBe(before);
    } finally {
      await rt.dispose();
    }
  });
});
