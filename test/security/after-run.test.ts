// A guest must not outlive its run. workerd's own modules (`cloudflare:workers` has
// `waitUntil`, which keeps an isolate running after its request) are refused however the guest
// asks for them, as Node refuses them; and a process that burns CPU or stops answering with no
// run in flight is held by escaped guest code: it is killed and replaced.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { cpuTicks, createRuntime, expectServing, sleep, workerModulesPackage } from "./helpers.js";

let rt: NodeRuntime;
let escaping: NodeRuntime;
beforeAll(async () => {
  // A package is host code, so its `cloudflare:workers` import stays: only the host's watch
  // on idle processes stands between its `waitUntil` and a process nobody runs.
  [rt, escaping] = await Promise.all([createRuntime(), createRuntime({ nodeModules: workerModulesPackage() })]);
});
afterAll(async () => {
  await Promise.all([rt?.dispose(), escaping?.dispose()]);
});

/** What the host's own Node prints for the same module. */
function nodeOutput(code: string): { stdout: string; stderrFirstLine: string; exitCode: number } {
  const dir = mkdtempSync(join(tmpdir(), "secure-exec-oracle-"));
  try {
    writeFileSync(join(dir, "guest.mjs"), code);
    const result = spawnSync(process.execPath, [join(dir, "guest.mjs")], { encoding: "utf8" });
    const errorLine = result.stderr.split("\n").find((line) => line.startsWith("Error")) ?? "";
    return { stdout: result.stdout, stderrFirstLine: errorLine, exitCode: result.status ?? -1 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("workerd's own modules are refused as Node refuses them", () => {
  it.each([
    ["a static import", 'import { waitUntil } from "cloudflare:workers";\nwaitUntil(new Promise(() => {}));\n'],
    ["a re-export", 'export * from "cloudflare:workers";\n'],
    ["a static import of workerd:", 'import "workerd:unsafe";\n'],
  ])("%s fails to load, with Node's error", async (_, code) => {
    const oracle = nodeOutput(code);
    const result = await rt.exec(code);
    expect(result.exitCode).toBe(oracle.exitCode);
    expect(result.stdout).toBe("");
    expect(result.stderr.split("\n")[0]).toBe(oracle.stderrFirstLine);
  });

  it.each([
    ["a computed import()", 'try { await import("cloud" + "flare:workers"); } catch (e) { console.log(e.code, e.message); }'],
    ["a literal import()", 'await import("cloudflare:workers").then(() => console.log("loaded"), (e) => console.log(e.code, e.message));'],
    ["import() of cloudflare:sockets", 'try { await import(["cloudflare", "sockets"].join(":")); } catch (e) { console.log(e.code); }'],
    ["process.getBuiltinModule", 'console.log(process.getBuiltinModule("cloudflare:workers"), process["get" + "BuiltinModule"]("workerd:x"));'],
    [
      "createRequire from a static import",
      'import { createRequire } from "node:module";\ntry { createRequire("/workspace/guest.js")("cloudflare:workers"); } catch (e) { console.log(e.code); }',
    ],
    [
      "createRequire from a computed import()",
      'const { createRequire } = await import("node:" + "module");\ntry { createRequire("/workspace/guest.js")("cloudflare:workers"); } catch (e) { console.log(e.code); }',
    ],
    [
      "createRequire through getBuiltinModule",
      'const m = process["get" + "BuiltinModule"]("module");\ntry { m.createRequire("/workspace/guest.js")("cloudflare:workers"); } catch (e) { console.log(e.code); }',
    ],
  ])("%s refuses them, with Node's error", async (_, code) => {
    const oracle = nodeOutput(code);
    const result = await rt.exec(code);
    expect(result.stdout).toBe(oracle.stdout);
    expect(result.exitCode).toBe(oracle.exitCode);
  });

  it("the resolver cannot be shadowed, replaced or reached around by the guest", async () => {
    // Every import() in guest code calls the prelude's resolver; a guest that swaps it only
    // calls its own code, and the resolver itself (reachable as the main function's argument)
    // refuses workerd's modules.
    const code = [
      "const resolver = arguments[0];",
      'const direct = await resolver("cloudflare:workers").then(() => "loaded", (e) => e.code);',
      "__secureExecImport = (specifier) => resolver(specifier.replace(/^node:/, \"cloudflare:\"));",
      'const swapped = await import("node:" + "workers").then(() => "loaded", (e) => e.code);',
      "let replaced;",
      'try { Object.defineProperty(import.meta, "url", { value: "cloudflare:workers" }); replaced = true; } catch { replaced = false; }',
      'const afterMeta = await import("cloudflare:" + "workers").then(() => "loaded", (e) => e.code);',
      "console.log(direct, swapped, afterMeta);",
    ].join("\n");
    const result = await rt.exec(code);
    expect(result.stderr).toBe("");
    expect(result.stdout).not.toMatch(/loaded/);
    expect(result.stdout).toMatch(/^(ERR_\w+) \1 \1\n$/);
  });

  it("other dynamic imports still load, with their line numbers kept", async () => {
    const code = 'const path = await import(\n"node:" + "path"\n);\nconsole.log(typeof path.join, (await import("node:path")).default === path.default);\nthrow new Error("here");';
    const result = await rt.exec(code);
    expect(result.stdout).toBe("function true\n");
    expect(result.stderr).toMatch(/guest\.js:5:/);
  });
});

/**
 * After a run has returned, none of its code runs on: each process of the runtime is either
 * gone (killed as held by escaped code) or burns no CPU, and the runtime keeps serving.
 */
async function expectNothingRunningAfter(runtime: NodeRuntime, pids: number[]): Promise<void> {
  // Past the guest's own delay (100 ms), then one second of CPU per process.
  await sleep(400);
  const before = pids.map((pid) => cpuTicks(pid));
  await sleep(1_000);
  for (const [index, pid] of pids.entries()) {
    const after = cpuTicks(pid);
    if (after === undefined || before[index] === undefined) continue;
    // 100 ticks a second: a spinning guest burns ~100, an idle workerd a few.
    expect(after - before[index]!).toBeLessThan(30);
  }
  await expectServing(runtime);
}

describe("guest code that would keep running after its run ended", () => {
  // Each run is an unnamed isolate that workerd frees when the run ends, so what `waitUntil`
  // scheduled after the return never runs; were it to, the host's watch on idle processes
  // (host/engine/sandbox-process.ts) kills the process that burns CPU with no run in flight.
  it("a blocking loop started through waitUntil after the return never runs on", async () => {
    const result = await escaping.run(
      'import { waitUntil } from "worker-modules"; waitUntil(scheduler.wait(100).then(() => { for (;;) {} })); __return("returned");',
      { timeout: 5_000 },
    );
    expect(result.exitCode).toBe(0);
    expect(result.value).toBe("returned");
    await expectNothingRunningAfter(escaping, escaping.processIds());
  });

  it("nor does a loop that yields (and so would still answer pings)", async () => {
    const result = await escaping.run(
      [
        'import { waitUntil } from "worker-modules";',
        "waitUntil((async () => {",
        "  await scheduler.wait(100);",
        "  for (;;) { for (let i = 0; i < 2e6; i += 1) {} await scheduler.wait(0); }",
        "})());",
        '__return("returned");',
      ].join("\n"),
      { timeout: 5_000 },
    );
    expect(result.value).toBe("returned");
    await expectNothingRunningAfter(escaping, escaping.processIds());
  });

  it("a timer the guest leaves behind keeps its run alive until the deadline, where the loop dies with the run", async () => {
    const result = await rt.run('setTimeout(() => { for (;;) {} }, 100); __return("returned");', { timeout: 1_500 });
    expect(result.exitCode).toBe(137);
    await expectNothingRunningAfter(rt, rt.processIds());
  });
});
