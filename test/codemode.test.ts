// secure-exec/codemode: the Executor driven through Code Mode's own MCP wrappers (real
// @cloudflare/codemode/mcp over a real McpServer and Client), and directly.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeMcpServer, openApiMcpServer } from "@cloudflare/codemode/mcp";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { NodeRuntime } from "../runtime/index.js";
import { SecureExecExecutor, decodeValue, encodeValue, sanitizeToolName } from "../runtime/codemode.js";

const TIMEOUT_MS = 2_500;
let runtime: NodeRuntime;
let executor: SecureExecExecutor;

beforeAll(async () => {
  runtime = await NodeRuntime.create({ limits: { processes: 2 } });
  executor = new SecureExecExecutor({ runtime, timeout: TIMEOUT_MS });
});

afterAll(async () => {
  await executor?.dispose();
  await runtime?.dispose();
});

function textOf(result: unknown): string {
  const content = (result as { content: { type: string; text?: string }[] }).content;
  return content.map((part) => part.text ?? "").join("\n");
}

async function connect(server: McpServer): Promise<Client> {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: "codemode-test", version: "1.0.0" });
  await client.connect(clientTransport);
  return client;
}

describe("codeMcpServer with SecureExecExecutor", () => {
  let client: Client;
  const upstreamCalls: string[] = [];

  beforeAll(async () => {
    const upstream = new McpServer({ name: "upstream", version: "1.0.0" });
    upstream.registerTool("add", { description: "Adds two numbers", inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => {
      upstreamCalls.push("add");
      return { content: [{ type: "text", text: String(a + b) }] };
    });
    upstream.registerTool(
      "get-weather",
      { description: "Weather of a city", inputSchema: { city: z.string() }, outputSchema: { city: z.string(), tempC: z.number() } },
      async ({ city }) => {
        upstreamCalls.push("get-weather");
        return { content: [{ type: "text", text: JSON.stringify({ city, tempC: 21 }) }], structuredContent: { city, tempC: 21 } };
      },
    );
    upstream.registerTool("explode", { description: "Always fails", inputSchema: {} }, async () => {
      throw new Error("upstream exploded");
    });
    client = await connect(await codeMcpServer({ server: upstream, executor }));
  });

  afterAll(async () => {
    await client?.close();
  });

  it("offers one code tool whose description types the upstream tools by their sanitised names", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(["code"]);
    expect(tools[0]!.description).toContain("get_weather");
    expect(tools[0]!.description).toContain("add");
  });

  it("calls upstream tools from the sandbox and returns their results", async () => {
    upstreamCalls.length = 0;
    const result = await client.callTool({
      name: "code",
      arguments: {
        code: `async () => {
          const sum = await codemode.add({ a: 2, b: 3 });
          const weather = await codemode.get_weather({ city: "Paris" });
          return { sum, weather };
        }`,
      },
    });
    expect(result.isError).toBeFalsy();
    expect(JSON.parse(textOf(result))).toEqual({ sum: 5, weather: { city: "Paris", tempC: 21 } });
    expect(upstreamCalls).toEqual(["add", "get-weather"]);
  });

  it("reports an upstream tool's thrown error as an isError result", async () => {
    const result = await client.callTool({ name: "code", arguments: { code: "async () => await codemode.explode({})" } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("upstream exploded");
  });

  it("reports the sandbox code's own error", async () => {
    const result = await client.callTool({ name: "code", arguments: { code: 'async () => { throw new Error("model bug") }' } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("Error: model bug");
  });

  it("times out a busy loop, keeps serving, and leaves nothing running", async () => {
    const loop = await client.callTool({ name: "code", arguments: { code: "async () => { while (true) {} }" } });
    expect(loop.isError).toBe(true);
    expect(textOf(loop)).toContain(`timed out after ${TIMEOUT_MS} ms`);
    const after = await client.callTool({ name: "code", arguments: { code: "async () => (await codemode.add({ a: 1, b: 1 })) * 10" } });
    expect(textOf(after)).toBe("20");
    const snapshot = runtime.getResourceSnapshot();
    expect(snapshot.runsInFlight).toBe(0);
    expect(snapshot.spawned).toBe(0);
    expect(snapshot.processes).toBeLessThanOrEqual(2);
  });
});

describe("openApiMcpServer with SecureExecExecutor", () => {
  let client: Client;
  const requests: unknown[] = [];
  const spec = {
    openapi: "3.0.0",
    info: { title: "Pets", version: "1.0.0" },
    paths: {
      "/pets": {
        get: { operationId: "listPets", summary: "List pets", tags: ["pets"], responses: { "200": { $ref: "#/components/responses/Pets" } } },
      },
      "/pets/{id}": { get: { operationId: "getPet", summary: "One pet", tags: ["pets"] } },
    },
    components: { responses: { Pets: { description: "A list of pets" } } },
  };

  beforeAll(async () => {
    const server = openApiMcpServer({
      spec,
      executor,
      request: async (options) => {
        requests.push(options);
        return { status: 200, body: [{ id: 1, name: "Rex" }] };
      },
    });
    client = await connect(server);
  });

  afterAll(async () => {
    await client?.close();
  });

  it("searches the spec inside the sandbox (refs resolved)", async () => {
    const result = await client.callTool({
      name: "search",
      arguments: {
        code: `async () => {
          const spec = await codemode.spec();
          return { paths: Object.keys(spec.paths), response: spec.paths["/pets"].get.responses["200"].description };
        }`,
      },
    });
    expect(result.isError).toBeFalsy();
    expect(JSON.parse(textOf(result))).toEqual({ paths: ["/pets", "/pets/{id}"], response: "A list of pets" });
  });

  it("executes API calls through the host's request function", async () => {
    const result = await client.callTool({
      name: "execute",
      arguments: { code: 'async () => { const r = await codemode.request({ method: "GET", path: "/pets", query: { limit: 1 } }); return r.body[0].name; }' },
    });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe("Rex");
    expect(requests).toEqual([{ method: "GET", path: "/pets", query: { limit: 1 } }]);
  });
});

describe("SecureExecExecutor.execute", () => {
  it("takes ResolvedProvider[] with one global per provider", async () => {
    const result = await executor.execute("async () => [await math.twice(21), await text.upper('x')]", [
      { name: "math", fns: { twice: async (n) => (n as number) * 2 } },
      { name: "text", fns: { upper: async (s) => String(s).toUpperCase() } },
    ]);
    expect(result).toEqual({ result: [42, "X"] });
  });

  it("takes the deprecated Record<string, fn> as the codemode namespace", async () => {
    const result = await executor.execute("async () => await codemode.echo(1, 'two', { three: 3 })", { echo: async (...args: unknown[]) => args });
    expect(result).toEqual({ result: [1, "two", { three: 3 }] });
  });

  it("normalises code that is not an arrow function", async () => {
    expect(await executor.execute("```js\nconst x = 20;\nx + 22\n```", [])).toEqual({ result: 42 });
    expect(await executor.execute("", [])).toEqual({ result: undefined });
    expect(await executor.execute("async function () { return 5; }", [])).toEqual({ result: 5 });
    expect(await executor.execute("function answer() { return 6; }", [])).toEqual({ result: 6 });
    expect(await executor.execute("async () => { await new Promise(() => {}); }", [])).toEqual({
      result: undefined,
      error: "the code awaited a promise that nothing can settle any more",
    });
    expect(await executor.execute("async () => 10n", [])).toEqual({
      result: undefined,
      error: "the result cannot be returned: a BigInt value cannot cross to the host (not JSON)",
    });
    expect((await executor.execute("async () => { return ]", [])).error).toMatch(/^SyntaxError: .*\(1:21\)/);
  });

  it("sanitises tool names as Code Mode does", async () => {
    const names = ["get-weather", "list.items", "with space", "2fa", "delete", "ok$"];
    expect(names.map(sanitizeToolName)).toEqual(["get_weather", "list_items", "with_space", "_2fa", "delete_", "ok$"]);
    const fns = Object.fromEntries(names.map((name) => [name, async () => name]));
    const result = await executor.execute(
      "async () => [await codemode.get_weather(), await codemode.list_items(), await codemode.with_space(), await codemode._2fa(), await codemode.delete_(), await codemode.ok$()]",
      [{ name: "codemode", fns }],
    );
    expect(result).toEqual({ result: names });
  });

  it("answers name collisions and bad names with an error, never a throw", async () => {
    const fn = async () => 1;
    expect(await executor.execute("async () => 1", [{ name: "codemode", fns: { "a-b": fn, a_b: fn } }])).toEqual({
      result: undefined,
      error: 'Tool names "a-b" and "a_b" both sanitize to "a_b" in provider "codemode"',
    });
    expect((await executor.execute("async () => 1", [{ name: "not-valid", fns: {} }])).error).toMatch(/not a valid JavaScript identifier/);
    expect((await executor.execute("async () => 1", [{ name: "class", fns: {} }])).error).toMatch(/not a valid JavaScript identifier/);
    expect((await executor.execute("async () => 1", [{ name: "console", fns: {} }])).error).toMatch(/is reserved/);
    expect((await executor.execute("async () => 1", [{ name: "a", fns: {} }, { name: "a", fns: {} }])).error).toMatch(/Duplicate provider name "a"/);
    const binding = { callTool: async () => 1 };
    expect((await executor.execute("async () => 1", [{ name: "a", fns: {} }], { connectors: [{ name: "a", binding }] })).error).toMatch(/clashes/);
    expect((await executor.execute("async () => 1", [{ name: "a", fns: { x: 1 as never } }])).error).toMatch(/not a function/);
    expect((await executor.execute(42 as never, [])).error).toMatch(/code must be a string/);
    expect((await executor.execute("async () => 1", null as never)).error).toMatch(/providersOrFns/);
  });

  it("runs each provider's prelude after its namespace exists; own properties shadow dispatch", async () => {
    const calls: string[] = [];
    const result = await executor.execute("async () => [await codemode.twice(5), codemode.local(), await codemode.fetchIt()]", [
      {
        name: "codemode",
        fns: {
          fetchIt: async () => (calls.push("fetchIt"), "host"),
          local: async () => (calls.push("local"), "host local"),
          raw: async (n) => (n as number) + 1,
        },
        prelude: "codemode.local = () => 'sandbox local'; codemode.twice = async (n) => (await codemode.raw(n)) * 2;",
      },
    ]);
    expect(result).toEqual({ result: [12, "sandbox local", "host"] });
    expect(calls).toEqual(["fetchIt"]);
  });

  it("gives connectors a global; control results pause or throw", async () => {
    const seen: unknown[] = [];
    const connector = (name: string, reply: (method: string) => unknown) => ({
      name,
      binding: {
        callTool: async (method: string, args: unknown) => {
          seen.push([name, method, args]);
          return reply(method);
        },
      },
    });
    const connectors = [
      connector("github", (method) => ({ method, issues: [1, 2] })),
      connector("approval", () => ({ __codemode_control__: "pause" })),
      connector("broken", () => ({ __codemode_control__: "error", message: "connector says no" })),
    ];
    expect(await executor.execute("async () => await github.listIssues({ repo: 'x' }, 'ignored')", [], { connectors })).toEqual({
      result: { method: "listIssues", issues: [1, 2] },
    });
    expect(seen).toEqual([["github", "listIssues", { repo: "x" }]]);
    expect(await executor.execute("async () => await approval.deploy({})", [], { connectors })).toEqual({ result: undefined, error: "__CODEMODE_PAUSE__" });
    expect(
      await executor.execute(
        "async () => { try { await approval.deploy({}); } catch (e) { return e.message; } }",
        [],
        { connectors },
      ),
    ).toEqual({ result: "__CODEMODE_PAUSE__" });
    expect(await executor.execute("async () => await broken.anything({})", [], { connectors })).toEqual({ result: undefined, error: "connector says no" });
  });

  it("moves binary values both ways", async () => {
    const received: unknown[] = [];
    const result = await executor.execute(
      `async () => {
        const echoed = await codemode.echo(new Uint8Array([1, 2, 255]), new Uint16Array([65535, 1]).buffer, new Int16Array([-2, 3]), new DataView(new Uint8Array([7, 8]).buffer));
        const file = await codemode.file();
        return {
          types: echoed.map((value) => Object.prototype.toString.call(value)),
          int16: [...echoed[2]],
          file: [file instanceof Uint8Array, [...file]],
          nested: { bytes: new Uint8Array([9]), list: [new Float64Array([1.5])] },
        };
      }`,
      {
        echo: async (...args: unknown[]) => {
          received.push(...args);
          return args;
        },
        file: async () => Buffer.from("hi"),
      },
    );
    expect(result.error).toBeUndefined();
    const value = result.result as { types: string[]; int16: number[]; file: [boolean, number[]]; nested: { bytes: Uint8Array; list: Float64Array[] } };
    expect(value.types).toEqual(["[object Uint8Array]", "[object ArrayBuffer]", "[object Int16Array]", "[object DataView]"]);
    expect(value.int16).toEqual([-2, 3]);
    expect(value.file).toEqual([true, [104, 105]]);
    expect(value.nested.bytes).toEqual(new Uint8Array([9]));
    expect(value.nested.list[0]).toEqual(new Float64Array([1.5]));
    expect(received[0]).toEqual(new Uint8Array([1, 2, 255]));
    expect(received[1]).toBeInstanceOf(ArrayBuffer);
    expect(new Uint16Array(received[1] as ArrayBuffer)).toEqual(new Uint16Array([65535, 1]));
    expect(received[2]).toEqual(new Int16Array([-2, 3]));
    expect(received[3]).toBeInstanceOf(DataView);
    // The codec round-trips on the host too.
    expect(decodeValue(encodeValue({ b: Buffer.from([1]) })!)).toEqual({ b: new Uint8Array([1]) });
  });

  it("decodes tagged values wherever they sit, and only tagged objects", () => {
    const bytes = { __secure_exec_binary__: "Uint8Array", base64: "AQI=" };
    const text = JSON.stringify({ list: [1, bytes, [{ deep: bytes }]], ["__proto__"]: bytes, label: "__secure_exec_binary__", half: { __secure_exec_binary__: 1, base64: "AQI=" } });
    const decoded = decodeValue(text) as Record<string, unknown>;
    expect(decoded.list).toEqual([1, new Uint8Array([1, 2]), [{ deep: new Uint8Array([1, 2]) }]]);
    // A `__proto__` key stays an own property, as JSON.parse made it.
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(decoded, "__proto__")?.value).toEqual(new Uint8Array([1, 2]));
    expect(decoded.label).toBe("__secure_exec_binary__");
    expect(decoded.half).toEqual({ __secure_exec_binary__: 1, base64: "AQI=" });
    expect(decodeValue(JSON.stringify(bytes))).toEqual(new Uint8Array([1, 2]));
    // Deep nesting is walked without recursion.
    const deep = decodeValue("[".repeat(20_000) + JSON.stringify(bytes) + "]".repeat(20_000));
    let inner: unknown = deep;
    for (let depth = 0; depth < 20_000; depth++) inner = (inner as unknown[])[0];
    expect(inner).toEqual(new Uint8Array([1, 2]));
  });

  it("encodes plain data as JSON.stringify does, and binary, toJSON and BigInt as the codec says", () => {
    const shared = { x: 1 };
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: [1, "two", null, undefined, () => 3] });
    for (const value of [0, "s", null, [1, [2, [3]]], bare, [shared, shared], { date: new Date(0) }, undefined]) {
      expect(encodeValue(value)).toBe(JSON.stringify(value));
    }
    expect(encodeValue([0, { b: Buffer.from([1]) }])).toBe('[0,{"b":{"__secure_exec_binary__":"Uint8Array","base64":"AQ=="}}]');
    expect(() => encodeValue([{ deep: [1n] }])).toThrow(/BigInt/);
  });

  it("refuses tool arguments over 1 MiB or 1,000 levels deep with an error the guest can catch; the handler never runs", async () => {
    let calls = 0;
    const result = await executor.execute(
      `async () => {
        const outcomes = [];
        for (const size of [2 * 1024 * 1024, 1_060_000, 16]) {
          try { outcomes.push(await codemode.take("x".repeat(size))); } catch (error) { outcomes.push(error.message); }
        }
        let deep = [];
        for (let level = 0; level < 2000; level++) deep = [deep];
        try { outcomes.push(await codemode.take(deep)); } catch (error) { outcomes.push(error.message); }
        return outcomes;
      }`,
      { take: async (text: unknown) => ((calls += 1), (text as string).length) },
    );
    const [unread, refused, accepted, deep] = result.result as [string, string, number, string];
    expect(unread).toMatch(/tool input is capped at 1 MiB/);
    expect(deep).toBe('the argument list of "take" nests deeper than 1000 levels');
    expect(refused).toMatch(/limit is 1048576/);
    expect(accepted).toBe(16);
    expect(calls).toBe(1);
  });

  it("hands a host function's error to the guest as an Error with its message", async () => {
    const result = await executor.execute(
      "async () => { try { await codemode.fail(); } catch (error) { return [error instanceof Error, error.message]; } }",
      { fail: async () => Promise.reject(new Error("disk full")) },
    );
    expect(result).toEqual({ result: [true, "disk full"] });
  });

  it("collects console output into logs with [warn] / [error] prefixes", async () => {
    const result = await executor.execute(
      "async () => { console.log('plain', 1, { a: [2] }); console.info('info'); console.warn('careful'); console.error('bad', new Error('x').message); return 'done'; }",
      [],
    );
    expect(result).toEqual({ result: "done", logs: ["plain 1 {\"a\":[2]}", "info", "[warn] careful", "[error] bad x"] });
  });

  it("bounds the logs with a marker", async () => {
    const small = new SecureExecExecutor({ runtime, timeout: TIMEOUT_MS, maxLogEntries: 3 });
    const result = await small.execute("async () => { for (let i = 0; i < 10; i++) console.log(i); return 1; }", []);
    expect(result.logs).toEqual(["0", "1", "2", "[secure-exec] logs truncated: 7 more entries"]);
  });

  it("denies the network", async () => {
    const result = await executor.execute("async () => { const r = await fetch('http://example.com/'); return r.status; }", []);
    expect(result.result).toBeUndefined();
    expect(result.error).toMatch(/fetch failed \(cause: secure-exec: this runtime has no network permission/);
  });

  it("kills while(true) at the timeout; the executor keeps working", async () => {
    const loop = await executor.execute("async () => { while (true) {} }", []);
    expect(loop).toEqual({ result: undefined, error: `Execution timed out after ${TIMEOUT_MS} ms` });
    expect(await executor.execute("async () => await codemode.one()", { one: async () => 1 })).toEqual({ result: 1 });
  });

  it("keeps executions apart: globals and tool functions of one are not another's", async () => {
    await executor.execute("async () => { globalThis.leak = 'secret'; return 1; }", []);
    expect(await executor.execute("async () => typeof globalThis.leak", [])).toEqual({ result: "undefined" });
    const [first, second] = await Promise.all([
      executor.execute("async () => await codemode.who()", { who: async () => "first" }),
      executor.execute("async () => await codemode.who()", { who: async () => "second" }),
    ]);
    expect([first.result, second.result]).toEqual(["first", "second"]);
  });

  it("ends the run when the function settles; an un-awaited call gets the late answer", async () => {
    let release: () => void = () => {};
    const hanging = new Promise<void>((resolve) => (release = resolve));
    const result = await executor.execute("async () => { codemode.slow(); return 'returned'; }", {
      slow: async () => {
        await hanging;
        return "late";
      },
    });
    expect(result).toEqual({ result: "returned" });
    release();
  });

  it("never throws: a disposed executor answers with an error", async () => {
    const owned = new SecureExecExecutor({ timeout: TIMEOUT_MS, runtimeOptions: { limits: { processes: 1 } } });
    expect(await owned.execute("async () => 'own runtime'", [])).toEqual({ result: "own runtime" });
    await owned.dispose();
    expect(await owned.execute("async () => 1", [])).toEqual({ result: undefined, error: "the executor was disposed" });
    expect(() => new SecureExecExecutor({ timeout: -1 })).toThrow(/timeout/);
    expect(() => new SecureExecExecutor({ runtimeOptions: { limits: { memoryMb: 1 } } })).toThrow(/runtimeOptions option "limits.memoryMb"/);
    expect(() => new SecureExecExecutor({ runtime, runtimeOptions: {} })).toThrow(/not both/);
  });
});
