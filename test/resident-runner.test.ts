// Resident runners: one live guest per runner, in a workerd process of its own. These
// tests start and kill real workerd processes (no mocks).
import { readFileSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";
import type { ResidentRunner } from "../host/api/types.js";
import { prepareSnippet, type DiagnosableResidentRunner } from "../host/engine/resident-runner.js";

let rt: NodeRuntime;
const runners: ResidentRunner[] = [];

beforeAll(async () => {
  rt = await NodeRuntime.create({ env: { RUNTIME_VAR: "from-runtime" }, cwd: "/work", limits: { memoryMb: 64 } });
});
afterAll(async () => {
  await Promise.all(runners.map((runner) => runner.dispose()));
  await rt.dispose();
});

async function createRunner(runtime: NodeRuntime = rt): Promise<DiagnosableResidentRunner> {
  const runner = (await runtime.createResidentRunner()) as DiagnosableResidentRunner;
  runners.push(runner);
  return runner;
}

/** What the host's node writes to stderr for `snippet` (pids normalised). */
function execFileSyncStderr(snippet: string): string {
  const child = spawnSync(process.execPath, ["-e", snippet], { encoding: "utf8" });
  return child.stderr.replace(/\(node:\d+\)/g, "(node:PID)");
}

/** Live and not a zombie. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number, withinMs = 3000): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    if (!isRunning(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return !isRunning(pid);
}

describe("one live guest", () => {
  let runner: DiagnosableResidentRunner;
  beforeAll(async () => {
    runner = await createRunner();
  });

  it("keeps globals between snippets: globalThis, var, let/const, function and class declarations", async () => {
    const first = await runner.exec(
      "globalThis.x = 1; var v = 2; let l = 3; const c = 4; function f() { return 5; } class K { m() { return 6; } }",
    );
    expect(first).toMatchObject({ stdout: "", stderr: "", exitCode: 0 });
    const second = await runner.exec("x += 1; [x, v, l, c, f(), new K().m()]");
    expect(second).toEqual({ stdout: "", stderr: "", exitCode: 0, value: [2, 2, 3, 4, 5, 6] });
  });

  it("supports top-level await, and its declarations persist too", async () => {
    const first = await runner.exec(
      "const fetched = await new Promise((resolve) => setTimeout(() => resolve(41), 10));\nvar total = fetched + 1;\nfunction twice(n) { return 2 * n; }\ntotal",
    );
    expect(first).toEqual({ stdout: "", stderr: "", exitCode: 0, value: 42 });
    expect((await runner.exec("[fetched, total, twice(total)]")).value).toEqual([41, 42, 84]);
    expect((await runner.exec("for (var i = 0; i < 3; i++) await null;\ni")).value).toBe(3);
    // A promise made by one snippet can be awaited by the next.
    await runner.exec("globalThis.later = new Promise((resolve) => (globalThis.settle = resolve))");
    expect((await runner.exec("setTimeout(() => settle('done'), 5); await later")).value).toBe("done");
  });

  it("keeps I/O objects usable across snippets (all run in one request context)", async () => {
    await runner.exec("globalThis.pipe = new TransformStream(); globalThis.writer = pipe.writable.getWriter(); globalThis.reader = pipe.readable.getReader();");
    await runner.exec("writer.write('through the pipe')");
    expect((await runner.exec("(await reader.read()).value")).value).toBe("through the pipe");
    await runner.exec("globalThis.kept = new Response('a body')");
    expect((await runner.exec("await kept.text()")).value).toBe("a body");
  });

  it("captures console output per exec, formatted like Node", async () => {
    const result = await runner.exec(
      'console.log("%s has %d items", "list", 3, { a: [1] }); console.error("careful"); process.stdout.write("raw\\n"); setTimeout(() => console.log("late"), 20);',
    );
    expect(result.stdout).toBe("list has 3 items { a: [ 1 ] }\nraw\nlate\n");
    expect(result.stderr).toBe("careful\n");
    expect(result.exitCode).toBe(0);
    const next = await runner.exec('console.log("only mine")');
    expect(next.stdout).toBe("only mine\n");
    expect(next.stderr).toBe("");
  });

  it("prints console.table, count, group, dir, assert and their warnings as the host's node does, like a run", async () => {
    const snippet = [
      'console.table([{ x: 1, y: "a" }, { x: 2 }]); console.table(new Map([["k", 1]]));',
      'console.count(); console.count("n"); console.count(); console.countReset("missing");',
      'console.group("outer"); console.info("inside"); console.group(); console.log("deeper\\nlines"); console.groupEnd(); console.groupEnd();',
      'console.dir({ nested: { deep: { deeper: { deepest: 1 } } } }, { depth: 0 }); console.assert(1 === 2, "%s wrong", "very");',
      'console.log("%o and %d", [1], 42n, -0);',
    ].join("\n");
    const node = execFileSync(process.execPath, ["-e", snippet], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const resident = await runner.exec(snippet);
    const run = await rt.run(snippet);
    expect(resident.stdout).toBe(node);
    expect(run.stdout).toBe(node);
    // stderr: the assertion, then the warning for the missing count (pids differ).
    const hostStderr = execFileSyncStderr(snippet);
    for (const result of [resident, run]) expect(result.stderr.replace(/\(node:\d+\)/g, "(node:PID)")).toBe(hostStderr);
  });

  it("shares the run's process I/O: env values become strings, stdout takes bytes and encodings and refuses the rest", async () => {
    const snippet =
      'process.env.N = 42; console.log(typeof process.env.N, process.env.N); process.stdout.write(Buffer.from("bytes\\n")); process.stdout.write("6869", "hex"); try { process.stdout.write(5); } catch (error) { console.log("", error.code); } delete process.env.N;';
    const node = execFileSync(process.execPath, ["-e", snippet], { encoding: "utf8" });
    expect((await runner.exec(snippet)).stdout).toBe(node);
    expect((await rt.run(snippet)).stdout).toBe(node);
  });

  it("promisifies its timers as Node does", async () => {
    const snippet =
      'const { promisify } = require("node:util"); promisify(setTimeout)(20, "late").then((value) => console.log(value)); promisify(setImmediate)("soon").then((value) => console.log(value));';
    const node = execFileSync(process.execPath, ["-e", snippet], { encoding: "utf8" });
    const resident = await runner.exec(snippet.replace('require("node:util")', 'process.getBuiltinModule("node:util")'));
    expect(resident).toMatchObject({ stdout: node, exitCode: 0 });
  });

  it("gives the value passed to __return, else the JSON-serialisable completion value", async () => {
    expect((await runner.exec("__return({ city: 'Tokyo' }); 5")).value).toEqual({ city: "Tokyo" });
    expect((await runner.exec("({ n: 1, list: ['a'] })")).value).toEqual({ n: 1, list: ["a"] });
    expect((await runner.exec("__return(undefined)")).value).toBeNull();
    const noValue = await runner.exec("() => 1");
    expect(noValue.exitCode).toBe(0);
    expect("value" in noValue).toBe(false);
    expect("value" in (await runner.exec("10n"))).toBe(false);
  });

  it("reports a thrown error with exit code 1 and its stack, and stays alive", async () => {
    await runner.exec("globalThis.survivor = 'still here'");
    const thrown = await runner.exec("function explode() { throw new Error('boom'); }\nexplode()");
    expect(thrown.exitCode).toBe(1);
    expect(thrown.stderr).toMatch(/^Error: boom\n\s+at explode \(snippet-\d+:1:28\)/);
    expect("value" in thrown).toBe(false);
    const rejected = await runner.exec("await Promise.reject(new TypeError('nope'))");
    expect(rejected.exitCode).toBe(1);
    expect(rejected.stderr).toContain("TypeError: nope");
    const unhandled = await runner.exec("Promise.reject(new RangeError('unhandled')); 1");
    expect(unhandled.exitCode).toBe(1);
    expect(unhandled.stderr).toContain("RangeError: unhandled");
    const syntax = await runner.exec("let y = ;");
    expect(syntax.exitCode).toBe(1);
    expect(syntax.stderr).toMatch(/^snippet-\d+:1\nlet y = ;\n {8}\^\n\nSyntaxError: /);
    expect(await runner.exec("survivor")).toEqual({ stdout: "", stderr: "", exitCode: 0, value: "still here" });
  });

  it("rejects a second exec while one is in flight, and carries on afterwards", async () => {
    const first = runner.exec("await new Promise((resolve) => setTimeout(resolve, 50)); 'first'");
    await expect(runner.exec("'second'")).rejects.toThrow(/already running a snippet.*one exec at a time/);
    expect((await first).value).toBe("first");
    expect((await runner.exec("'third'")).value).toBe("third");
  });

  it("gives the guest the runtime's env and cwd, nothing of the host's, and no network", async () => {
    const env = await runner.exec("[process.env, process.cwd()]");
    expect(env.value).toEqual([{ RUNTIME_VAR: "from-runtime" }, "/work"]);
    const network = await runner.exec(
      "let failure = 'reached';\ntry { await fetch('http://127.0.0.1:9/'); } catch (error) { failure = error.message; }\nfailure",
    );
    expect(network.value).toMatch(/not permitted to access the internet/);
  });

  it("caps its process's data segment (RLIMIT_DATA) like sandbox processes", async () => {
    const limits = readFileSync(`/proc/${runner.processId()}/limits`, "utf8");
    const [, soft] = /Max data size\s+(\d+)/.exec(limits) ?? [];
    expect(Number(soft)).toBeGreaterThan(64 * 1024 * 1024);
    expect(Number(soft)).toBeLessThan(4 * 1024 * 1024 * 1024);
  });
});

describe("ending a runner", () => {
  it("a timeout kills only that runner: another runner and rt.exec carry on, later calls reject", async () => {
    const [doomed, bystander] = await Promise.all([createRunner(), createRunner()]);
    await bystander.exec("globalThis.kept = 7");
    const started = performance.now();
    const result = await doomed.exec("console.log('before'); await new Promise((r) => setTimeout(r, 20)); while (true) {}", {
      timeout: 300,
    });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(result.exitCode).toBe(137);
    expect(result.stdout).toBe("before\n");
    expect(result.stderr).toMatch(/time limit of 300 ms exceeded/);
    expect(await waitUntilGone(doomed.processId())).toBe(true);
    await expect(doomed.exec("1")).rejects.toThrow(/runner was killed: the time limit of 300 ms was exceeded/);
    expect((await bystander.exec("kept")).value).toBe(7);
    expect(await rt.exec("console.log('fine')")).toEqual({ stdout: "fine\n", stderr: "", exitCode: 0 });
  });

  it("process.exit(n) ends the runner with exit code n; later calls reject", async () => {
    const runner = await createRunner();
    const result = await runner.exec("console.log('bye'); process.exit(4); console.log('never')");
    expect(result).toEqual({ stdout: "bye\n", stderr: "", exitCode: 4 });
    await expect(runner.exec("1")).rejects.toThrow(/runner has exited: the guest called process\.exit\(4\)/);
    expect(await waitUntilGone(runner.processId())).toBe(true);
  });

  it("a heap bomb ends only its runner, with a clear out-of-memory line", async () => {
    const runner = await createRunner();
    const result = await runner.exec("globalThis.hoard = []; for (;;) hoard.push(new Array(1e6).fill(1.5));", {
      timeout: 15_000,
    });
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(/ran out of memory \(limits\.memoryMb = 64\)/);
    await expect(runner.exec("1")).rejects.toThrow(/runner was killed: its process ran out of memory/);
  });

  it("dispose() kills the runner's process; later calls reject", async () => {
    const runner = await createRunner();
    const pid = runner.processId();
    expect(isRunning(pid)).toBe(true);
    await runner.dispose();
    expect(isRunning(pid)).toBe(false);
    await expect(runner.exec("1")).rejects.toThrow(/runner was disposed/);
  });

  it("runtime.dispose() disposes the runtime's runners", async () => {
    const own = await NodeRuntime.create();
    const first = (await own.createResidentRunner()) as DiagnosableResidentRunner;
    const second = (await own.createResidentRunner()) as DiagnosableResidentRunner;
    const inFlight = second.exec("await new Promise(() => setInterval(() => {}, 1000))");
    await own.dispose();
    expect(isRunning(first.processId())).toBe(false);
    expect(isRunning(second.processId())).toBe(false);
    expect(await inFlight).toMatchObject({ exitCode: 137, stderr: expect.stringMatching(/runner was disposed/) });
    await expect(first.exec("1")).rejects.toThrow(/runner was disposed/);
  });
});

describe("prepareSnippet", () => {
  it("leaves scripts alone and rewrites top-level await into an async function, keeping lines", () => {
    expect(prepareSnippet("1 + 1")).toEqual({ source: "1 + 1", isAsync: false });
    expect(prepareSnippet("async function f() { await 1 }")).toEqual({ source: "async function f() { await 1 }", isAsync: false });
    const rewritten = prepareSnippet("const a = await f();\nlet [b, { c }] = a;\nb + c");
    expect(rewritten.isAsync).toBe(true);
    expect(rewritten.source.split("\n")).toHaveLength(4);
    expect(rewritten.source).toMatch(/^let a, b, c; \(async \(\) => \{ void \(a = \(?await f\(\)\)?\);/);
    expect(rewritten.source).toContain("return (b + c);");
  });
});
