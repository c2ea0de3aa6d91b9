// Repeated code: back-to-back runs of the same source find an isolate of it already loaded,
// and each run still gets an isolate that has never run anything.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

let runtime: NodeRuntime;
type ExecResult = Awaited<ReturnType<NodeRuntime["exec"]>>;

/** An ES module package `name` under `dir/node_modules` whose entry is `source`. */
function writePackage(dir: string, name: string, source: string): void {
  const pkg = join(dir, "node_modules", name);
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name, type: "module", exports: "./index.js" }));
  writeFileSync(join(pkg, "index.js"), source);
}

beforeAll(async () => {
  runtime = await NodeRuntime.create();
});

afterAll(async () => {
  await runtime?.dispose();
});

describe("repeated code", () => {
  it("back-to-back runs of the same code are served by preloaded isolates, each fresh", async () => {
    // Module-level state and globals would show a reused isolate: every run must see 1.
    const code = `
      globalThis.seen = (globalThis.seen ?? 0) + 1;
      Object.prototype.polluted ??= 0;
      Object.prototype.polluted += 1;
      console.log(globalThis.seen, ({}).polluted);
    `;
    const outputs = await repeatedly(12, async () => (await runtime.exec(code)).stdout);
    expect(outputs).toEqual(Array.from({ length: 12 }, () => "1 1\n"));
    // The first two runs make the code hot; later ones take isolates loaded ahead of them.
    expect(runtime.stats().preloadedRuns).toBeGreaterThanOrEqual(1);
  });

  it("runs of the same code at once each get an isolate of their own", async () => {
    const code = `globalThis.count = (globalThis.count ?? 0) + 1; await new Promise((r) => setTimeout(r, 20)); console.log(globalThis.count);`;
    for (let index = 0; index < 3; index += 1) await runtime.exec(code);
    const results = await Promise.all(Array.from({ length: 6 }, () => runtime.exec(code)));
    expect(results.map((result) => result.stdout)).toEqual(Array.from({ length: 6 }, () => "1\n"));
  });

  it("a package loaded ahead of its run sees the globals a fresh run's packages see (Node's answer)", async () => {
    // A preloaded isolate evaluates the code's imports before its input arrives: what they
    // capture of the globals must be what they capture in a fresh isolate, and in Node.
    const packages = { "captures-globals": "export const capturedFetch = globalThis.fetch;\nexport const capturedText = Response.prototype.text;\n" };
    await withPackages(packages, async (sandbox, dir) => {
      const code = 'import { capturedFetch, capturedText } from "captures-globals";\nconsole.log(capturedFetch === fetch, capturedText === Response.prototype.text);\n';
      const expected = nodeRun(dir, code);
      expect(await repeatedly(8, () => sandbox.exec(code))).toEqual(Array.from({ length: 8 }, () => expected));
      expect(sandbox.stats().preloadedRuns).toBeGreaterThanOrEqual(1);
    });
  });

  it("a package that reads the run's env, argv or files as it loads sees the run's, never the preload's", async () => {
    // Read before the run's input exists, these would be the preload's (empty env, no files):
    // such an isolate declines its start and the run goes to a fresh one.
    const packages = {
      "reads-at-load": "export const env = process.env.FOO;\nexport const args = process.argv.length;\n",
      "reads-file": 'import fs from "node:fs";\nexport const seen = fs.existsSync("/data/in.txt");\n',
    };
    await withPackages(packages, async (sandbox, dir) => {
      const code = 'import { env, args } from "reads-at-load";\nconsole.log(env, args);\n';
      const expected = nodeRun(dir, code, { env: { ...process.env, FOO: "bar" } });
      const fsCode = 'import { seen } from "reads-file";\nimport fs from "node:fs";\nconsole.log(seen, fs.readFileSync("/data/in.txt", "utf8"));\n';
      await sandbox.writeFile("/data/in.txt", "hello");
      const outputs = await repeatedly(6, async () => [(await sandbox.exec(code, { env: { FOO: "bar" } })).stdout, (await sandbox.exec(fsCode)).stdout]);
      expect(expected.stdout).toBe("bar 2\n");
      expect(outputs).toEqual(Array.from({ length: 6 }, () => [expected.stdout, "true hello\n"]));
    });
  });

  it("what a package prints, reads from stdin or exits with as it loads is the run's, in fresh and repeated runs (Node's answer)", async () => {
    // workerd evaluates imported modules outside the run's request: their output waits for
    // the import to settle. A preload's packages have no run yet: printing or reading stdin
    // then declines its start, and a fresh isolate serves the run.
    const packages = {
      "prints-at-load": 'console.log("loaded"); process.stdout.write("out\\n"); console.error("err");\nexport const x = 1;\n',
      "reads-stdin-at-load":
        'export const input = await new Promise((resolve) => { let text = ""; process.stdin.setEncoding("utf8"); process.stdin.on("data", (chunk) => (text += chunk)); process.stdin.on("end", () => resolve(text)); });\n',
      "exits-at-load": 'console.log("bye");\nprocess.exit(3);\n',
    };
    await withPackages(packages, async (sandbox, dir) => {
      const staticCode = 'import { x } from "prints-at-load";\nimport { input } from "reads-stdin-at-load";\nconsole.log(x, input);\n';
      const dynamicCode = 'const { x } = await import("prints-at-load");\nconsole.log(x);\n';
      const exitCode = 'console.log("first");\nawait import("exits-at-load");\nconsole.log("never");\n';
      const expected = [nodeRun(dir, staticCode, { input: "hi" }), nodeRun(dir, dynamicCode), nodeRun(dir, exitCode)];
      const runs = await repeatedly(6, async () => [
        await sandbox.exec(staticCode, { stdin: "hi", timeout: 10_000 }),
        await sandbox.exec(dynamicCode, { timeout: 10_000 }),
        await sandbox.exec(exitCode, { timeout: 10_000 }),
      ]);
      expect(expected[0]!.stdout).toBe("loaded\nout\n1 hi\n");
      expect(expected[2]!.exitCode).toBe(3);
      expect(runs).toEqual(Array.from({ length: 6 }, () => expected));
    });
  });

  it("a module a package imports itself later prints, and exits, as in Node", async () => {
    // The host wraps a package's own `import()` in the prelude's tracker: the module it loads
    // is evaluated outside the run's request too.
    const packages = {
      "loads-later": 'export async function load(name) { const m = name === "exit" ? await import("exits-later") : await import("prints-later"); return m.y; }\n',
      "prints-later": 'console.log("prints-later top");\nglobalThis.hook?.("from prints-later");\nexport const y = 1;\n',
      "exits-later": 'console.log("exits-later top");\nprocess.exit(2);\nexport const y = 2;\n',
    };
    await withPackages(packages, async (sandbox, dir) => {
      for (const code of [
        'import { load } from "loads-later";\nglobalThis.hook = (text) => console.log("hook", text);\nconsole.log("m0");\nconsole.log("y", await load("print"));\n',
        'import { load } from "loads-later";\nconsole.log("m0");\nawait load("exit");\nconsole.log("never");\n',
      ]) {
        const expected = nodeRun(dir, code);
        expect(await repeatedly(4, () => sandbox.exec(code, { timeout: 10_000 }))).toEqual(Array.from({ length: 4 }, () => expected));
      }
    });
  });

  it("a package that fails as it loads fails every run the same way, preloaded or not", async () => {
    await withPackages({ "throws-at-load": 'export const x = 1;\nthrow new Error("boom at load");\n' }, async (sandbox) => {
      const results = await repeatedly(6, () => sandbox.exec('import { x } from "throws-at-load";\nconsole.log(x);\n', { timeout: 10_000 }));
      expect(results[0]!.exitCode).toBe(1);
      expect(results[0]!.stderr).toContain("boom at load");
      expect(results).toEqual(Array.from({ length: 6 }, () => results[0]));
    });
  });

  it("a package whose top-level await never settles leaves its importer waiting, as in Node (exit 13, or 0 if nothing waits)", async () => {
    // workerd rejects such an import; a preload of it would be left half-evaluated (a run
    // started there would see a binding read before its initialization), so it declines.
    await withPackages({ "never-loads": "await new Promise(() => {});\nexport const x = 1;\n" }, async (sandbox, dir) => {
      for (const code of [
        'import { x } from "never-loads";\nconsole.log(x);\n',
        'console.log("a");\nawait import("never-loads");\nconsole.log("b");\n',
        'import("never-loads").then(() => console.log("then"));\nconsole.log("main done");\n',
      ]) {
        const expected = nodeRun(dir, code);
        // Node 22 warns on stderr as the sandbox does; Node 20 exits 13 silently.
        if (expected.exitCode === 13) expected.stderr = "Warning: Detected unsettled top-level await\n";
        expect(await repeatedly(4, () => sandbox.exec(code, { timeout: 10_000 }))).toEqual(Array.from({ length: 4 }, () => expected));
      }
    });
  });
});

/** Runs `body` with a runtime whose `nodeModules` holds `packages` (name → entry source), in a temporary folder. */
async function withPackages(packages: Record<string, string>, body: (sandbox: NodeRuntime, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "secure-exec-preload-"));
  for (const [name, source] of Object.entries(packages)) writePackage(dir, name, source);
  const sandbox = await NodeRuntime.create({ nodeModules: join(dir, "node_modules") });
  try {
    await body(sandbox, dir);
  } finally {
    await sandbox.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

let nodeRuns = 0;

/** What the host's `node` makes of `code` as a module beside `dir/node_modules`. */
function nodeRun(dir: string, code: string, options: { input?: string; env?: NodeJS.ProcessEnv } = {}): ExecResult {
  const file = join(dir, `main-${(nodeRuns += 1)}.mjs`);
  writeFileSync(file, code);
  const result = spawnSync(process.execPath, [file], { encoding: "utf8", ...options });
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.status ?? -1 };
}

/** `times` runs one after another, pausing every two so the reserve can load even on a busy machine (no timing is asserted). */
async function repeatedly<T>(times: number, run: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let index = 0; index < times; index += 1) {
    results.push(await run());
    if (index % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return results;
}
