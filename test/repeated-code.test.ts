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
    const outputs: string[] = [];
    for (let index = 0; index < 12; index += 1) {
      outputs.push((await runtime.exec(code)).stdout);
      // Pauses give the reserve time to load even on a loaded machine (no timing is asserted).
      if (index % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
    }
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
    const dir = mkdtempSync(join(tmpdir(), "secure-exec-preload-"));
    writePackage(dir, "captures-globals", "export const capturedFetch = globalThis.fetch;\nexport const capturedText = Response.prototype.text;\n");
    const code = 'import { capturedFetch, capturedText } from "captures-globals";\nconsole.log(capturedFetch === fetch, capturedText === Response.prototype.text);\n';
    writeFileSync(join(dir, "main.mjs"), code);
    const node = spawnSync(process.execPath, [join(dir, "main.mjs")], { encoding: "utf8" });
    const sandbox = await NodeRuntime.create({ nodeModules: join(dir, "node_modules") });
    try {
      const results = [];
      for (let index = 0; index < 8; index += 1) {
        results.push(await sandbox.exec(code));
        if (index % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(results).toEqual(Array.from({ length: 8 }, () => ({ stdout: node.stdout, stderr: node.stderr, exitCode: node.status })));
      expect(sandbox.stats().preloadedRuns).toBeGreaterThanOrEqual(1);
    } finally {
      await sandbox.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a package that reads the run's env, argv or files as it loads sees the run's, never the preload's", async () => {
    // Read before the run's input exists, these would be the preload's (empty env, no files):
    // such an isolate declines its start and the run goes to a fresh one.
    const dir = mkdtempSync(join(tmpdir(), "secure-exec-preload-"));
    writePackage(dir, "reads-at-load", "export const env = process.env.FOO;\nexport const args = process.argv.length;\n");
    const code = 'import { env, args } from "reads-at-load";\nconsole.log(env, args);\n';
    writeFileSync(join(dir, "main.mjs"), code);
    const node = spawnSync(process.execPath, [join(dir, "main.mjs")], { encoding: "utf8", env: { ...process.env, FOO: "bar" } });
    writePackage(dir, "reads-file", 'import fs from "node:fs";\nexport const seen = fs.existsSync("/data/in.txt");\n');
    const fsCode = 'import { seen } from "reads-file";\nimport fs from "node:fs";\nconsole.log(seen, fs.readFileSync("/data/in.txt", "utf8"));\n';
    const sandbox = await NodeRuntime.create({ nodeModules: join(dir, "node_modules") });
    try {
      await sandbox.writeFile("/data/in.txt", "hello");
      const outputs: string[] = [];
      const fileOutputs: string[] = [];
      for (let index = 0; index < 6; index += 1) {
        outputs.push((await sandbox.exec(code, { env: { FOO: "bar" } })).stdout);
        fileOutputs.push((await sandbox.exec(fsCode)).stdout);
        if (index % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(node.stdout).toBe("bar 2\n");
      expect(outputs).toEqual(Array.from({ length: 6 }, () => node.stdout));
      expect(fileOutputs).toEqual(Array.from({ length: 6 }, () => "true hello\n"));
    } finally {
      await sandbox.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("what a package prints, reads from stdin or exits with as it loads is the run's, in fresh and repeated runs (Node's answer)", async () => {
    // workerd evaluates imported modules outside the run's request: their output waits for
    // the import to settle. A preload's packages have no run yet: printing or reading stdin
    // then declines its start, and a fresh isolate serves the run.
    const dir = mkdtempSync(join(tmpdir(), "secure-exec-preload-"));
    writePackage(dir, "prints-at-load", 'console.log("loaded"); process.stdout.write("out\\n"); console.error("err");\nexport const x = 1;\n');
    writePackage(
      dir,
      "reads-stdin-at-load",
      'export const input = await new Promise((resolve) => { let text = ""; process.stdin.setEncoding("utf8"); process.stdin.on("data", (chunk) => (text += chunk)); process.stdin.on("end", () => resolve(text)); });\n',
    );
    const staticCode = 'import { x } from "prints-at-load";\nimport { input } from "reads-stdin-at-load";\nconsole.log(x, input);\n';
    const dynamicCode = 'const { x } = await import("prints-at-load");\nconsole.log(x);\n';
    writePackage(dir, "exits-at-load", 'console.log("bye");\nprocess.exit(3);\n');
    const exitCode = 'console.log("first");\nawait import("exits-at-load");\nconsole.log("never");\n';
    writeFileSync(join(dir, "static.mjs"), staticCode);
    writeFileSync(join(dir, "dynamic.mjs"), dynamicCode);
    writeFileSync(join(dir, "exit.mjs"), exitCode);
    const nodeStatic = spawnSync(process.execPath, [join(dir, "static.mjs")], { encoding: "utf8", input: "hi" });
    const nodeDynamic = spawnSync(process.execPath, [join(dir, "dynamic.mjs")], { encoding: "utf8" });
    const nodeExit = spawnSync(process.execPath, [join(dir, "exit.mjs")], { encoding: "utf8" });
    const sandbox = await NodeRuntime.create({ nodeModules: join(dir, "node_modules") });
    try {
      const staticRuns: ExecResult[] = [];
      const dynamicRuns: ExecResult[] = [];
      const exitRuns: ExecResult[] = [];
      for (let index = 0; index < 6; index += 1) {
        staticRuns.push(await sandbox.exec(staticCode, { stdin: "hi", timeout: 10_000 }));
        dynamicRuns.push(await sandbox.exec(dynamicCode, { timeout: 10_000 }));
        exitRuns.push(await sandbox.exec(exitCode, { timeout: 10_000 }));
        if (index % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(nodeStatic.stdout).toBe("loaded\nout\n1 hi\n");
      expect(staticRuns).toEqual(Array.from({ length: 6 }, () => ({ stdout: nodeStatic.stdout, stderr: nodeStatic.stderr, exitCode: nodeStatic.status })));
      expect(dynamicRuns).toEqual(Array.from({ length: 6 }, () => ({ stdout: nodeDynamic.stdout, stderr: nodeDynamic.stderr, exitCode: nodeDynamic.status })));
      expect(nodeExit.status).toBe(3);
      expect(exitRuns).toEqual(Array.from({ length: 6 }, () => ({ stdout: nodeExit.stdout, stderr: nodeExit.stderr, exitCode: nodeExit.status })));
    } finally {
      await sandbox.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a module a package imports itself later prints, and exits, as in Node", async () => {
    // The host wraps a package's own `import()` in the prelude's tracker: the module it loads
    // is evaluated outside the run's request too.
    const dir = mkdtempSync(join(tmpdir(), "secure-exec-preload-"));
    writePackage(dir, "loads-later", 'export async function load(name) { const m = name === "exit" ? await import("exits-later") : await import("prints-later"); return m.y; }\n');
    writePackage(dir, "prints-later", 'console.log("prints-later top");\nglobalThis.hook?.("from prints-later");\nexport const y = 1;\n');
    writePackage(dir, "exits-later", 'console.log("exits-later top");\nprocess.exit(2);\nexport const y = 2;\n');
    const codes = [
      'import { load } from "loads-later";\nglobalThis.hook = (text) => console.log("hook", text);\nconsole.log("m0");\nconsole.log("y", await load("print"));\n',
      'import { load } from "loads-later";\nconsole.log("m0");\nawait load("exit");\nconsole.log("never");\n',
    ];
    const sandbox = await NodeRuntime.create({ nodeModules: join(dir, "node_modules") });
    try {
      for (const [index, code] of codes.entries()) {
        writeFileSync(join(dir, `later-${index}.mjs`), code);
        const node = spawnSync(process.execPath, [join(dir, `later-${index}.mjs`)], { encoding: "utf8" });
        const results: ExecResult[] = [];
        for (let run = 0; run < 4; run += 1) {
          results.push(await sandbox.exec(code, { timeout: 10_000 }));
          if (run % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
        }
        expect(results).toEqual(Array.from({ length: 4 }, () => ({ stdout: node.stdout, stderr: node.stderr, exitCode: node.status })));
      }
    } finally {
      await sandbox.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a package that fails as it loads fails every run the same way, preloaded or not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "secure-exec-preload-"));
    writePackage(dir, "throws-at-load", 'export const x = 1;\nthrow new Error("boom at load");\n');
    const code = 'import { x } from "throws-at-load";\nconsole.log(x);\n';
    const sandbox = await NodeRuntime.create({ nodeModules: join(dir, "node_modules") });
    try {
      const results: ExecResult[] = [];
      for (let index = 0; index < 6; index += 1) {
        results.push(await sandbox.exec(code, { timeout: 10_000 }));
        if (index % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(results[0]!.exitCode).toBe(1);
      expect(results[0]!.stderr).toContain("boom at load");
      expect(results).toEqual(Array.from({ length: 6 }, () => results[0]));
    } finally {
      await sandbox.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a package whose top-level await never settles leaves its importer waiting, as in Node (exit 13, or 0 if nothing waits)", async () => {
    // workerd rejects such an import; a preload of it would be left half-evaluated (a run
    // started there would see a binding read before its initialization), so it declines.
    const dir = mkdtempSync(join(tmpdir(), "secure-exec-preload-"));
    writePackage(dir, "never-loads", "await new Promise(() => {});\nexport const x = 1;\n");
    const codes = [
      'import { x } from "never-loads";\nconsole.log(x);\n',
      'console.log("a");\nawait import("never-loads");\nconsole.log("b");\n',
      'import("never-loads").then(() => console.log("then"));\nconsole.log("main done");\n',
    ];
    const sandbox = await NodeRuntime.create({ nodeModules: join(dir, "node_modules") });
    try {
      for (const [index, code] of codes.entries()) {
        writeFileSync(join(dir, `never-${index}.mjs`), code);
        const node = spawnSync(process.execPath, [join(dir, `never-${index}.mjs`)], { encoding: "utf8" });
        for (let run = 0; run < 4; run += 1) {
          const result = await sandbox.exec(code, { timeout: 10_000 });
          expect({ stdout: result.stdout, exitCode: result.exitCode }).toEqual({ stdout: node.stdout, exitCode: node.status });
          // Node 22 warns on stderr as the sandbox does; Node 20 exits 13 silently.
          expect(result.stderr).toBe(node.status === 13 ? "Warning: Detected unsettled top-level await\n" : node.stderr);
          if (run % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    } finally {
      await sandbox.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
