// `secure-exec mcp` (stdio, the built CLI as a process) and `/mcp` (Streamable HTTP on the
// service), driven by the real MCP SDK Client.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startServer, type RunningServer } from "../host/service/server.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = join(root, "dist/host/cli.js");
const TOOL_NAMES = ["run_code", "create_session", "session_exec", "close_session", "write_file", "read_file", "list_files"];

const operatorTools = {
  lookup: {
    description: "Looks a key up in the operator's table",
    inputSchema: { type: "object", properties: { key: { type: "string" } }, required: ["key"] },
    handler: ({ key }: { key: string }) => ({ key, found: key === "answer" ? 42 : null }),
  },
};

interface ToolResult {
  content: { type: string; text?: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

const textOf = (result: ToolResult) => result.content.map((part) => part.text ?? "").join("\n");

/** The checks every transport must pass. */
function sharedChecks(name: string, client: () => Client): void {
  const call = async (tool: string, args: Record<string, unknown>) => (await client().callTool({ name: tool, arguments: args })) as ToolResult;

  describe(`${name}: the tools`, () => {
    it("lists the seven tools with JSON Schema inputs, and no operator tool", async () => {
      const { tools } = await client().listTools();
      expect(tools.map((tool) => tool.name)).toEqual(TOOL_NAMES);
      const runCode = tools.find((tool) => tool.name === "run_code")!;
      expect(runCode.inputSchema.type).toBe("object");
      expect(runCode.inputSchema.required).toEqual(["code"]);
      expect(Object.keys(runCode.inputSchema.properties ?? {})).toEqual(["code", "stdin", "env", "timeoutMs", "language"]);
      expect(runCode.description).toContain("lookup: Looks a key up");
    });

    it("runs code: stdout, stderr, exit code and the __return value (also as structuredContent)", async () => {
      const result = await call("run_code", {
        code: 'import os from "node:os"; let input = ""; for await (const c of process.stdin) input += c; console.log(`hi ${process.env.WHO} ${os.platform()} ${input}`); console.error("warned"); __return({ n: 42 });',
        stdin: "piped",
        env: { WHO: "model" },
      });
      expect(result.isError).toBe(false);
      expect(result.structuredContent).toEqual({ stdout: "hi model linux piped\n", stderr: "warned\n", exitCode: 0, value: { n: 42 } });
      expect(textOf(result)).toContain("exit code: 0");
      expect(textOf(result)).toContain('{"n":42}');
    });

    it("runs TypeScript when asked", async () => {
      const result = await call("run_code", { code: "const n: number = 2; __return(n * 21);", language: "ts" });
      expect(result.structuredContent?.value).toBe(42);
    });

    it("lets the guest call operator tools, never the client", async () => {
      const viaGuest = await call("run_code", { code: '__return(await callHostTool("lookup", { key: "answer" }));' });
      expect(viaGuest.structuredContent?.value).toEqual({ key: "answer", found: 42 });
      const direct = await call("lookup", { key: "answer" });
      expect(direct.isError).toBe(true);
      expect(textOf(direct)).toMatch(/Tool lookup not found/);
    });

    it("keeps a session's globals between snippets", async () => {
      const created = await call("create_session", {});
      const sessionId = created.structuredContent?.sessionId as string;
      expect(typeof sessionId).toBe("string");
      await call("session_exec", { sessionId, code: "globalThis.counter = 40; let local = 1;" });
      const next = await call("session_exec", { sessionId, code: "counter + local + 1" });
      expect(next.structuredContent?.value).toBe(42);
      expect((await call("close_session", { sessionId })).isError).toBeFalsy();
      const gone = await call("session_exec", { sessionId, code: "1" });
      expect(gone.isError).toBe(true);
      expect(textOf(gone)).toMatch(/No session .* create_session/);
    });

    it("hits a timeout as an isError result with exit code 137, then keeps serving", async () => {
      const loop = await call("run_code", { code: "while (true) {}", timeoutMs: 400 });
      expect(loop.isError).toBe(true);
      expect(loop.structuredContent?.exitCode).toBe(137);
      expect(textOf(loop)).toMatch(/killed by a limit \(timeout\).*timeoutMs/s);
      const after = await call("run_code", { code: "__return('still here')" });
      expect(after.structuredContent?.value).toBe("still here");
    });

    it("reports a failing guest as isError with its stack", async () => {
      const result = await call("run_code", { code: 'throw new Error("guest bug")' });
      expect(result.isError).toBe(true);
      expect(result.structuredContent?.exitCode).toBe(1);
      expect(textOf(result)).toContain("Error: guest bug");
    });

    it("cuts long output for the model with a marker", async () => {
      const result = await call("run_code", { code: 'process.stdout.write("x".repeat(100000))' });
      const stdout = result.structuredContent?.stdout as string;
      expect(stdout.length).toBeLessThan(21_000);
      expect(stdout).toMatch(/\[secure-exec: output truncated, 80000 more characters not shown\]$/);
      expect(result.structuredContent?.truncated).toBe(true);
      expect(textOf(result).length).toBeLessThan(21_000);
    });

    it("names a bad argument", async () => {
      const result = await call("run_code", { code: 42 });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/expected string.*\bcode\b/);
      const badTimeout = await call("run_code", { code: "1", timeoutMs: -5 });
      expect(badTimeout.isError).toBe(true);
      expect(textOf(badTimeout)).toMatch(/timeoutMs/);
      const badPath = await call("read_file", { path: "relative.txt" });
      expect(textOf(badPath)).toMatch(/absolute path.*path|path.*absolute path/s);
    });

    it("writes, reads and lists files that runs see", async () => {
      expect((await call("write_file", { path: "/workspace/in.txt", content: "from the model" })).isError).toBeFalsy();
      expect((await call("write_file", { path: "/workspace/bytes.bin", content: Buffer.from([0, 255]).toString("base64"), encoding: "base64" })).isError).toBeFalsy();
      const run = await call("run_code", {
        code: 'import fs from "node:fs"; fs.writeFileSync("/workspace/out.txt", fs.readFileSync("/workspace/in.txt", "utf8").toUpperCase()); __return([...fs.readFileSync("/workspace/bytes.bin")]);',
      });
      expect(run.structuredContent?.value).toEqual([0, 255]);
      expect(textOf(await call("read_file", { path: "/workspace/out.txt" }))).toBe("FROM THE MODEL");
      expect(textOf(await call("read_file", { path: "/workspace/bytes.bin", encoding: "base64" }))).toBe("AP8=");
      const listing = textOf(await call("list_files", { path: "/workspace" })).split("\n");
      expect(listing).toEqual(expect.arrayContaining(["in.txt", "out.txt", "bytes.bin"]));
      const missing = await call("read_file", { path: "/workspace/nope.txt" });
      expect(missing.isError).toBe(true);
      expect(textOf(missing)).toMatch(/ENOENT/);
    });

    it("sends progress notifications while a run streams output, when asked", async () => {
      const progress: { progress: number; message?: string }[] = [];
      const result = (await client().callTool(
        { name: "run_code", arguments: { code: 'console.log("first"); await new Promise((r) => setTimeout(r, 50)); console.log("second");' } },
        undefined,
        { onprogress: (update) => progress.push(update) },
      )) as ToolResult;
      expect(result.structuredContent?.stdout).toBe("first\nsecond\n");
      expect(progress.map((update) => update.message).join("")).toContain("stdout: first");
      expect(progress[0]!.progress).toBe(1);
    });
  });
}

describe("secure-exec mcp --help", () => {
  it("names the tools and how to configure a client", () => {
    const help = execFileSync(process.execPath, [cli, "mcp", "--help"], { encoding: "utf8" });
    expect(help).toContain("run_code, create_session, session_exec, close_session, write_file, read_file, list_files");
    expect(help).toContain('"command": "npx"');
    expect(execFileSync(process.execPath, [cli, "--help"], { encoding: "utf8" })).toMatch(/^\s+mcp\b/m);
  });
});

describe("secure-exec mcp over stdio", () => {
  let dir: string;
  let client: Client;
  let transport: StdioClientTransport;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "secure-exec-mcp-test-"));
    const configPath = join(dir, "config.mjs");
    writeFileSync(
      configPath,
      `export default { defaultTimeoutMs: 20000, tools: { lookup: { description: ${JSON.stringify(operatorTools.lookup.description)}, inputSchema: ${JSON.stringify(operatorTools.lookup.inputSchema)}, handler: ({ key }) => ({ key, found: key === "answer" ? 42 : null }) } } };\n`,
    );
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [cli, "mcp", "--config", configPath],
      env: { ...(process.env as Record<string, string>), SECURE_EXEC_SPARE_PROCESSES: "0", SECURE_EXEC_TOKENS: "" },
      stderr: "pipe",
    });
    client = new Client({ name: "secure-exec-test", version: "1.0.0" });
    await client.connect(transport);
  });

  afterAll(async () => {
    await client?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  sharedChecks("stdio", () => client);

  it("ends when the client closes stdin", async () => {
    const pid = transport.pid!;
    await client.close();
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(isAlive(pid)).toBe(false);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("/mcp over Streamable HTTP", () => {
  let server: RunningServer;
  let client: Client;
  const token = "mcp-test-token";

  const connect = async (bearer: string): Promise<Client> => {
    const connected = new Client({ name: "secure-exec-test", version: "1.0.0" });
    await connected.connect(
      new StreamableHTTPClientTransport(new URL("/mcp", server.url), { requestInit: { headers: { Authorization: `Bearer ${bearer}` } } }),
    );
    return connected;
  };

  beforeAll(async () => {
    server = await startServer(
      { port: 0, tenants: { acme: { token, timeoutMs: 20_000 }, other: { token: "other-token" } }, tools: operatorTools as never },
      { defaultMetrics: false, logError: () => {} },
    );
    client = await connect(token);
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  sharedChecks("http", () => client);

  it("refuses a bad token", async () => {
    await expect(connect("wrong-token")).rejects.toThrow(/401|unauthorized|token/i);
    const response = await fetch(new URL("/mcp", server.url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(response.status).toBe(401);
  });

  it("keeps another tenant's sessions apart", async () => {
    const created = (await client.callTool({ name: "create_session", arguments: {} })) as ToolResult;
    const sessionId = created.structuredContent?.sessionId as string;
    const other = await connect("other-token");
    try {
      const stolen = (await other.callTool({ name: "session_exec", arguments: { sessionId, code: "1" } })) as ToolResult;
      expect(stolen.isError).toBe(true);
      expect(textOf(stolen)).toMatch(/No session/);
    } finally {
      await other.close();
    }
    expect(((await client.callTool({ name: "close_session", arguments: { sessionId } })) as ToolResult).isError).toBeFalsy();
  });

  it("counts MCP runs and responses in the metrics", async () => {
    const metrics = await (await fetch(new URL("/metrics", server.url))).text();
    expect(metrics).toMatch(/secure_exec_runs_total\{[^}]*route="mcp"[^}]*\} \d+/);
    expect(metrics).toMatch(/route="\/mcp",status="200"/);
  });

  it("kills the run when the HTTP client goes away", async () => {
    const aborted = new AbortController();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream" };
    const initialize = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    };
    expect((await fetch(new URL("/mcp", server.url), { method: "POST", headers, body: JSON.stringify(initialize) })).status).toBe(200);
    const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "run_code", arguments: { code: "while (true) {}", timeoutMs: 20_000 } } };
    const response = await fetch(new URL("/mcp", server.url), { method: "POST", headers, body: JSON.stringify(call), signal: aborted.signal });
    expect(response.status).toBe(200);
    const tenant = server.tenants.get("acme")!;
    const waitFor = async (check: () => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      return check();
    };
    expect(await waitFor(() => (tenant.stats()?.runsInFlight ?? 0) === 1)).toBe(true);
    aborted.abort();
    // Well before the run's own 20 s limit.
    expect(await waitFor(() => tenant.stats()?.runsInFlight === 0 && tenant.inFlight === 0)).toBe(true);
  });

  it("answers GET with 405 (stateless server)", async () => {
    const response = await fetch(new URL("/mcp", server.url), { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" } });
    expect(response.status).toBe(405);
  });
});
