// What a guest sends the host is bounded before it is buffered and parsed in linear time:
// its event stream (output, return value, forged events) and its host calls. While one
// runtime's guest floods the host, another runtime's trivial runs stay prompt.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing, workerModulesPackage } from "./helpers.js";

let attacker: NodeRuntime;
let bystander: NodeRuntime;
let unloadedP50 = 0;

beforeAll(async () => {
  [attacker, bystander] = await Promise.all([
    // Guests cannot import workerd's modules; the raw HOST binding is reached through a package.
    createRuntime({ limits: { processes: 1 }, nodeModules: workerModulesPackage() }),
    createRuntime({ limits: { processes: 1 } }),
  ]);
  await attacker.run("__return(1)");
  unloadedP50 = median(await bystanderLatencies(12));
});
afterAll(async () => {
  await Promise.all([attacker?.dispose(), bystander?.dispose()]);
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function trivialRun(): Promise<number> {
  const started = performance.now();
  const result = await bystander.run("__return(6 * 7)", { timeout: 30_000 });
  expect(result.value).toBe(42);
  return performance.now() - started;
}

async function bystanderLatencies(count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let index = 0; index < count; index += 1) latencies.push(await trivialRun());
  return latencies;
}

/**
 * Runs `attack` over and over while the bystander runs trivial runs back to back; returns the
 * bystander's latencies. Without bounded decoding every attack held the host's event loop
 * for ~1 s, so most bystander runs took that long.
 */
async function underAttack(attack: () => Promise<void>, rounds = 4): Promise<number[]> {
  let attacking = true;
  const attacks = (async () => {
    try {
      for (let round = 0; round < rounds; round += 1) await attack();
    } finally {
      attacking = false;
    }
  })();
  const latencies: number[] = [];
  while (attacking) latencies.push(await trivialRun());
  await attacks;
  return latencies;
}

/** Generous: a small multiple of the unloaded latency plus slack for a loaded machine. */
function expectPrompt(latencies: number[]): void {
  expect(latencies.length).toBeGreaterThan(0);
  expect(median(latencies)).toBeLessThan(5 * unloadedP50 + 300);
}

describe("return values (limits.returnBytes, default 1 MiB)", () => {
  it("a 20 MiB __return ends the run with 137 and a clear line, and the bystander stays prompt", async () => {
    const latencies = await underAttack(async () => {
      const result = await attacker.run('__return("y".repeat(20 << 20))', { timeout: 60_000 });
      expect(result.exitCode).toBe(137);
      expect(result.value).toBeUndefined();
      expect(result.stderr).toMatch(/secure-exec: the value passed to __return is 20971522 bytes of JSON, over limits\.returnBytes = 1048576; the guest was killed\n$/);
    });
    expectPrompt(latencies);
    await expectServing(attacker);
  });

  it("a forged return value sent in pieces past the cap is refused by the host too", async () => {
    const result = await attacker.run(
      `import { bridge } from "./secure-exec-bridge.js";
       const piece = "y".repeat(60_000);
       for (let i = 0; i < 100; i++) bridge.current.emit({ rp: piece });
       bridge.current.emit({ x: 0 });
       await new Promise(() => setInterval(() => {}, 1000));`,
      { timeout: 30_000 },
    );
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(/over limits\.returnBytes = 1048576; the guest was killed\n$/);
  });

  // Under the byte cap, but shaped to cost the most per byte: a JSON.parse of either held
  // the host's event loop for ~0.3 s.
  it("a value nested 400,000 deep, or of 300,000 empty arrays, is refused before the host parses it; the bystander stays prompt", async () => {
    const latencies = await underAttack(async () => {
      const deep = await attacker.run('__return(JSON.parse("[".repeat(4e5) + "]".repeat(4e5)))', { timeout: 60_000 });
      expect(deep.exitCode).toBe(137);
      expect(deep.stderr).toBe("secure-exec: the value passed to __return nests deeper than 1000 levels; the guest was killed\n");
      const wide = await attacker.run('__return(Array.from({ length: 3e5 }, () => []))', { timeout: 60_000 });
      expect(wide.exitCode).toBe(137);
      expect(wide.stderr).toBe("secure-exec: the value passed to __return holds more than 104857 objects and arrays; the guest was killed\n");
    });
    expectPrompt(latencies);
  });

  it("a runtime that allows more gets a large value intact, in pieces", async () => {
    const roomy = await createRuntime({ limits: { processes: 1, returnBytes: 32 * 1024 * 1024 } });
    try {
      const result = await roomy.run('__return({ text: "€".repeat(3 << 20), list: Array.from({ length: 1000 }, (_, i) => i) })', { timeout: 60_000 });
      expect(result.exitCode).toBe(0);
      const value = result.value as { text: string; list: number[] };
      expect(value.text).toBe("€".repeat(3 << 20));
      expect(value.list[999]).toBe(999);
    } finally {
      await roomy.dispose();
    }
  });

  it("limits.returnBytes is validated", async () => {
    await expect(NodeRuntime.create({ limits: { returnBytes: -1 } })).rejects.toThrow(/limits\.returnBytes/);
    await expect(NodeRuntime.create({ limits: { returnBytes: 1.5 } })).rejects.toThrow(/limits\.returnBytes/);
  });
});

describe("output and forged events", () => {
  it("one 16 MiB process.stdout.write arrives intact in bounded events, and the bystander stays prompt", async () => {
    const latencies = await underAttack(async () => {
      const result = await attacker.run('process.stdout.write("y".repeat(16 << 20)); __return("done")', { timeout: 60_000 });
      expect(result.exitCode).toBe(0);
      expect(result.value).toBe("done");
      expect(result.stdout.length).toBe(16 << 20);
    });
    expectPrompt(latencies);
  });

  it("a forged event line longer than 1 MiB is cut off there: the run ends with 137", async () => {
    const result = await attacker.run(
      'import { bridge } from "./secure-exec-bridge.js"; bridge.current.emit({ s: 1, pad: "y".repeat(4 << 20) }); await new Promise(() => setInterval(() => {}, 1000));',
      { timeout: 30_000 },
    );
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toBe("secure-exec: the guest sent an event of more than 1048576 bytes; the guest was killed\n");
    await expectServing(attacker);
  });

  it("forged output past what limits.outputBytes allows ends the run", async () => {
    const small = await createRuntime({ limits: { processes: 1, outputBytes: 64 * 1024 } });
    try {
      const result = await small.run(
        `import { bridge } from "./secure-exec-bridge.js";
         const piece = "y".repeat(60_000);
         for (let i = 0; i < 400; i++) { bridge.current.emit({ o: piece }); if (i % 20 === 0) await new Promise((r) => setTimeout(r, 0)); }
         await new Promise(() => setInterval(() => {}, 1000));`,
        { timeout: 30_000 },
      );
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toMatch(/secure-exec: the guest sent more stdout than limits\.outputBytes allows; the guest was killed\n$/);
      expect(result.stdout.endsWith("[secure-exec: stdout truncated at 65536 bytes]\n")).toBe(true);
    } finally {
      await small.dispose();
    }
  });
});

describe("a flood of forged events that carry no output", () => {
  it("ends the run once the stream carries more than the run's limits allow", async () => {
    const small = await createRuntime({ limits: { processes: 1, outputBytes: 64 * 1024, returnBytes: 1024 } });
    try {
      const result = await small.run(
        `import { bridge } from "./secure-exec-bridge.js";
         const pad = "x".repeat(4000);
         for (let i = 0; i < 100_000; i++) { bridge.current.emit({ s: 1, pad }); if (i % 100 === 0) await new Promise((r) => setTimeout(r, 0)); }
         await new Promise(() => setInterval(() => {}, 1000));`,
        { timeout: 45_000 },
      );
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toBe("secure-exec: the guest sent more events than its limits allow a run; the guest was killed\n");
    } finally {
      await small.dispose();
    }
  });
});

describe("replies to the host's deliveries", () => {
  it("a guest server whose reply nests 500,000 deep, or is over the cap, is refused unparsed; the bystander stays prompt", async () => {
    const small = await createRuntime({ limits: { processes: 1, outputBytes: 256 * 1024 } });
    try {
      const server = await small.spawn(`
        import http from "node:http";
        import { httpServers } from "./secure-exec-bridge.js";
        http.createServer((req, res) => res.end("ok")).listen(3000, () => {
          // The reply the host reads is the guest's own text: here valid JSON nested 500,000 deep.
          const deepText = '{"ok":true,"headers":' + "[".repeat(5e5) + "]".repeat(5e5) + "}";
          const json = Response.json;
          Response.json = (value, init) => (value && value.deepText ? new Response(value.deepText, init) : json.call(Response, value, init));
          httpServers.set(3000, async (message) => message.path === "/deep" ? { deepText } : { ok: true, status: 200, body: "y".repeat(4 << 20) });
          console.log("listening");
        });
      `);
      await small.waitForListener({ port: 3000 }, { timeoutMs: 20_000 });
      const latencies = await underAttack(async () => {
        await expect(small.fetch(3000, { path: "/deep" })).rejects.toThrow("secure-exec: the guest's reply nests deeper than 8 levels");
        await expect(small.fetch(3000, { path: "/big" })).rejects.toThrow(/secure-exec: the guest's reply is over \d+ bytes/);
      });
      expectPrompt(latencies);
      server.kill();
      await server.wait();
    } finally {
      await small.dispose();
    }
  });
});

describe("host calls (8 MiB bodies)", () => {
  // The guest can learn its own run token (it owns the HOST binding it calls through).
  const RAW_CALLS = `
    import { env } from "worker-modules";
    const keepAlive = setInterval(() => {}, 1000);
    const host = env.HOST;
    const send = host.fetch;
    let token;
    host.fetch = function (url, init) { token = init.headers["x-secure-exec-run"]; return send.call(this, url, init); };
    try { await callHostTool("missing", 1); } catch {}
    const body = JSON.stringify({ kind: "tool", name: "missing", input: "b".repeat(8 << 20) });
    const out = [];
    for (const headers of [{}, { "x-secure-exec-run": "forged" }, { "x-secure-exec-run": token }]) {
      const response = await send.call(host, "http://host/call", { method: "POST", headers, body });
      out.push(response.status + " " + (await response.json()).error);
    }
    const deep = '{"kind":"tool","name":"missing","input":' + "[".repeat(500_000) + "]".repeat(500_000) + "}";
    const response = await send.call(host, "http://host/call", { method: "POST", headers: { "x-secure-exec-run": token }, body: deep });
    out.push(response.status + " " + (await response.json()).error);
    try { await callHostTool("missing", "b".repeat(8 << 20)); } catch (error) { out.push(error.code + " " + error.message); }
    clearInterval(keepAlive);
    __return(out);
  `;

  it("are refused by run and size before they are read, with clear errors; the bystander stays prompt", async () => {
    let answers: string[] = [];
    const latencies = await underAttack(async () => {
      const result = await attacker.run(RAW_CALLS, { timeout: 60_000 });
      expect(result.exitCode).toBe(0);
      answers = result.value as string[];
    }, 3);
    expect(answers).toEqual([
      "403 this run has ended; host calls are closed",
      "403 this run has ended; host calls are closed",
      expect.stringMatching(/^413 host call of \d+ bytes exceeds the limit of 1114112 bytes \(tool input is capped at 1 MiB\)$/),
      "413 host call nests deeper than 1000 levels",
      expect.stringMatching(/^ERR_TOOL_LIMIT host call of \d+ bytes exceeds the limit of 1114112 bytes/),
    ]);
    expectPrompt(latencies);
    await expectServing(attacker);
  });

  it("100 parallel 1 MB host calls: the run's bytes in flight are capped, the rest are refused with a clear error", async () => {
    // A runtime of its own: the guest's 100 MB of bodies weigh on its own process's memory cap.
    const fresh = await createRuntime({ limits: { processes: 1 }, nodeModules: workerModulesPackage() });
    const result = await fresh.run(
      `import { env } from "worker-modules";
       const keepAlive = setInterval(() => {}, 1000);
       const host = env.HOST;
       const send = host.fetch;
       let token;
       host.fetch = function (url, init) { token = init.headers["x-secure-exec-run"]; return send.call(this, url, init); };
       try { await callHostTool("missing", 1); } catch {}
       const body = JSON.stringify({ kind: "tool", name: "missing", input: "b".repeat(1_000_000) });
       const answers = await Promise.all(Array.from({ length: 100 }, () =>
         send.call(host, "http://host/call", { method: "POST", headers: { "x-secure-exec-run": token }, body })
           .then(async (response) => response.status + " " + (await response.json()).error)));
       clearInterval(keepAlive);
       __return([...new Set(answers)].sort());`,
      { timeout: 60_000 },
    );
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const answers = result.value as string[];
    expect(answers).toContain("429 this run's host calls in flight exceed 8912896 bytes; wait for some to finish");
    expect(answers.every((answer) => /^(200|429) /.test(answer))).toBe(true);
    await expectServing(fresh);
    await fresh.dispose();
  });
});
