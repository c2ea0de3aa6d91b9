// Round four of attacks: guest work between a resident runner's execs (the idle CPU watch, one
// exec's callbacks landing in the next), output built to cost the host more than its size,
// host links in a writable mount, and HTTP/MCP sessions raced against their own close.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { NodeRuntime } from "../../runtime/index.js";
import { startServer, type RunningServer } from "../../host/service/server.js";
import { createRuntime, expectKilledBetweenExecs, expectServing, runnerPid, sleep, slowestWhile, ticksOver } from "./helpers.js";

describe("a resident runner between execs", () => {
  let rt: NodeRuntime;
  beforeAll(async () => {
    rt = await createRuntime();
  }, 60_000);
  afterAll(async () => {
    await rt?.dispose();
  });

  // Bursts that rest between the idle watch's short windows (through node:timers, which
  // resident-worker.js does not wrap) meet its 10 s window (host/engine/resident-runner.ts).
  it("500 ms bursts every 2.5 s between execs end the runner", async () => {
    await expectKilledBetweenExecs(
      rt,
      `const timers = process.getBuiltinModule("node:timers");
       const burst = () => { const end = Date.now() + 500; while (Date.now() < end) {} timers.setTimeout(burst, 2000); };
       timers.setTimeout(burst, 100);
       "ended"`,
      30_000,
    );
  }, 60_000);

  // A native timer (node:timers) left by one exec runs in that exec's async context, which has
  // ended: its output, value and rejections reach no later exec (resident-worker.js, ownerExec).
  it("a native timer left by one exec does not write into the next exec's result", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const first = await runner.exec(
        `process.getBuiltinModule("node:timers").setTimeout(() => { console.log("from exec one"); __return("forged"); }, 300); "one"`,
      );
      expect(first).toMatchObject({ exitCode: 0, value: "one" });
      const second = await runner.exec(`await new Promise((resolve) => setTimeout(resolve, 700)); "two"`);
      // Measured: { stdout: "from exec one\n", value: "forged" }.
      expect({ stdout: second.stdout, value: second.value }).toEqual({ stdout: "", value: "two" });
      // A rejection left the same way fails the next exec (measured: exit 1, "Error: late rejection").
      await runner.exec(`process.getBuiltinModule("node:timers").setTimeout(() => { Promise.reject(new Error("late rejection")); }, 300); "three"`);
      const fourth = await runner.exec(`await new Promise((resolve) => setTimeout(resolve, 700)); "four"`);
      expect(fourth).toMatchObject({ exitCode: 0, value: "four", stderr: "" });
    } finally {
      await runner.dispose();
    }
  }, 60_000);

  // The same by another route: V8's own delayed task, which runs only once the next exec enters
  // the isolate; it carries its exec's async context too.
  it("an Atomics.waitAsync timeout left by one exec does not print into the next", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const first = await runner.exec(
        `const cell = new Int32Array(new SharedArrayBuffer(4));
         Atomics.waitAsync(cell, 0, 0, 300).value.then(() => console.log("late"));
         "one"`,
      );
      expect(first).toMatchObject({ exitCode: 0, value: "one" });
      await sleep(1_000);
      const second = await runner.exec(`await new Promise((resolve) => setTimeout(resolve, 200)); "two"`);
      expect({ stdout: second.stdout, value: second.value }).toEqual({ stdout: "", value: "two" });
    } finally {
      await runner.dispose();
    }
  }, 60_000);

  it("an uncaught error in one exec's native timer does not fail the next exec", async () => {
    const runner = await rt.createResidentRunner();
    try {
      await runner.exec(`process.getBuiltinModule("node:timers").setTimeout(() => { throw new Error("boom from one"); }, 300); "one"`);
      const second = await runner.exec(`await new Promise((resolve) => setTimeout(resolve, 700)); "two"`);
      expect(second).toMatchObject({ exitCode: 0, value: "two", stderr: "" });
    } finally {
      await runner.dispose();
    }
  }, 60_000);

  // False positive: the garbage an honest exec leaves (V8 collects it later, between execs),
  // or a large snippet, must not look like a guest burning CPU. (Nor does the host's own
  // request to collect with a 75 MB live heap: 0 ticks measured, not kept: ~15 s.)
  it("the garbage and the compiled code of large honest execs do not get the runner killed", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const pid = runnerPid(runner);
      await runner.exec(`globalThis.keep = []; for (let i = 0; i < 5e5; i++) keep.push({ i, s: "x" + i }); 1`, { timeout: 30_000 });
      await runner.exec(`globalThis.keep = null; let g; for (let i = 0; i < 2e6; i++) g = { i, s: "y" + i, a: [i] }; 1`, { timeout: 30_000 });
      // A 1.5 MB snippet (compiled off the host's loop, then by V8): nothing left to do after.
      expect((await runner.exec("let a = 0;\n" + "a++;\n".repeat(300_000) + "a", { timeout: 30_000 })).value).toBe(300_000);
      // Idle, 0 ticks were measured here; the watch kills at ~20 ticks per second.
      expect(await ticksOver(pid, 4_000)).toBeLessThan(40);
      expect((await runner.exec("6 * 7")).value).toBe(42);
    } finally {
      await runner.dispose();
    }
  }, 60_000);
});

describe("a V8 delayed task after a run", () => {
  it("an Atomics.waitAsync loop left by a run starts no work in its process", async () => {
    const rt = await createRuntime({ limits: { processes: 1 } });
    try {
      const result = await rt.run(
        `const cell = new Int32Array(new SharedArrayBuffer(4));
         const loop = () => { const end = Date.now() + 15; while (Date.now() < end) {} Atomics.waitAsync(cell, 0, 0, 100).value.then(loop); };
         Atomics.waitAsync(cell, 0, 0, 100).value.then(loop);
         __return(1);`,
        { timeout: 5_000 },
      );
      expect(result).toMatchObject({ exitCode: 0, value: 1 });
      await sleep(500);
      const used = (await Promise.all(rt.processIds().map((pid) => ticksOver(pid, 3_000)))).reduce((sum, ticks) => sum + ticks, 0);
      // Measured 0; the loop would use ~45.
      expect(used).toBeLessThan(20);
      await expectServing(rt);
    } finally {
      await rt.dispose();
    }
  }, 60_000);
});

describe("output built to cost the host more than its size", () => {
  let rt: NodeRuntime;
  let bystander: NodeRuntime;
  beforeAll(async () => {
    [rt, bystander] = await Promise.all([createRuntime(), createRuntime()]);
    await bystander.run("__return(0)");
  }, 60_000);
  afterAll(async () => {
    await Promise.all([rt?.dispose(), bystander?.dispose()]);
  });

  // Every write of a resident exec is its own event ({"o":"\n"}, 11 bytes for 1): the host
  // parses and schema-checks each one. 1.1 M of them held the host's event loop ≤ ~0.7 s at a
  // time (one 1 MiB message), a bystander runtime's trivial runs ≤ ~1.4 s.
  it("a million one-character writes from a resident runner, lone surrogates included, do not stall another runtime", async () => {
    const runner = await rt.createResidentRunner();
    try {
      const attack = runner.exec(`for (let i = 0; i < 600000; i++) { console.log(""); process.stdout.write("\\ud800"); } 1`, { timeout: 60_000 });
      const slowest = await slowestWhile(bystander, attack);
      const result = await attack;
      expect(result.exitCode).toBe(0);
      expect(result.stdout.length).toBe(1_200_000);
      expect(slowest).toBeLessThan(3_000);
    } finally {
      await runner.dispose();
    }
  }, 120_000);

  // One event per write would cost the host ~50x the output's size (a shape check, a parse and
  // a schema check each); writes in a row to one channel make one event (Exec.writeChannel).
  it("four resident runners of one-character writes do not stall another runtime", async () => {
    const runners = await Promise.all([1, 2, 3, 4].map(() => rt.createResidentRunner()));
    try {
      const attack = Promise.all(runners.map((runner) => runner.exec(`for (let i = 0; i < 1500000; i++) process.stdout.write("\\n"); 1`, { timeout: 60_000 })));
      const slowest = await slowestWhile(bystander, attack);
      for (const result of await attack) expect(result.exitCode).toBe(0);
      expect(slowest).toBeLessThan(3_000);
    } finally {
      await Promise.all(runners.map((runner) => runner.dispose()));
    }
  }, 120_000);

  // A run's prelude merges the writes of a turn per channel; alternating channels defeat that,
  // one event per write. 2.2 M such writes: a bystander's slowest run ~0.5 s (four such runs at
  // once, 5.6 M writes and 11 s of host CPU: ~1.3 s). Runs' events reach the host in stream
  // chunks, not 1 MiB messages, so the host's work is spread out.
  it("writes alternating stdout and stderr in a run do not stall another runtime", async () => {
    const attack = rt.run(`for (let i = 0; i < 400000; i++) { process.stdout.write("\\n"); process.stderr.write("\\ud800"); } __return(1)`, {
      timeout: 60_000,
    });
    const slowest = await slowestWhile(bystander, attack);
    const result = await attack;
    expect(result).toMatchObject({ exitCode: 0, value: 1 });
    expect(result.stdout.length).toBe(400_000);
    expect(result.stderr).toBe("\ufffd".repeat(400_000));
    expect(slowest).toBeLessThan(3_000);
  }, 120_000);

  it("console.group nested 100,000 deep is still cut at outputBytes", async () => {
    const capped = await createRuntime({ limits: { outputBytes: 64 * 1024 } });
    try {
      const result = await capped.run(`for (let i = 0; i < 100000; i++) console.group(); for (let i = 0; i < 50; i++) console.log("a\\nb"); __return(1)`, {
        timeout: 30_000,
      });
      expect(result).toMatchObject({ exitCode: 0, value: 1 });
      expect(Buffer.byteLength(result.stdout)).toBeLessThan(64 * 1024 + 200);
      expect(result.stdout).toContain("[secure-exec: stdout truncated at 65536 bytes]");
    } finally {
      await capped.dispose();
    }
  }, 60_000);
});

describe("host links in a writable mount, and forged change lists", () => {
  let base: string;
  let hostDir: string;
  let outside: string;
  let rt: NodeRuntime;
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), "secure-exec-redteam4-"));
    hostDir = join(base, "mount");
    outside = join(base, "outside");
    mkdirSync(join(hostDir, "secret"), { recursive: true });
    mkdirSync(join(hostDir, "open"));
    mkdirSync(outside);
    writeFileSync(join(hostDir, "secret", "key"), "TOPSECRET");
    writeFileSync(join(outside, "file"), "OUTSIDE");
    symlinkSync("secret", join(hostDir, "alias"));
    symlinkSync("secret/key", join(hostDir, "keylink"));
    symlinkSync(outside, join(hostDir, "out"));
    symlinkSync(join(outside, "file"), join(hostDir, "outfile"));
    symlinkSync("../outside/new", join(hostDir, "dangling"));
    symlinkSync("open", join(hostDir, "openlink"));
    rt = await createRuntime({
      mounts: [{ hostPath: hostDir, guestPath: "/rw", readOnly: false }],
      permissions: { fs: { default: "allow", rules: [{ pattern: "/rw/secret/*", action: "deny" }] } },
    });
  }, 60_000);
  afterAll(async () => {
    await rt?.dispose();
    rmSync(base, { recursive: true, force: true });
  });

  it("a denied file is read through no host link", async () => {
    const result = await rt.run(
      `import fs from "node:fs";
       const seen = [];
       for (const p of ["/rw/secret/key", "/rw/alias/key", "/rw/keylink", "/rw/out/file", "/rw/outfile"]) {
         try { seen.push(fs.readFileSync(p, "utf8")); } catch (error) { seen.push(error.code); }
       }
       let listed = [];
       try { listed = fs.readdirSync("/rw/alias"); } catch (error) { listed = [error.code]; }
       __return({ seen, listed });`,
    );
    expect(result.exitCode).toBe(0);
    expect(JSON.stringify(result.value)).not.toMatch(/TOPSECRET|OUTSIDE/);
  }, 60_000);

  // The guest has no links of its own (symlinkSync is EPERM), but a forged change list may name
  // any path: through the host's links, out of the mount, with `..`, or a directory removed and
  // remade in one list while a link leads into it.
  it("a forged change list writes nothing into a denied directory or outside the mount", async () => {
    const result = await rt.run(
      `import fs from "node:fs";
       import { bridge } from "./secure-exec-bridge.js";
       void fs;
       const x = ${JSON.stringify(b64("pwned"))};
       bridge.fsChanges = () => ({
         deletes: ["/rw/alias/key", "/rw/out/file", "/rw/outfile", "/rw/open", "/rw/keylink/x"],
         dirs: ["/rw/alias/d", "/rw/out/d", "/rw/open", "/rw/openlink/sub", "/rw/../escaped-dir", "/rw/dangling"],
         writes: {
           "/rw/alias/key": x, "/rw/alias/new": x, "/rw/keylink": x, "/rw/out/new": x, "/rw/outfile": x,
           "/rw/dangling": x, "/rw/../escaped": x, "/rw/./alias/dot": x, "/rw//alias/double": x,
           "/rw/openlink/sub/f": x, "/rw/secret/../alias/up": x, "/rw/open/secret/../../secret/k2": x,
         },
       });
       __return(1);`,
    );
    expect(result.exitCode).toBe(0);
    expect(readdirSync(join(hostDir, "secret"))).toEqual(["key"]);
    expect(readFileSync(join(hostDir, "secret", "key"), "utf8")).toBe("TOPSECRET");
    expect(readdirSync(outside)).toEqual(["file"]);
    expect(readFileSync(join(outside, "file"), "utf8")).toBe("OUTSIDE");
    expect(readdirSync(base).sort()).toEqual(["mount", "outside"]);
    // The honest part of the list was applied: open/ removed and remade, sub/f written through the link.
    expect(readFileSync(join(hostDir, "open", "sub", "f"), "utf8")).toBe("pwned");
  }, 60_000);

  const honestWrites = `import fs from "node:fs";
       const codes = [];
       for (const p of ["/rw/alias/k3", "/rw/keylink", "/rw/out/k3", "/rw/dangling"]) {
         try { fs.writeFileSync(p, "x"); codes.push("written"); } catch (error) { codes.push(error.code); }
       }
       __return(codes);`;

  it("honest node:fs writes through the links land neither in the denied directory nor outside the mount", async () => {
    const result = await rt.run(honestWrites);
    expect(result.exitCode).toBe(0);
    expect(readdirSync(join(hostDir, "secret"))).toEqual(["key"]);
    expect(readFileSync(join(hostDir, "secret", "key"), "utf8")).toBe("TOPSECRET");
    expect(readdirSync(outside)).toEqual(["file"]);
    expect(readdirSync(base).sort()).toEqual(["mount", "outside"]);
  }, 60_000);

  // The guest judges a write where the host will: the snapshot carries the real place of what
  // a host link leads to (realPath, hiddenLinks) and the links it does not see (blocked), so the
  // guest gets EACCES / ENOENT instead of a write the host would drop (guest-fs-store.js checkWrite).
  it("honest node:fs writes through the links are refused in the guest too", async () => {
    const result = await rt.run(honestWrites);
    expect(result.value).toEqual(["EACCES", "EACCES", "ENOENT", "ENOENT"]);
  }, 60_000);
});

describe("the HTTP service and MCP, with a valid token", () => {
  const TOKEN = "token-sessions-0123456789ab";
  const QUIET = "token-quiet-0123456789ab";
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ port: 0, tenants: { acme: { token: TOKEN, maxConcurrent: 8 }, quiet: { token: QUIET } } }, { defaultMetrics: false, logError: () => {} });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });
  const request = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it("execs racing on one session, then a DELETE mid-exec: one runs, the rest are refused, the slot is freed", async () => {
    const { id } = (await (await request("POST", "/v1/sessions")).json()) as { id: string };
    const execs = Array.from({ length: 4 }, () => request("POST", `/v1/sessions/${id}/exec`, { code: "await new Promise((r) => setTimeout(r, 1500)); 1", timeout: 20_000 }));
    await sleep(300);
    const closed = await request("DELETE", `/v1/sessions/${id}`);
    expect(closed.status).toBe(204);
    const statuses = (await Promise.all(execs)).map((response) => response.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409]);
    expect((await request("POST", `/v1/sessions/${id}/exec`, { code: "1" })).status).toBe(404);
    expect((await request("DELETE", `/v1/sessions/${id}`)).status).toBe(404);
    // All eight slots are free again.
    const opened = await Promise.all(Array.from({ length: 8 }, () => request("POST", "/v1/sessions")));
    const ids = await Promise.all(opened.map(async (response) => ((await response.json()) as { id?: string }).id));
    expect(opened.map((response) => response.status)).toEqual(Array(8).fill(201));
    await Promise.all(ids.map((sessionId) => request("DELETE", `/v1/sessions/${sessionId}`)));
  }, 120_000);

  // One POST to /mcp holding ~900 KB of JSON-RPC: 17,865 tools/list (each answer the whole
  // tool catalogue), 7,387 failing tools/call. Refused at once (400, measured ~0.1 s), as the
  // stateless transport takes no batch before an initialize; another request is not delayed.
  it("MCP: a body of thousands of batched JSON-RPC requests is refused at once", async () => {
    const messages: Record<string, (id: number) => unknown> = {
      list: (id) => ({ jsonrpc: "2.0", id, method: "tools/list" }),
      call: (id) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "session_exec", arguments: { sessionId: "x", code: 5 } } }),
    };
    for (const message of Object.values(messages)) {
      const batch = Array.from({ length: 7_000 }, (_, id) => message(id));
      const response = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify(batch),
      });
      expect(response.status).toBe(400);
      expect((await response.text()).length).toBeLessThan(1_000);
    }
    expect((await (await request("POST", "/v1/run", { code: "__return(1)" })).json()) as { value: number }).toMatchObject({ value: 1 });
  }, 60_000);

  /** Streams up to 16 MiB of chunked body (no content-length) to `path`; the status, or the error, and what was sent first. */
  const streamBody = (path: string) =>
    new Promise<{ status?: number; sent: number }>((resolve) => {
      const url = new URL(path, server.url);
      let sent = 0;
      const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", accept: "application/json, text/event-stream" };
      const req = httpRequest({ host: url.hostname, port: url.port, path, method: "POST", headers }, (response) => {
        response.resume();
        resolve({ status: response.statusCode, sent });
        req.destroy();
      });
      req.on("error", () => resolve({ sent }));
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (sent < 16 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        req.end();
      };
      req.write('{"code":"');
      pump();
    });

  // Measured: 413 after ~3.9 MB had been sent (socket buffers), on every route that reads a body.
  it("chunked bodies with no length are cut at the body cap, not buffered", async () => {
    for (const path of ["/v1/run", "/mcp", "/v1/sessions/no-such-id/exec"]) {
      const { status, sent } = await streamBody(path);
      expect({ path, status }).toEqual({ path, status: 413 });
      expect(sent).toBeLessThan(16 * 1024 * 1024);
    }
    expect((await (await request("POST", "/v1/run", { code: "__return(1)" })).json()) as { value: number }).toMatchObject({ value: 1 });
  }, 60_000);

  // Round three's env record by way of MCP: /mcp sizes env records (4,096 entries, 1 MiB) before
  // the SDK's schema checks each key (host/mcp/http.ts), and answers a clear -32602.
  it("eight run_code calls of 60,000 env entries each do not stall another tenant", async () => {
    const client = new Client({ name: "redteam", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", server.url), { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } }));
    try {
      const env: Record<string, string> = {};
      for (let i = 0; i < 60_000; i++) env[`K${i}`] = "v";
      const quiet = async (code: string) =>
        (await (
          await fetch(`${server.url}/v1/run`, { method: "POST", headers: { authorization: `Bearer ${QUIET}`, "content-type": "application/json" }, body: JSON.stringify({ code }) })
        ).json()) as { value: number };
      await quiet("__return(0)");
      const call = () =>
        client.callTool({ name: "run_code", arguments: { code: "__return(Object.keys(process.env).length)", env } }, undefined, { timeout: 120_000 }).catch((error: Error) => error);
      const attack = Promise.all(Array.from({ length: 8 }, call));
      let settled = false;
      void attack.finally(() => (settled = true));
      let slowest = 0;
      do {
        const started = performance.now();
        expect((await quiet("__return(1)")).value).toBe(1);
        slowest = Math.max(slowest, performance.now() - started);
      } while (!settled);
      for (const result of await attack) {
        if (result instanceof Error) expect(result.message).toMatch(/"env" has 60000 entries; the limit is 4096 per env/);
        else expect(result.structuredContent).toMatchObject({ exitCode: 0, value: 60_000 });
      }
      expect(slowest).toBeLessThan(3_000);
    } finally {
      await client.close();
    }
  }, 120_000);

  it("MCP: session_exec racing close_session, odd session ids and oversized arguments", async () => {
    const client = new Client({ name: "redteam", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", server.url), { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } }));
    try {
      type ToolResult = { isError?: boolean; content: { type: string; text: string }[]; structuredContent?: { sessionId?: string } };
      const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as ToolResult;
      const sessionId = (await call("create_session", {})).structuredContent!.sessionId!;
      const execs = Array.from({ length: 3 }, () => call("session_exec", { sessionId, code: "await new Promise((r) => setTimeout(r, 1500)); 1" }));
      await sleep(300);
      expect((await call("close_session", { sessionId })).isError).toBeFalsy();
      const results = await Promise.all(execs);
      expect(results.filter((result) => result.isError && /already running/.test(result.content[0]!.text))).toHaveLength(2);
      expect((await call("session_exec", { sessionId, code: "1" })).isError).toBe(true);
      for (const odd of ["__proto__", "constructor", "x".repeat(100_000), `${sessionId}\u0000`, "../" + sessionId]) {
        const result = await call("session_exec", { sessionId: odd, code: "1" });
        expect(result.isError).toBe(true);
        expect(result.content[0]!.text.length).toBeLessThan(400);
      }
      await expect(call("session_exec", { sessionId: 42, code: "1" }).then((result) => result.isError)).resolves.toBe(true);
    } finally {
      await client.close();
    }
  }, 120_000);
});

describe("the runtime after all of this", () => {
  it("serves", async () => {
    const rt = await createRuntime();
    try {
      await expectServing(rt);
    } finally {
      await rt.dispose();
    }
  }, 60_000);
});
