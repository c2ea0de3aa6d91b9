// Abuse of the tool bridge: oversized arguments, floods, names that are not tools, inputs built
// to pollute the host's prototypes, and the raw HOST binding the bridge rides on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime, ToolDefinitions } from "../../runtime/index.js";
import { createRuntime, expectServing, workerModulesPackage } from "./helpers.js";

let echoCalls = 0;
const mergeSeen: { ownKeys: string[]; hostPolluted: unknown; mergedAdmin: unknown }[] = [];

const tools: ToolDefinitions = {
  echo: {
    description: "Echoes its input",
    inputSchema: {},
    handler: (input: unknown) => {
      echoCalls += 1;
      return input;
    },
  },
  merge: {
    description: "Merges its input into a fresh object the way careless handlers do",
    inputSchema: { type: "object" },
    handler: (input: Record<string, unknown>) => {
      const merged = Object.assign({}, input) as Record<string, unknown>;
      const spread = { ...input } as Record<string, unknown>;
      const seen = {
        ownKeys: Object.keys(input),
        hostPolluted: ({} as Record<string, unknown>).isAdmin ?? (Object.prototype as Record<string, unknown>).isAdmin,
        mergedAdmin: merged.isAdmin ?? spread.isAdmin,
      };
      mergeSeen.push(seen);
      return { keys: seen.ownKeys };
    },
  },
};

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await createRuntime({ tools, nodeModules: workerModulesPackage() });
});
afterAll(async () => {
  await rt?.dispose();
});

describe("arguments", () => {
  it("oversized arguments are refused with ERR_TOOL_LIMIT before the handler runs; the next call works", async () => {
    const callsBefore = echoCalls;
    const result = await rt.run(`
      const out = [];
      for (const size of [2 * 1024 * 1024, 8 * 1024 * 1024]) {
        try { await callHostTool("echo", { blob: "a".repeat(size) }); out.push("accepted " + size); }
        catch (error) { out.push(error.code + " " + error.message); }
      }
      out.push(await callHostTool("echo", "small"));
      __return(out);
    `);
    expect(result.exitCode).toBe(0);
    const [two, eight, small] = result.value as string[];
    expect(two).toMatch(/^ERR_TOOL_LIMIT host call of \d+ bytes exceeds the limit of \d+ bytes \(tool input is capped at 1 MiB\)$/);
    expect(eight).toMatch(/^ERR_TOOL_LIMIT /);
    expect(small).toBe("small");
    expect(echoCalls - callsBefore).toBe(1);
  });

  it("arguments JSON cannot carry are refused in the guest (BigInt, cycles, throwing toJSON, Proxy traps)", async () => {
    const result = await rt.run(`
      const circular = {}; circular.self = circular;
      const inputs = [10n, circular, { toJSON() { throw new Error("toJSON trap"); } }, new Proxy({}, { ownKeys() { throw new Error("ownKeys trap"); } })];
      const out = [];
      for (const input of inputs) {
        try { await callHostTool("echo", input); out.push("accepted"); } catch (error) { out.push(error.constructor.name + ": " + error.message); }
      }
      out.push(JSON.stringify(await callHostTool("echo", [undefined, () => 1, Symbol("s"), NaN])));
      __return(out);
    `);
    expect(result.exitCode).toBe(0);
    const out = result.value as string[];
    expect(out.slice(0, 4).every((line) => line !== "accepted")).toBe(true);
    expect(out[4]).toBe("[null,null,null,null]");
  });
});

describe("floods", () => {
  it("2,000 concurrent calls: each resolves or is refused with ERR_TOOL_LIMIT; the host keeps serving", async () => {
    const result = await rt.run(
      `const calls = Array.from({ length: 2000 }, (_, i) => callHostTool("echo", i));
       const settled = await Promise.allSettled(calls);
       const wrong = settled.filter((s, i) => s.status === "fulfilled" && s.value !== i).length;
       const refusals = [...new Set(settled.filter((s) => s.status === "rejected").map((s) => s.reason.code))];
       __return({ ok: settled.filter((s) => s.status === "fulfilled").length, wrong, refusals });`,
      { timeout: 60_000 },
    );
    expect(result.exitCode).toBe(0);
    const value = result.value as { ok: number; wrong: number; refusals: string[] };
    expect(value.wrong).toBe(0);
    expect(value.ok).toBeGreaterThan(0);
    for (const code of value.refusals) expect(code).toBe("ERR_TOOL_LIMIT");
    await expectServing(rt);
  });

  it("limits.toolCalls caps the calls of one run", async () => {
    const capped = await createRuntime({ tools, limits: { toolCalls: 50 } });
    try {
      const result = await capped.run(`
        let ok = 0; let refused;
        for (let i = 0; i < 60; i++) {
          try { await callHostTool("echo", i); ok += 1; } catch (error) { refused = error.code + " " + error.message; break; }
        }
        __return({ ok, refused });
      `);
      expect(result.value).toEqual({ ok: 50, refused: "ERR_TOOL_LIMIT tool call limit of 50 calls per run reached" });
      // The cap is per run: the next run starts afresh.
      expect((await capped.run('__return(await callHostTool("echo", 1))')).value).toBe(1);
    } finally {
      await capped.dispose();
    }
  });
});

describe("names", () => {
  const oddNames = ["__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "then", "../x", "../../etc/passwd", "", " echo", "ECHO", "echo\u0000", "echo/../echo", "a".repeat(10_000)];

  it("names that are not tools are refused with ERR_TOOL_NOT_FOUND and a bounded message", async () => {
    const result = await rt.run(`
      const out = [];
      for (const name of ${JSON.stringify(oddNames)}) {
        try { await callHostTool(name, {}); out.push([name.slice(0, 40), "called"]); }
        catch (error) { out.push([name.slice(0, 40), error.code + " " + error.message]); }
      }
      __return(out);
    `);
    expect(result.exitCode).toBe(0);
    const out = result.value as [string, string][];
    expect(out).toHaveLength(oddNames.length);
    for (const [name, outcome] of out) {
      expect(outcome, JSON.stringify(name)).toMatch(/^ERR_TOOL_NOT_FOUND unknown tool "/);
      expect(outcome.length, JSON.stringify(name)).toBeLessThan(200);
    }
  });

  it("non-string names are a TypeError in the guest", async () => {
    const result = await rt.run(`
      const out = [];
      for (const name of [undefined, null, 42, { toString() { return "echo"; } }, ["echo"], Symbol("echo")]) {
        try { await callHostTool(name, {}); out.push("called"); } catch (error) { out.push(error.name + ": " + error.message); }
      }
      __return(out);
    `);
    expect(result.exitCode).toBe(0);
    for (const outcome of result.value as string[]) expect(outcome).toBe("TypeError: callHostTool: tool name must be a string");
  });

  it("odd command names through node:child_process are ENOENT, never a host program", async () => {
    const result = await rt.run(`
      import { execFile } from "node:child_process";
      const out = [];
      for (const command of ["__proto__", "constructor", "../x", "/bin/sh", "sh", "node; id", "echo && id"]) {
        out.push(await new Promise((resolve) => execFile(command, ["-c", "id"], (error, stdout) => resolve(error ? String(error.code) : "ran: " + stdout))));
      }
      __return(out);
    `);
    expect(result.exitCode).toBe(0);
    for (const outcome of result.value as string[]) expect(outcome).toMatch(/^(ENOENT|EACCES)$/);
  });
});

describe("host prototypes", () => {
  it('inputs with "__proto__" and "constructor.prototype" keys do not pollute the host', async () => {
    mergeSeen.length = 0;
    const result = await rt.run(`
      const crafted = JSON.parse('{"__proto__": {"isAdmin": true}, "constructor": {"prototype": {"isAdmin": true}}}');
      const defined = {};
      Object.defineProperty(defined, "__proto__", { value: { isAdmin: true }, enumerable: true });
      __return([await callHostTool("merge", crafted), await callHostTool("merge", defined)]);
    `);
    expect(result.exitCode).toBe(0);
    expect(mergeSeen).toHaveLength(2);
    for (const seen of mergeSeen) expect(seen.hostPolluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});

describe("the raw HOST binding", () => {
  // Was a known gap, fixed: `import { env } from "cloudflare:workers"` handed the guest the HOST binding
  // (guests can no longer import it; a package, host code, still can)
  // the bridge rides on. The host endpoint buffers a request body without any bound before
  // it looks at it, so a guest streaming a body grows the host's memory at ~100 MB/s (400 MB
  // streamed: host RSS 173 MB → 1.4 GB), and the stream keeps flowing after the run's
  // deadline (the run is reported killed; the isolate is not).
  it("a request body far past the tool input limit is cut off early", async () => {
    const result = await rt.run(
      `import { env } from "worker-modules";
       if (!env.HOST) { __return({ unreachable: true }); } else {
         const keep = setInterval(() => {}, 1000);
         const chunk = new Uint8Array(1 << 20).fill(32);
         let pulled = 0;
         const body = new ReadableStream({ pull(controller) { if (pulled >= 48) { controller.close(); return; } pulled += 1; controller.enqueue(chunk); } });
         try {
           const response = await env.HOST.fetch("http://host/call", { method: "POST", body });
           __return({ pulled, status: response.status, reply: (await response.text()).slice(0, 120) });
         } catch (error) {
           __return({ pulled, error: String(error) });
         }
         clearInterval(keep);
       }`,
      { timeout: 30_000 },
    );
    expect(result.exitCode).toBe(0);
    const value = result.value as { unreachable?: boolean; pulled?: number; status?: number; error?: string };
    // Fixed means: no HOST in reach, or the host refused (4xx / reset) before taking most of it.
    expect(value.unreachable === true || value.error !== undefined || (value.status ?? 0) >= 400 || (value.pulled ?? 48) < 40).toBe(true);
  });
});
