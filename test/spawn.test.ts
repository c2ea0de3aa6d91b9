import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { NodeRuntime } from "../runtime/index.js";

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await NodeRuntime.create({ limits: { processes: 2 } });
});
afterAll(async () => {
  await rt.dispose();
});

const decoder = new TextDecoder();

describe("spawn", () => {
  it("streams stdin in and output out, and wait() resolves with the exit code", async () => {
    const chunks: string[] = [];
    const guest = await rt.spawn(
      'process.stdin.on("data", (d) => console.log("got", String(d).trim())); process.stdin.on("end", () => { console.log("bye"); process.exit(7) })',
      { onStdout: (chunk) => chunks.push(decoder.decode(chunk)) },
    );
    expect(guest.pid).toBeGreaterThan(0);
    expect(guest.exitCode).toBeNull();
    await guest.writeStdin("one\n");
    await guest.writeStdin(new TextEncoder().encode("two\n"));
    await guest.closeStdin();
    expect(await guest.wait()).toBe(7);
    expect(guest.exitCode).toBe(7);
    expect(chunks.join("")).toBe("got one\ngot two\nbye\n");
  });

  it("runs until it exits: no hidden time cap", async () => {
    const guest = await rt.spawn("await new Promise((r) => setTimeout(r, 1_200)); process.exitCode = 3");
    expect(await guest.wait()).toBe(3);
  });

  it("kill() ends the guest with 128 + signal, by name or number", async () => {
    const first = await rt.spawn("setInterval(() => {}, 1000)");
    first.kill();
    expect(await first.wait()).toBe(143);
    const second = await rt.spawn("setInterval(() => {}, 1000)");
    second.kill(9);
    expect(await second.wait()).toBe(137);
    const third = await rt.spawn("setInterval(() => {}, 1000)");
    third.kill("SIGINT");
    expect(await third.wait()).toBe(130);
  });

  it("rejects an unknown signal name clearly", async () => {
    const guest = await rt.spawn("setInterval(() => {}, 1000)");
    expect(() => guest.kill("SIGNOPE")).toThrow(/unknown signal "SIGNOPE"/);
    guest.kill();
    await guest.wait();
  });

  it("kill racing a natural exit settles once", async () => {
    const guest = await rt.spawn('console.log("quick")');
    guest.kill();
    guest.kill("SIGKILL");
    const code = await guest.wait();
    expect([0, 143]).toContain(code);
    expect(await guest.wait()).toBe(code);
  });

  it("honours timeout", async () => {
    const guest = await rt.spawn("setInterval(() => {}, 1000)", { timeout: 300 });
    expect(await guest.wait()).toBe(137);
  });

  it("honours signal: wait() rejects with the reason", async () => {
    const controller = new AbortController();
    const guest = await rt.spawn("setInterval(() => {}, 1000)", { signal: controller.signal });
    controller.abort();
    await expect(guest.wait()).rejects.toMatchObject({ name: "AbortError" });
  });

  it("takes initial stdin as an option", async () => {
    let output = "";
    const guest = await rt.spawn("for await (const c of process.stdin) process.stdout.write(String(c).toUpperCase())", {
      stdin: "given up front",
      onStdout: (chunk) => (output += decoder.decode(chunk)),
    });
    expect(await guest.wait()).toBe(0);
    expect(output).toBe("GIVEN UP FRONT");
  });

  it("runs 50 spawned guests at once, and dispose() kills them all", async () => {
    const own = await NodeRuntime.create({ limits: { processes: 2 } });
    const guests = await Promise.all(Array.from({ length: 50 }, () => own.spawn("setInterval(() => {}, 1000)")));
    expect(new Set(guests.map((guest) => guest.pid)).size).toBe(50);
    expect(guests.every((guest) => guest.exitCode === null)).toBe(true);
    const pids = own.processIds();
    await own.dispose();
    const codes = await Promise.all(guests.map((guest) => guest.wait()));
    expect(codes.every((code) => code !== 0)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe("guest HTTP servers", () => {
  it("serves http.createServer(...).listen(port) to rt.fetch without opening a host port", async () => {
    const server = await rt.spawn(`
      import http from "node:http";
      http.createServer((req, res) => {
        let body = "";
        req.on("data", (chunk) => (body += chunk));
        req.on("end", () => {
          res.setHeader("content-type", "text/plain");
          res.writeHead(201, { "x-method": req.method });
          res.end(req.method + " " + req.url + " " + body + " " + req.headers["x-token"]);
        });
      }).listen(3000, () => console.log("listening"));
    `);
    const listener = await rt.waitForListener({ port: 3000 }, { timeoutMs: 10_000 });
    expect(listener).toEqual({ port: 3000, pid: server.pid });
    expect(rt.findListener({ port: 3000 })).toEqual(listener);
    const response = await rt.fetch(3000, { method: "POST", path: "/items?x=1", headers: { "X-Token": "t" }, body: "payload" });
    expect(response).toEqual({
      status: 201,
      statusText: "Created",
      headers: { "content-type": "text/plain", "x-method": "POST" },
      body: "POST /items?x=1 payload t",
    });
    server.kill();
    await server.wait();
    expect(rt.findListener({ port: 3000 })).toBeUndefined();
    await expect(rt.fetch(3000)).rejects.toThrow(/no guest is listening on port 3000/);
  });

  it("waitForListener times out clearly for a server that never listens", async () => {
    const guest = await rt.spawn("setInterval(() => {}, 1000)");
    await expect(rt.waitForListener({ port: 4321 }, { timeoutMs: 300 })).rejects.toThrow(
      /no guest listened on port 4321 within 300 ms/,
    );
    const controller = new AbortController();
    const waiting = rt.waitForListener({ port: 4321 }, { signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
    guest.kill();
    await guest.wait();
  });

  it("server.close() ends the run when nothing else keeps it alive", async () => {
    const guest = await rt.spawn(`
      import { createServer } from "node:http";
      const server = createServer((req, res) => { res.end("once"); server.close(); }).listen(3001);
    `);
    await rt.waitForListener({ port: 3001 }, { timeoutMs: 10_000 });
    expect((await rt.fetch(3001)).body).toBe("once");
    expect(await guest.wait()).toBe(0);
  });
});

describe("guest servers the Workers way", () => {
  it("serves a default-exported Hono app on PORT", async () => {
    const own = await NodeRuntime.create({ nodeModules: fileURLToPath(new URL("../node_modules", import.meta.url)) });
    try {
      const guest = await own.spawn(
        `import { Hono } from "hono";
        const app = new Hono();
        app.get("/hi/:name", (c) => c.json({ hi: c.req.param("name") }));
        app.post("/echo", async (c) => c.text(await c.req.text()));
        export default app;`,
        { env: { PORT: "3100" } },
      );
      await own.waitForListener({ port: 3100 }, { timeoutMs: 10_000 });
      const hello = await own.fetch(3100, { path: "/hi/ann" });
      expect(hello.status).toBe(200);
      expect(JSON.parse(hello.body)).toEqual({ hi: "ann" });
      expect((await own.fetch(3100, { method: "POST", path: "/echo", body: "round trip" })).body).toBe("round trip");
      guest.kill();
      expect(await guest.wait()).toBe(143);
    } finally {
      await own.dispose();
    }
  });

  it("keeps other default exports as plain module code", async () => {
    expect((await rt.exec("export default 42; console.log('ok')")).stdout).toBe("ok\n");
    expect((await rt.exec("export default function f() { return 1 }\nconsole.log(typeof f)")).stdout).toBe("function\n");
  });
});
