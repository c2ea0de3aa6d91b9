import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";
import { INLINE_COMPILE_LIMIT, MAX_QUEUED_PER_RUNTIME } from "../host/compile/guest-compiler.js";

const nodeModules = fileURLToPath(new URL("../node_modules", import.meta.url));

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await NodeRuntime.create({ nodeModules });
});
afterAll(async () => {
  await rt.dispose();
});

describe("nodeModules", () => {
  it("imports an ES module package (hono) with static import", async () => {
    const result = await rt.exec(`
      import { Hono } from "hono";
      const app = new Hono();
      app.get("/hello/:name", (c) => c.json({ hello: c.req.param("name") }));
      const response = await app.request("/hello/guest");
      console.log(response.status, JSON.stringify(await response.json()));
    `);
    expect(result).toEqual({ stdout: '200 {"hello":"guest"}\n', stderr: "", exitCode: 0 });
  });

  it("imports CommonJS packages, statically and with import()", async () => {
    const result = await rt.exec(`
      import equal from "fast-deep-equal";
      const { Command } = await import("commander");
      const program = new Command().option("-n, --name <name>");
      program.parse(["node", "x", "--name", "ann"]);
      console.log(equal({ a: [1, 2] }, { a: [1, 2] }), equal({ a: 1 }, { a: 2 }), program.opts().name);
    `);
    expect(result).toEqual({ stdout: "true false ann\n", stderr: "", exitCode: 0 });
  });

  it("fails an unknown package with a clear 'cannot find' error", async () => {
    const result = await rt.exec('import thing from "no-such-package-anywhere";');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/ERR_MODULE_NOT_FOUND.*Cannot find package 'no-such-package-anywhere'/);
  });

  it("without nodeModules, packages cannot be imported", async () => {
    const bare = await NodeRuntime.create();
    try {
      const result = await bare.exec('import { Hono } from "hono";');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/Cannot find package 'hono'/);
    } finally {
      await bare.dispose();
    }
  });

  it("rejects a nodeModules path that is not a directory at create()", async () => {
    await expect(NodeRuntime.create({ nodeModules: "/definitely/not/here" })).rejects.toThrow(
      /"nodeModules": \/definitely\/not\/here is not a directory/,
    );
  });
});

describe("sandbox builtins beyond imports", () => {
  it("process.getBuiltinModule returns the sandbox's fs and child_process", async () => {
    const own = await NodeRuntime.create({ files: { "/workspace/a.txt": "hello vfs" } });
    try {
      const result = await own.exec(`
        const fs = process.getBuiltinModule("node:fs");
        console.log(fs.readFileSync("/workspace/a.txt", "utf8"));
        const { execFile } = process.getBuiltinModule("child_process");
        execFile("node", ["-e", "console.log(7)"], (error, stdout) => console.log(stdout.trim()));
      `);
      expect(result).toEqual({ stdout: "hello vfs\n7\n", stderr: "", exitCode: 0 });
    } finally {
      await own.dispose();
    }
  });
});

// Sources over INLINE_COMPILE_LIMIT are compiled on a worker thread: the same module must come out.
describe("large sources (compiled off the host's event loop)", () => {
  const padding = `// ${"padding ".repeat(INLINE_COMPILE_LIMIT / 8)}\n`;

  it("resolve packages, static and dynamic, like small ones", async () => {
    const code = `import equal from "fast-deep-equal";\n${padding}const { Hono } = await import("hono");\nconsole.log(equal({ a: [1] }, { a: [1] }), typeof Hono);`;
    expect(code.length).toBeGreaterThan(INLINE_COMPILE_LIMIT);
    expect(await rt.exec(code)).toEqual({ stdout: "true function\n", stderr: "", exitCode: 0 });
  });

  it("report a syntax error at its line, and a missing package by name", async () => {
    const broken = await rt.exec(`${padding}const ok = 1;\nlet x = ;\n`);
    expect(broken.exitCode).toBe(1);
    expect(broken.stderr).toMatch(/guest\.js:3\nlet x = ;\n\s+\^\n\nSyntaxError: /);
    const missing = await rt.exec(`import nothing from "no-such-package-here";\n${padding}`);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/Cannot find package 'no-such-package-here'/);
  });

  it("strip TypeScript types", async () => {
    const result = await rt.run(`${padding}const n: number = 41;\ninterface Shape { n: number }\nconst shape: Shape = { n: n + 1 };\n__return(shape.n);`, { language: "ts" });
    expect([result.exitCode, result.value]).toEqual([0, 42]);
  });

  it("bound each runtime's compile queue, and drop or stop compiles whose calls gave up", async () => {
    const huge = `let n = 0;\n${"n++;\n".repeat(400_000)}`;
    const controller = new AbortController();
    const calls = Array.from({ length: MAX_QUEUED_PER_RUNTIME + 4 }, () =>
      rt.exec(huge, { signal: controller.signal }).then(
        () => "ran",
        (error: Error) => error.name,
      ),
    );
    // Two are compiling at most; the rest wait, and past the bound calls are refused at once.
    const refused = await Promise.race([calls.at(-1)!, new Promise((resolve) => setTimeout(() => resolve("still waiting"), 5_000))]);
    expect(refused).toBe("CompilerBusyError");
    controller.abort(new Error("giving up"));
    const outcomes = await Promise.all(calls);
    expect(outcomes.filter((outcome) => outcome === "CompilerBusyError").length).toBeGreaterThanOrEqual(1);
    expect(outcomes.every((outcome) => outcome === "CompilerBusyError" || outcome === "Error")).toBe(true);
    // The threads stopped mid-parse were replaced: large sources compile again.
    const after = await rt.exec(`${padding}console.log("compiled again")`);
    expect(after.stdout).toBe("compiled again\n");
  });

  it("end a spawned guest killed while it is still compiling", async () => {
    const guest = await rt.spawn(`console.log("started");\n${"0;\n".repeat(400_000)}`);
    guest.kill("SIGTERM");
    expect(await guest.wait()).toBe(143);
  });

  it("count compiling against the timeout, and honour an abort while compiling", async () => {
    const huge = `let n = 0;\n${"n++;\n".repeat(400_000)}`;
    const timedOut = await rt.exec(huge, { timeout: 50 });
    expect([timedOut.exitCode, timedOut.stderr]).toEqual([137, expect.stringMatching(/time limit of 50 ms exceeded/)]);
    const controller = new AbortController();
    const aborted = rt.exec(huge, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop compiling")), 20);
    await expect(aborted).rejects.toThrow("stop compiling");
  });
});

describe("packages the guest cannot load", () => {
  let dir: string;
  let own: NodeRuntime;
  beforeAll(async () => {
    const { mkdtempSync, mkdirSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    dir = mkdtempSync(join(tmpdir(), "secure-exec-packages-"));
    const make = (name: string, source: string) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "package.json"), JSON.stringify({ name, type: "module", main: "index.js" }));
      writeFileSync(join(dir, name, "index.js"), source);
    };
    make("broken-pkg", "export const x = ;\n");
    make("env-at-load", "export const mode = process.env.MODE ?? 'unset';\n");
    own = await NodeRuntime.create({ nodeModules: dir });
  });
  afterAll(async () => {
    await own.dispose();
    const { rmSync } = await import("node:fs");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a missing optional package rejects the guest's import(), which can catch it", async () => {
    const result = await own.exec('let found = true; try { await import("optional-pkg") } catch (e) { found = false; console.log(e.code) } console.log(found);');
    expect(result).toEqual({ stdout: "ERR_MODULE_NOT_FOUND\nfalse\n", stderr: "", exitCode: 0 });
  });

  it("a package that does not parse fails the guest's import() with a SyntaxError, and a static import with exit 1", async () => {
    const caught = await own.exec('try { await import("broken-pkg") } catch (e) { console.log(e.name, /broken-pkg/.test(e.message)) }');
    expect(caught).toEqual({ stdout: "SyntaxError true\n", stderr: "", exitCode: 0 });
    const statically = await own.exec('import { x } from "broken-pkg"; console.log(x);');
    expect(statically.exitCode).toBe(1);
    expect(statically.stderr).toMatch(/^SyntaxError: .*broken-pkg/);
  });

  it("in a source large enough for the compiler threads, a package that does not parse still fails only the import()", async () => {
    const padding = `// ${"x".repeat(100)}\n`.repeat(2_000);
    const caught = await own.exec(`${padding}try { await import("broken-pkg") } catch (e) { console.log(e.name) } try { await import("optional-pkg") } catch (e) { console.log(e.code) }`);
    expect(caught).toEqual({ stdout: "SyntaxError\nERR_MODULE_NOT_FOUND\n", stderr: "", exitCode: 0 });
  });

  it("package code that reads process.env while loading sees the run's env", async () => {
    const result = await own.exec('import { mode } from "env-at-load"; console.log(mode);', { env: { MODE: "production" } });
    expect(result).toEqual({ stdout: "production\n", stderr: "", exitCode: 0 });
  });
});
