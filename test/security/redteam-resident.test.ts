// A resident snippet is the client's code (up to the HTTP body cap on
// /v1/sessions/:id/exec, 1 MiB through MCP's session_exec). One that awaits was parsed with
// acorn on the host's event loop up to twice (~0.4 s per MiB each), so a tenant's sessions
// could stall every other tenant. Large snippets are now prepared on a worker thread.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResidentRunner } from "../../host/api/types.js";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

describe("resident runners: large snippets", () => {
  let rt: NodeRuntime;
  let bystander: NodeRuntime;
  let runners: ResidentRunner[];
  beforeAll(async () => {
    [rt, bystander] = await Promise.all([createRuntime(), createRuntime()]);
    runners = await Promise.all(Array.from({ length: 4 }, () => rt.createResidentRunner()));
    await bystander.run("__return(0)");
  }, 120_000);
  afterAll(async () => {
    await Promise.all((runners ?? []).map((runner) => runner.dispose()));
    await Promise.all([rt?.dispose(), bystander?.dispose()]);
  });

  it("four 1 MB snippets ending in an await do not stall another runtime", async () => {
    // 500,000 statements in 1 MB: the parse is what costs.
    const snippet = `globalThis.n = 200000;\n${"0\n".repeat(500_000)}await 0;\nn`;
    const execs = Promise.all(
      runners.map((runner, index) =>
        new Promise((resolve) => setTimeout(resolve, 50 + index * 100)).then(() => runner.exec(snippet, { timeout: 60_000 })),
      ),
    );
    let settled = false;
    void execs.finally(() => (settled = true));
    let slowest = 0;
    do {
      const started = performance.now();
      const result = await bystander.run("__return(1)", { timeout: 60_000 });
      expect(result.value).toBe(1);
      slowest = Math.max(slowest, performance.now() - started);
    } while (!settled);
    for (const result of await execs) expect(result).toMatchObject({ exitCode: 0, value: 200_000 });
    // On the event loop the four parses ran back to back (~4 s here); off it the bystander's
    // trivial runs stay near their unloaded tens of ms.
    expect(slowest).toBeLessThan(3_000);
  }, 180_000);

  it("a large snippet that does not compile still says where", async () => {
    const result = await runners[0]!.exec(`${"n++;\n".repeat(10_000)}let = ;\n`, { timeout: 30_000 });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^snippet-\d+:10001\nlet = ;\n/);
    expect(result.stderr).toMatch(/SyntaxError/);
    const next = await runners[0]!.exec("n + 1");
    expect(next.value).toBe(200_001);
    await expectServing(bystander);
  }, 60_000);
});

// Was a gap: a snippet's import() was workerd's own, which loaded the runner's modules (they
// sit beside the snippet) and resolved `node:/../x` as `x`; `node:x/../../y` took the
// runner's process down. Every import() now goes through the runner's checked resolver.
describe("resident runners: a snippet's import()", () => {
  let rt: NodeRuntime;
  let runner: ResidentRunner;
  beforeAll(async () => {
    rt = await createRuntime();
    runner = await rt.createResidentRunner();
  }, 60_000);
  afterAll(async () => {
    await runner?.dispose();
    await rt?.dispose();
  });

  it.each([
    ["a relative file", '"./secure-exec-console.js"', "ERR_MODULE_NOT_FOUND"],
    ["the runner's main module by bare name", '"resident-worker.js"', "ERR_MODULE_NOT_FOUND"],
    ["node:/../", '"node:/../secure-exec-bridge.js"', "ERR_UNKNOWN_BUILTIN_MODULE"],
    ["node: climbing past the root", '"node:x/../../secure-exec-console.js"', "ERR_UNKNOWN_BUILTIN_MODULE"],
  ])("%s is refused with Node's code and the runner lives on", async (_, specifier, code) => {
    const result = await runner.exec(`await import(${specifier}).then(() => "loaded", (e) => e.code)`);
    expect(result).toMatchObject({ exitCode: 0, value: code });
    expect((await runner.exec("1 + 1")).value).toBe(2);
  });

  it("builtins still load, also from functions and after the resolver's global is assigned", async () => {
    const result = await runner.exec(
      'globalThis.__secureExecImport = () => "swapped";\nfunction load(name) { return import(name); }\nconst [fs, util, os] = await Promise.all([import("node:fs"), load("util"), import("os")]);\n[typeof fs.readFileSync, typeof util.inspect, os.platform()].join(" ")',
    );
    expect(result).toMatchObject({ exitCode: 0, value: "function function linux" });
    await expectServing(rt);
  });

  // 40,000 native imports in flight took the runner's process down once import() was routed
  // through the resolver; the host's rewrite of that many calls must also stay linear.
  it("40,000 import() calls in one snippet leave the runner alive", async () => {
    const snippet = `globalThis.k = 0;\n${'void import("node:os").then(() => k++);\n'.repeat(40_000)}await new Promise((resolve) => setTimeout(resolve, 50));\nk`;
    const result = await runner.exec(snippet, { timeout: 60_000 });
    expect(result).toMatchObject({ exitCode: 0, value: 40_000 });
    expect((await runner.exec("1 + 1")).value).toBe(2);
  }, 90_000);
});
