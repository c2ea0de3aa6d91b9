import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime, ToolDefinitionError } from "../runtime/index.js";
import type { ToolContext, ToolDefinitions } from "../runtime/index.js";

const contexts: ToolContext[] = [];
let slowToolSignal: AbortSignal | undefined;

const tools: ToolDefinitions = {
  "get-weather": {
    description: "Weather for a city",
    inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
    handler: async (input: { city: string }, context: ToolContext) => {
      contexts.push(context);
      return { city: input.city, tempC: 21 };
    },
    commandAliases: ["weather"],
  },
  add: {
    description: "Adds two numbers",
    inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] },
    handler: ({ a, b }: { a: number; b: number }) => a + b,
  },
  explode: {
    description: "Always throws",
    inputSchema: { type: "object" },
    handler: () => {
      throw new Error("handler blew up");
    },
  },
  "explode-async": {
    description: "Rejects",
    inputSchema: { type: "object" },
    handler: async () => Promise.reject(new Error("async failure")),
  },
  slow: {
    description: "Never finishes in time",
    inputSchema: { type: "object" },
    timeoutMs: 100,
    handler: (_input: unknown, context: ToolContext) =>
      new Promise((resolve) => {
        slowToolSignal = context.signal;
        setTimeout(resolve, 5_000);
      }),
  },
  cyclic: {
    description: "Returns something JSON cannot hold",
    inputSchema: { type: "object" },
    handler: () => {
      const value: Record<string, unknown> = {};
      value.self = value;
      return value;
    },
  },
  echo: {
    description: "Echoes its input",
    inputSchema: {},
    handler: (input: unknown) => input,
  },
};

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await NodeRuntime.create({ tools, tenant: "acme" });
});
afterAll(async () => {
  await rt.dispose();
});

describe("calling tools", () => {
  it("resolves with the handler's JSON result, by key or alias", async () => {
    const result = await rt.run(
      'const a = await callHostTool("get-weather", { city: "Tokyo" }); const b = await callHostTool("weather", { city: "Oslo" }); __return([a, b])',
    );
    expect(result.value).toEqual([
      { city: "Tokyo", tempC: 21 },
      { city: "Oslo", tempC: 21 },
    ]);
  });

  it("hands the handler a context with run id, tenant and a signal", async () => {
    contexts.length = 0;
    await rt.run('await callHostTool("get-weather", { city: "Lima" })');
    expect(contexts).toHaveLength(1);
    expect(contexts[0]!.tenant).toBe("acme");
    expect(contexts[0]!.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(contexts[0]!.signal.aborted).toBe(true);
  });

  it("rejects invalid input before the handler runs", async () => {
    const result = await rt.run('try { await callHostTool("add", { a: 1 }) } catch (e) { __return([e.code, e.message]) }');
    expect(result.value).toEqual(["ERR_TOOL_INPUT", expect.stringMatching(/invalid input for tool "add".*must have required property 'b'/)]);
  });

  it("rejects for a throwing handler, sync or async, without host paths, and the run carries on", async () => {
    const result = await rt.run(`
      const messages = [];
      for (const name of ["explode", "explode-async"]) {
        try { await callHostTool(name, {}) } catch (e) { messages.push(e.message + "|" + (["/work/", "node_modules", "host/", ".ts:"].some((p) => e.stack.includes(p)) ? "leak" : "")) }
      }
      messages.push(await callHostTool("add", { a: 2, b: 3 }));
      __return(messages);
    `);
    expect(result.exitCode).toBe(0);
    const [first, second, sum] = result.value as [string, string, number];
    expect(first).toMatch(/tool "explode" failed/);
    expect(second).toMatch(/tool "explode-async" failed: async failure/);
    expect(sum).toBe(5);
    expect(first.split("|")[1]).toBe("");
  });

  it("rejects a handler past its timeoutMs and aborts its signal", async () => {
    const result = await rt.run('try { await callHostTool("slow", {}) } catch (e) { __return(e.message) }');
    expect(result.value).toMatch(/tool "slow" timed out after 100 ms/);
    expect(slowToolSignal?.aborted).toBe(true);
  });

  it("rejects a result that is not JSON-serialisable", async () => {
    const result = await rt.run('try { await callHostTool("cyclic", {}) } catch (e) { __return(e.code) }');
    expect(result.value).toBe("ERR_TOOL_RESULT");
  });

  it("rejects unknown tools and refuses prototype names", async () => {
    const result = await rt.run(`
      const codes = [];
      for (const name of ["nope", "__proto__", "constructor", "then", "toString", "hasOwnProperty"]) {
        try { await callHostTool(name, {}); codes.push("reached") } catch (e) { codes.push(e.code) }
      }
      __return(codes);
    `);
    expect(result.value).toEqual(Array(6).fill("ERR_TOOL_NOT_FOUND"));
  });

  it("an uncaught tool error ends the run with 1; the runtime survives", async () => {
    const failed = await rt.exec('await callHostTool("explode", {})');
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toMatch(/tool "explode" failed/);
    expect((await rt.run('__return(await callHostTool("add", { a: 1, b: 1 }))')).value).toBe(2);
  });

  it("handles 10,000 sequential and 1,000 concurrent calls from one guest", async () => {
    const result = await rt.run(`
      let total = 0;
      for (let i = 0; i < 10000; i++) total += await callHostTool("add", { a: i, b: 0 });
      const parallel = await Promise.all(Array.from({ length: 1000 }, (_, i) => callHostTool("add", { a: i, b: 1 })));
      __return([total, parallel.length, parallel[999]]);
    `);
    expect(result.value).toEqual([49995000, 1000, 1000]);
  }, 120_000);

  it("round-trips structured values", async () => {
    const value = { nested: { list: [1, "two", null, true] }, unicode: "日本" };
    const result = await rt.run(`__return(await callHostTool("echo", ${JSON.stringify(value)}))`);
    expect(result.value).toEqual(value);
  });
});

describe("registering tools", () => {
  it("registerTools adds tools to a live runtime", async () => {
    const own = await NodeRuntime.create();
    try {
      const before = await own.run('try { await callHostTool("later", {}) } catch (e) { __return(e.code) }');
      expect(before.value).toBe("ERR_TOOL_NOT_FOUND");
      await own.registerTools({ later: { description: "added later", inputSchema: { type: "object" }, handler: () => "here" } });
      expect((await own.run('__return(await callHostTool("later", {}))')).value).toBe("here");
    } finally {
      await own.dispose();
    }
  });

  it("rejects bad definitions with a message naming the problem", async () => {
    const base = { description: "d", inputSchema: { type: "object" }, handler: () => 1 };
    await expect(NodeRuntime.create({ tools: { "bad name!": base } })).rejects.toThrow(/tool name "bad name!"/);
    await expect(NodeRuntime.create({ tools: { t: { ...base, handler: undefined } } as never })).rejects.toThrow(/tools\.t\.handler/);
    await expect(NodeRuntime.create({ tools: { t: { ...base, inputSchema: { type: "no-such-type" } } } })).rejects.toThrow(
      /tools\.t\.inputSchema is not a valid JSON Schema/,
    );
    await expect(
      NodeRuntime.create({ tools: { a: { ...base, commandAliases: ["x"] }, b: { ...base, commandAliases: ["x"] } } }),
    ).rejects.toThrow(/"x" is already registered/);
    await expect(NodeRuntime.create({ tools: { constructor: base } })).rejects.toThrow(ToolDefinitionError);
  });
});

describe("tool permission", () => {
  it("a policy allows or denies individual tools", async () => {
    const own = await NodeRuntime.create({
      tools: { add: tools.add!, echo: tools.echo! },
      permissions: { tool: { default: "deny", rules: [{ pattern: "ad*", action: "allow" }] } },
    });
    try {
      const result = await own.run(`
        const out = [await callHostTool("add", { a: 1, b: 2 })];
        try { await callHostTool("echo", {}) } catch (e) { out.push(e.code, e.message) }
        __return(out);
      `);
      expect(result.value).toEqual([3, "EACCES", expect.stringMatching(/denied by the tool permission policy/)]);
    } finally {
      await own.dispose();
    }
  });
});

describe("per-run limits", () => {
  it("caps the number of tool calls per run", async () => {
    const own = await NodeRuntime.create({ tools: { add: tools.add! }, limits: { toolCalls: 3 } });
    try {
      const result = await own.run(`
        const out = [];
        for (let i = 0; i < 4; i++) { try { out.push(await callHostTool("add", { a: i, b: 0 })) } catch (e) { out.push(e.code) } }
        __return(out);
      `);
      expect(result.value).toEqual([0, 1, 2, "ERR_TOOL_LIMIT"]);
    } finally {
      await own.dispose();
    }
  });

  it("refuses oversized arguments", async () => {
    const result = await rt.run('try { await callHostTool("echo", { blob: "x".repeat(2 * 1024 * 1024) }) } catch (e) { __return(e.code) }');
    expect(result.value).toBe("ERR_TOOL_LIMIT");
  });
});
