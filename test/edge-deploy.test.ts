// The edge deployment as wrangler runs it: `wrangler deploy --dry-run` bundles wrangler.jsonc
// offline, and `wrangler dev` serves that Worker on a local workerd, where every request
// below goes through the same supervisor and prelude as the Node host.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edgeConfigOf } from "../worker-templates/edge/edge-config.js";
import { ServerConfigError } from "../host/service/server-config.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const wranglerBin = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
// Offline and quiet: no telemetry, no Request.cf download.
const wranglerEnv = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1" };

const TOKENS = { alpha: "edge-token-alpha-0123", beta: "edge-token-beta-0123" } as const;
const CONFIG = { tenants: { alpha: { token: TOKENS.alpha, env: { TENANT: "alpha" } }, beta: { token: TOKENS.beta, maxConcurrent: 1 } } };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

let dev: ChildProcess | undefined;
let baseUrl = "";
let devOutput = "";
const persistDir = mkdtempSync(path.join(tmpdir(), "secure-exec-edge-"));

beforeAll(async () => {
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  dev = spawn(
    process.execPath,
    [
      wranglerBin, "dev",
      "--ip", "127.0.0.1",
      "--port", String(port),
      "--inspector-port", String(await freePort()),
      "--persist-to", persistDir,
      "--var", `SECURE_EXEC_CONFIG_JSON:${JSON.stringify(CONFIG)}`,
    ],
    { cwd: root, env: wranglerEnv, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  dev.stdout!.on("data", (chunk: Buffer) => (devOutput += chunk.toString()));
  dev.stderr!.on("data", (chunk: Buffer) => (devOutput += chunk.toString()));
  const deadline = Date.now() + 50_000;
  for (;;) {
    if (dev.exitCode !== null) throw new Error(`wrangler dev exited early:\n${devOutput}`);
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`wrangler dev did not become ready:\n${devOutput}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}, 60_000);

afterAll(() => {
  // wrangler runs workerd as a child: end the whole group.
  if (dev?.pid !== undefined && dev.exitCode === null) {
    try {
      process.kill(-dev.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(persistDir, { recursive: true, force: true });
});

interface CallOptions {
  token?: string | null;
  body?: unknown;
  rawBody?: string;
  contentType?: string;
  accept?: string;
  method?: string;
}

function call(route: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/json" };
  const token = options.token === undefined ? TOKENS.alpha : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (options.accept) headers.accept = options.accept;
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return fetch(`${baseUrl}${route}`, { method: options.method ?? (body === undefined ? "GET" : "POST"), headers, body });
}

async function json(route: string, options: CallOptions = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await call(route, options);
  return { status: response.status, headers: response.headers, body: await response.json() };
}

describe("wrangler deploy --dry-run", () => {
  it("bundles the Worker offline with the guest templates as text modules and both bindings", async () => {
    const outdir = mkdtempSync(path.join(tmpdir(), "secure-exec-edge-build-"));
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [wranglerBin, "deploy", "--dry-run", "--outdir", outdir], {
        cwd: root,
        env: wranglerEnv,
      });
      expect(stdout).toMatch(/env\.LOADER\s+Worker Loader/);
      expect(stdout).toMatch(/env\.HOST \(secure-exec#EdgeHostCalls\)/);
      const files = readdirSync(outdir);
      for (const template of ["guest-prelude.js", "guest-bridge.js", "fs/guest-fs.js", "child-process/guest-child-process.js", "http/guest-http.js"]) {
        const emitted = files.find((file) => file.endsWith(`-${path.basename(template)}`));
        expect(emitted, template).toBeDefined();
        // Emitted as-is (text for the supervisor to hand on), not bundled.
        expect(readFileSync(path.join(outdir, emitted!), "utf8")).toBe(readFileSync(path.join(root, "worker-templates", template), "utf8"));
      }
      // The host modules the Worker shares with Node are bundled into its main module.
      expect(files.some((file) => file.endsWith("-guest-module.js"))).toBe(false);
      expect(readFileSync(path.join(outdir, "edge-worker.js"), "utf8")).toContain("EdgeHostCalls");
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("wrangler dev", () => {
  it("answers /healthz and describes itself without sessions or metrics", async () => {
    const health = await json("/healthz", { token: null });
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("ok");
    const openapi = await json("/openapi.json", { token: null });
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(["/v1/exec", "/v1/run"]));
  });

  it("runs a tenant's code with its env and hands back the __return value", async () => {
    const result = await json("/v1/run", {
      body: { code: 'console.log("tenant", process.env.TENANT, process.env.EXTRA, process.version.startsWith("v")); __return({ sum: 1 + 2 });', env: { EXTRA: "x" } },
    });
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ stdout: "tenant alpha x true\n", stderr: "", exitCode: 0, value: { sum: 3 } });
  });

  it("gives each run a fresh isolate", async () => {
    await json("/v1/exec", { body: { code: "globalThis.leftOver = 42;" } });
    const next = await json("/v1/run", { body: { code: "__return(typeof globalThis.leftOver)" } });
    expect(next.body.value).toBe("undefined");
  });

  it("streams stdout as NDJSON events, then the result", async () => {
    const response = await call("/v1/exec", {
      accept: "application/x-ndjson",
      body: { code: "for (let i = 0; i < 3; i++) { console.log(i); await new Promise((r) => setTimeout(r, 20)); } console.error('done');" },
    });
    expect(response.headers.get("content-type")).toMatch(/application\/x-ndjson/);
    const events = (await response.text()).trim().split("\n").map((line) => JSON.parse(line));
    expect(events.filter((event) => event.type === "stdout").map((event) => event.data).join("")).toBe("0\n1\n2\n");
    expect(events.at(-1)).toEqual({ type: "result", exitCode: 0 });
    expect(events).toContainEqual({ type: "stderr", data: "done\n" });
  });

  it("pipes stdin and honours cwd; the scratch filesystem has the cwd and /tmp", async () => {
    const result = await json("/v1/exec", {
      body: {
        code: 'import fs from "node:fs"; let input = ""; for await (const chunk of process.stdin) input += chunk; fs.writeFileSync("note.txt", input.toUpperCase()); fs.writeFileSync("/tmp/t", "t"); console.log(process.cwd(), fs.readFileSync("/srv/app/note.txt", "utf8"), fs.readdirSync("/tmp"));',
        stdin: "piped",
        cwd: "/srv/app",
      },
    });
    expect(result.body).toEqual({ stdout: "/srv/app PIPED [ 't' ]\n", stderr: "", exitCode: 0 });
  });

  it("ends a run at its timeout with 137 and keeps serving", async () => {
    const result = await json("/v1/exec", { body: { code: "setInterval(() => {}, 5); await new Promise(() => {});", timeout: 300 } });
    expect(result.body.exitCode).toBe(137);
    expect(result.body.stderr).toContain("time limit of 300 ms exceeded");
    const after = await json("/v1/run", { body: { code: "__return('still serving')" } });
    expect(after.body.value).toBe("still serving");
  });

  it("reports a syntax error like Node, with exit code 1", async () => {
    const result = await json("/v1/exec", { body: { code: "let x = ;" } });
    expect(result.body.exitCode).toBe(1);
    expect(result.body.stderr).toMatch(/guest\.js:1\nlet x = ;\n\s+\^\n\nSyntaxError: /);
  });

  it("loads Node builtins by bare name and refuses packages as Node does without nodeModules", async () => {
    const builtin = await json("/v1/exec", { body: { code: 'import path from "path"; console.log(path.posix.join("a", "b"));' } });
    expect(builtin.body).toEqual({ stdout: "a/b\n", stderr: "", exitCode: 0 });
    const missing = await json("/v1/exec", { body: { code: 'import _ from "lodash";' } });
    expect(missing.body.exitCode).toBe(1);
    expect(missing.body.stderr).toMatch(/Cannot find package 'lodash'/);
  });

  it("gives guests no network and no host calls", async () => {
    const result = await json("/v1/exec", {
      body: {
        code: 'import { execFile } from "node:child_process"; try { await fetch("https://example.com/"); console.log("fetched"); } catch (error) { console.log("fetch refused"); } await new Promise((resolve) => execFile("node", ["-e", "1"], (error) => { console.log(error ? error.message : "ran"); resolve(); }));',
      },
    });
    expect(result.body.stdout).toBe("fetch refused\nhost tools and child processes are not available on the edge deployment\n");
  });

  it("refuses unknown and missing tokens with 401", async () => {
    expect((await json("/v1/exec", { token: "nope", body: { code: "1" } })).status).toBe(401);
    const missing = await json("/v1/exec", { token: null, body: { code: "1" } });
    expect(missing.status).toBe(401);
    expect(missing.body.error.message).toMatch(/missing bearer token/);
  });

  it("answers a tenant over its concurrency cap with 429 and Retry-After", async () => {
    const first = await call("/v1/exec", {
      token: TOKENS.beta,
      accept: "application/x-ndjson",
      body: { code: 'console.log("holding"); await new Promise((r) => setTimeout(r, 1500));' },
    });
    const reader = first.body!.getReader();
    await reader.read(); // the first run is in flight
    const second = await json("/v1/exec", { token: TOKENS.beta, body: { code: "1" } });
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe("concurrency_limit");
    expect(second.headers.get("retry-after")).toBe("1");
    // Another tenant is not affected.
    expect((await json("/v1/exec", { body: { code: "1" } })).status).toBe(200);
    while (!(await reader.read()).done);
  });

  it("answers bad input with a 4xx naming the problem", async () => {
    const malformed = await json("/v1/exec", { rawBody: "{bad" });
    expect([malformed.status, malformed.body.error.code]).toEqual([400, "invalid_json"]);
    const wrongType = await json("/v1/exec", { body: { code: 5 } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.issues[0].path).toBe("code");
    const media = await json("/v1/exec", { rawBody: "code=1", contentType: "text/plain" });
    expect(media.status).toBe(415);
    const big = await json("/v1/exec", { body: { code: `// ${"x".repeat(1024 * 1024)}` } });
    expect([big.status, big.body.error.code]).toEqual([413, "payload_too_large"]);
    expect((await json("/v2/nothing")).status).toBe(404);
    const cpu = await json("/v1/exec", { body: { code: "1", cpuTimeLimitMs: 10 } });
    expect([cpu.status, cpu.body.error.code]).toEqual([501, "not_implemented"]);
    expect(cpu.body.error.message).toMatch(/cpuTimeLimitMs.*limits\.cpu_ms/);
    expect((await json("/v1/sessions", { body: {} })).status).toBe(501);
    expect((await json("/metrics", { token: null })).status).toBe(501);
  });

  it("never answers random bodies with a 5xx", async () => {
    const samples: string[] = ["", "null", "[]", '{"code":null}', '{"code":"1","timeout":-1}', '{"code":"1","env":{"A=B":"c"}}', '{"code":"1","extra":true}'];
    for (let i = 0; i < 20; i += 1) {
      samples.push(Array.from({ length: 1 + Math.floor(Math.random() * 40) }, () => String.fromCharCode(32 + Math.floor(Math.random() * 95))).join(""));
    }
    for (const rawBody of samples) {
      const response = await call("/v1/exec", { rawBody });
      await response.arrayBuffer();
      expect(response.status, rawBody).toBeGreaterThanOrEqual(400);
      expect(response.status, rawBody).toBeLessThan(500);
    }
  });
});

describe("edge settings", () => {
  it("reads tenants like the Node service, from SECURE_EXEC_TOKENS and SECURE_EXEC_CONFIG_JSON", () => {
    const config = edgeConfigOf("one:token-one-0123,two:token-two-0123", JSON.stringify({ tenants: { two: { token: "x", maxConcurrent: 3 } }, limits: { outputBytes: 1024 } }));
    expect(config.authenticated).toBe(true);
    expect(config.tenants.map((tenant) => [tenant.name, tenant.token, tenant.maxConcurrent])).toEqual([
      ["two", "token-two-0123", 3],
      ["one", "token-one-0123", 16],
    ]);
    expect(edgeConfigOf(undefined, undefined).authenticated).toBe(false);
  });

  it("refuses settings only a Node host can honour, by name", () => {
    expect(() => edgeConfigOf(undefined, "{not json")).toThrow(/SECURE_EXEC_CONFIG_JSON is not valid JSON/);
    expect(() => edgeConfigOf(undefined, JSON.stringify({ port: 1 }))).toThrow(/"port" is not available on the edge/);
    expect(() => edgeConfigOf(undefined, JSON.stringify({ limits: { memoryMb: 64 } }))).toThrow(/"limits\.memoryMb" is not available on the edge/);
    expect(() => edgeConfigOf(undefined, JSON.stringify({ tenants: { a: { token: "t", limits: { processes: 2 } } } }))).toThrow(/"tenants\.a\.limits\.processes"/);
    expect(() => edgeConfigOf(undefined, JSON.stringify({ tenants: { a: { token: "t", tools: {} } } }))).toThrow(/"tenants\.a\.tools"/);
    expect(() => edgeConfigOf("a:", undefined)).toThrow(ServerConfigError);
  });
});
