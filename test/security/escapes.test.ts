// Attempts to climb out of the guest's world: constructor chains to a code generator, host
// stack details through Error.prepareStackTrace at the tool boundary, hidden bindings behind
// `cloudflare:workers`, and guest code slipping out of the function the host wraps it in.
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime, ToolDefinitions } from "../../runtime/index.js";
import { HOST_DETAIL, createRuntime, expectServing, workerModulesPackage } from "./helpers.js";

class HostPathError extends Error {
  constructor() {
    super("host failure");
    this.name = "HostPathError";
  }
}

const tools: ToolDefinitions = {
  boom: {
    description: "Throws an Error whose stack is full of host paths",
    inputSchema: {},
    handler: () => {
      throw new Error(`kaboom`);
    },
  },
  boomCause: {
    description: "Throws an Error with a cause and extra properties pointing at host files",
    inputSchema: {},
    handler: () => {
      const error = new HostPathError();
      Object.assign(error, { path: import.meta.url, cwd: process.cwd() });
      (error as Error & { cause?: unknown }).cause = new Error(`inner at ${import.meta.url}`);
      throw error;
    },
  },
  throwsObject: {
    description: "Throws a non-Error carrying host details",
    inputSchema: {},
    handler: () => {
      throw { stack: new Error("x").stack, message: "object thrown", file: import.meta.url };
    },
  },
  rejectsLater: {
    description: "Rejects asynchronously from deep inside host code",
    inputSchema: {},
    handler: async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      JSON.parse("{ not json");
    },
  },
  strict: {
    description: "Validates its input",
    inputSchema: { type: "object", properties: { n: { type: "integer" } }, required: ["n"], additionalProperties: false },
    handler: (input: { n: number }) => input.n,
  },
  slow: {
    description: "Times out",
    inputSchema: {},
    timeoutMs: 50,
    handler: () => new Promise((resolve) => setTimeout(resolve, 2_000)),
  },
};

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await createRuntime({ tools, env: { RUNTIME_ONLY: "yes" }, nodeModules: workerModulesPackage() });
});
afterAll(async () => {
  await rt?.dispose();
});

describe("constructor chains and code generation", () => {
  const attempts: Record<string, string> = {
    "this.constructor.constructor": 'this.constructor.constructor("return process")()',
    "({}).constructor.constructor": '({}).constructor.constructor("return process")()',
    "Function('return this')": 'Function("return this")()',
    "new Function": 'new Function("return globalThis.process")()',
    eval: 'eval("globalThis.process")',
    "indirect eval": '(0, eval)("globalThis.process")',
    "async function constructor": '(async function () {}).constructor("return process")()',
    "generator function constructor": '(function* () {}).constructor("yield process")().next().value',
    "async generator constructor": '(async function* () {}).constructor("yield 1")()',
    "callHostTool.constructor": 'callHostTool.constructor("return process")()',
    "__return.constructor": '__return.constructor("return process")()',
    "console.log.constructor": 'console.log.constructor("return process")()',
    "Error.constructor": 'Error.constructor("return process")()',
    "string setTimeout": 'setTimeout("globalThis.pwned = 1", 0)',
    // A computed specifier, so the host's import resolution does not refuse the run up front.
    "data: import": '(await import(["data:text/javascript", "export default globalThis.process"].join(","))).default',
    "node:vm": '(await import("node:vm")).runInNewContext("this.constructor.constructor(\\"return process\\")()")',
    "node:module createRequire": '(await import("node:module")).createRequire("/")("child_process")',
  };

  it("never yields a host object: each attempt throws (EvalError where code is generated) or finds nothing of the host", async () => {
    const result = await rt.run(`
      const report = {};
      ${Object.entries(attempts)
        .map(
          ([label, expression]) => `
      try {
        const value = await (async () => ${expression})();
        report[${JSON.stringify(label)}] = {
          threw: false,
          kind: typeof value,
          mainModule: typeof value?.mainModule,
          require: typeof value?.require,
          hostEnvPath: typeof value?.env?.PATH,
        };
      } catch (error) {
        report[${JSON.stringify(label)}] = { threw: true, name: error?.name, message: String(error?.message).slice(0, 200) };
      }`,
        )
        .join("\n")}
      report.globals = { require: typeof require, module: typeof module, mainModule: typeof process.mainModule, pwned: typeof globalThis.pwned };
      __return(report);
    `);
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const report = result.value as Record<string, { threw: boolean; name?: string; mainModule?: string; require?: string; hostEnvPath?: string }>;
    for (const label of [
      "this.constructor.constructor",
      "({}).constructor.constructor",
      "Function('return this')",
      "new Function",
      "eval",
      "indirect eval",
      "async function constructor",
      "generator function constructor",
      "async generator constructor",
      "callHostTool.constructor",
      "__return.constructor",
      "console.log.constructor",
      "Error.constructor",
    ]) {
      const entry = report[label]!;
      expect(entry.threw, label).toBe(true);
      // Module code has no `this`; the rest reach a code generator, which workerd refuses.
      expect(entry.name, label).toBe(label === "this.constructor.constructor" ? "TypeError" : "EvalError");
    }
    for (const [label, entry] of Object.entries(report)) {
      if (label === "globals" || entry.threw) continue;
      expect(entry.mainModule, label).toBe("undefined");
      expect(entry.require, label).toBe("undefined");
      expect(entry.hostEnvPath, label).toBe("undefined");
    }
    expect(report.globals).toEqual({ require: "undefined", module: "undefined", mainModule: "undefined", pwned: "undefined" });
  });

  it("child_process reached through getBuiltinModule or createRequire (around the import rewrite) runs no host program", async () => {
    const result = await rt.run(`
      import { createRequire } from "node:module";
      const viaBuiltin = process.getBuiltinModule("node:child_process");
      const viaRequire = createRequire("/")("child_process");
      const outcomes = [];
      for (const cp of [viaBuiltin, viaRequire]) {
        for (const attempt of [
          () => cp.execSync("id"),
          () => cp.spawnSync("/bin/sh", ["-c", "id"]),
          () => cp.execFileSync("/usr/bin/id"),
          () => new Promise((resolve, reject) => { const child = cp.exec("id", (error, stdout) => (error ? reject(error) : resolve(stdout))); child?.on?.("error", reject); }),
        ]) {
          try { outcomes.push("ran: " + String(await attempt())); } catch (error) { outcomes.push("refused: " + error.message); }
        }
      }
      __return(outcomes);
    `);
    expect(result.exitCode).toBe(0);
    for (const outcome of result.value as string[]) expect(outcome).toMatch(/^refused: /);
  });

  it("the guest's process is workerd's shim: no host pid, binding, dlopen, kill or host environment", async () => {
    const result = await rt.run(`
      const probe = (f) => { try { const v = f(); return v === undefined ? "undefined" : JSON.parse(JSON.stringify(v)); } catch (e) { return "threw " + e.message; } };
      __return({
        pid: process.pid,
        binding: probe(() => process.binding("fs")),
        linked: probe(() => process._linkedBinding("fs")),
        dlopen: probe(() => process.dlopen({}, "/lib/x86_64-linux-gnu/libc.so.6")),
        kill: probe(() => process.kill(1, "SIGKILL")),
        env: Object.keys(process.env).sort(),
        fsRoot: probe(() => process.getBuiltinModule("node:fs").readdirSync("/")),
        passwd: probe(() => process.getBuiltinModule("node:fs").readFileSync("/etc/passwd", "utf8")),
        environ: probe(() => process.getBuiltinModule("node:fs").readFileSync("/proc/self/environ", "utf8")),
      });
    `);
    expect(result.exitCode).toBe(0);
    const value = result.value as Record<string, unknown>;
    expect(value.pid).not.toBe(process.pid);
    for (const key of ["binding", "linked", "dlopen", "kill", "passwd", "environ"]) expect(String(value[key]), key).toMatch(/^threw /);
    expect(value.env).toEqual(["RUNTIME_ONLY"]);
    expect(value.fsRoot).not.toEqual(expect.arrayContaining(["etc"]));
    expect(JSON.stringify(value)).not.toMatch(HOST_DETAIL);
  });
});

describe("Error.prepareStackTrace across the tool boundary", () => {
  const PROBE = `
    const frames = [];
    Error.prepareStackTrace = (error, callSites) => {
      for (const site of callSites) {
        frames.push([
          site.getFileName?.(), site.getScriptNameOrSourceURL?.(), site.getFunctionName?.(), site.getTypeName?.(),
          site.getMethodName?.(), site.getEvalOrigin?.(), typeof site.getThis?.(), typeof site.getFunction?.(), String(site),
        ].map(String).join(" | "));
      }
      return "custom:" + callSites.length;
    };
    Error.stackTraceLimit = Infinity;
    const seen = [];
    const dump = (error) => {
      if (error === null || typeof error !== "object") return String(error);
      const own = {};
      for (const key of Object.getOwnPropertyNames(error)) { try { own[key] = String(error[key]); } catch (e) { own[key] = "getter threw"; } }
      return JSON.stringify({ own, stack: String(error.stack), cause: error.cause === undefined ? undefined : dump(error.cause), proto: Object.getPrototypeOf(error)?.constructor?.name });
    };
    for (const [name, input] of TOOL_CALLS) {
      try { await callHostTool(name, input); seen.push(name + " resolved"); }
      catch (error) { seen.push(name + " " + dump(error)); Error.captureStackTrace?.(error); seen.push(name + " recaptured " + dump(error)); }
    }
    __return({ seen, frames });
  `;
  const calls = [
    ["boom", {}],
    ["boomCause", {}],
    ["throwsObject", {}],
    ["rejectsLater", {}],
    ["strict", { n: "not a number", extra: true }],
    ["slow", {}],
    ["no-such-tool", {}],
  ];

  it("errors a guest gets from tools carry no host paths, packages or TypeScript sources", async () => {
    const result = await rt.run(PROBE.replace("TOOL_CALLS", JSON.stringify(calls)));
    expect(result.exitCode).toBe(0);
    const value = result.value as { seen: string[]; frames: string[] };
    expect(value.seen).toHaveLength(calls.length * 2);
    for (const line of value.seen) {
      expect(line).not.toMatch(/ resolved$/);
      expect(line, line).not.toMatch(HOST_DETAIL);
    }
    expect(value.frames.length).toBeGreaterThan(0);
    for (const frame of value.frames) expect(frame, frame).not.toMatch(HOST_DETAIL);
    // Codes say why, as docs/tools.md promises.
    expect(value.seen.join("\n")).toMatch(/ERR_TOOL_FAILED/);
    expect(value.seen.join("\n")).toMatch(/ERR_TOOL_INPUT/);
    expect(value.seen.join("\n")).toMatch(/ETIMEDOUT/);
    expect(value.seen.join("\n")).toMatch(/ERR_TOOL_NOT_FOUND/);
  });

  it("an uncaught tool error ends the run with exit 1 and a stack free of host details", async () => {
    const result = await rt.exec('Error.stackTraceLimit = Infinity; await callHostTool("boomCause", {});');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/boomCause/);
    expect(result.stderr).not.toMatch(HOST_DETAIL);
  });
});

describe("bindings and compatibility flags", () => {
  // Guests cannot import cloudflare:workers (test/security/after-run.test.ts); a package can.
  it("cloudflare:workers exposes no Worker Loader and no binding but HOST; flags cannot be changed", async () => {
    const result = await rt.run(`
      import * as workers from "worker-modules";
      const flags = globalThis.Cloudflare?.compatibilityFlags ?? {};
      const before = JSON.stringify(flags);
      try { flags.nodejs_compat = false; flags.experimental = true; flags.unsafe_eval = true; } catch {}
      let evalAfter;
      try { eval("1"); evalAfter = "eval works"; } catch (e) { evalAfter = e.name; }
      __return({
        envKeys: Object.keys(workers.env ?? {}),
        loader: typeof workers.env?.LOADER,
        exportsKeys: Object.keys(workers.exports ?? {}),
        flagsUnchanged: before === JSON.stringify(flags),
        nodejsCompat: flags.nodejs_compat,
        experimental: flags.experimental ?? false,
        evalAfter,
      });
    `);
    expect(result.exitCode).toBe(0);
    const value = result.value as Record<string, unknown>;
    expect(value.loader).toBe("undefined");
    expect((value.envKeys as string[]).filter((key) => key !== "HOST")).toEqual([]);
    expect(value.flagsUnchanged).toBe(true);
    expect(value.nodejsCompat).toBe(true);
    expect(value.experimental).toBe(false);
    expect(value.evalAfter).toBe("EvalError");
  });

  it("raw HOST requests without the run's token reach no tool and no other run", async () => {
    const result = await rt.run(`
      import { env } from "worker-modules";
      const keep = setInterval(() => {}, 1000);
      const replies = [];
      for (const body of [
        JSON.stringify({ token: "guessed-token", kind: "tool", name: "boom", input: {} }),
        JSON.stringify({ kind: "tool", name: "boom", input: {} }),
        JSON.stringify({ token: { "$ne": null }, kind: "tool", name: "boom" }),
        "not json",
      ]) {
        const response = await env.HOST.fetch("http://host/call", { method: "POST", body });
        replies.push(await response.text());
      }
      clearInterval(keep);
      __return(replies);
    `);
    expect(result.exitCode).toBe(0);
    for (const reply of result.value as string[]) {
      expect(reply).toMatch(/"ok":false/);
      expect(reply).not.toMatch(/kaboom|HOST_DETAIL/);
      expect(reply).not.toMatch(HOST_DETAIL);
    }
  });
});

describe("guest code must stay inside the function the host wraps it in", () => {
  // The host hoists static imports onto line 1 (newlines collapsed) and wraps the rest in
  // `export default async function …() {`. A line comment inside a multi-line import then
  // comments out that header, and the guest's code lands at module scope, where workerd runs
  // it at load time (outside the run, with `allow_eval_during_startup`).
  const SMUGGLER = [
    "import os from // the rest of line 1 is now a comment",
    '"node:os"',
    '"node:os"',
    "/ ` /",
    "; export default async function smuggled() { __return(globalThis.__smuggled); }",
    // Mirrors the named export of the (commented-out) wrapper line that the prelude imports.
    "export const __secureExecExports = {};",
    "const probe = (f) => { try { return f(); } catch (e) { return e.name; } };",
    "globalThis.__smuggled = {",
    '  eval: probe(() => eval("6 * 7")),',
    '  fn: probe(() => Function("return 1 + 1")()),',
    '  hostProcess: probe(() => typeof Function("return globalThis.process")()?.mainModule),',
    '  require: probe(() => Function("return typeof require")()),',
    "  env: probe(() => Object.keys(globalThis.process?.env ?? {}).join()),",
    "};",
    "{ // `",
  ].join("\n");

  it("even code smuggled to module scope finds no host object", async () => {
    const result = await rt.run(SMUGGLER);
    // The smuggling itself was refused (the wrapper held, so nothing returned the probes).
    if (result.exitCode !== 0 || result.value === undefined) return;
    const value = (result.value ?? {}) as Record<string, unknown>;
    expect(value.hostProcess === "EvalError" || value.hostProcess === "undefined").toBe(true);
    expect(value.require === "EvalError" || value.require === "undefined").toBe(true);
    // Only the guest's own env (never the host's PATH, HOME, …) may be visible.
    expect(String(value.env).split(",")).not.toEqual(expect.arrayContaining(["PATH"]));
    expect(String(value.env).split(",")).not.toEqual(expect.arrayContaining(["HOME"]));
    await expectServing(rt);
  });

  // Was a gap: a `//` comment in a multi-line import used to comment out the wrapper line,
  // so the SMUGGLER ran at module scope with working eval. Imports are now rebuilt from the
  // syntax tree without comments.
  it("code generation stays refused: guest code cannot reach module scope", async () => {
    const result = await rt.run(SMUGGLER);
    const value = (result.value ?? {}) as Record<string, unknown>;
    // A link error naming a missing export of guest.js also means the wrapper line was
    // commented out (the smuggler no longer mirrors its exports), i.e. the escape still works.
    const wrapperCommentedOut = /does not provide an export named/.test(result.stderr);
    const ranAtModuleScope = value.eval === 42 || value.fn === 2 || wrapperCommentedOut;
    expect(ranAtModuleScope).toBe(false);
  });

  // Was a known gap, fixed (the same root cause, seen by an honest user): a comment inside a multi-line
  // import breaks the guest with "SyntaxError: Unexpected token '.'".
  it("a line comment inside a multi-line import does not break the guest", async () => {
    const result = await rt.exec('import {\n  platform, // the OS name\n} from "node:os";\nconsole.log(platform());');
    expect(result).toEqual({ stdout: "linux\n", stderr: "", exitCode: 0 });
  });
});

/** `load` fails with `code` in the host's own node (run from a folder without these files) and in the guest alike. */
async function expectLoadFailsAsInNode(load: string, code: string): Promise<void> {
  const snippet = `try { ${load}; console.log("loaded"); } catch (e) { console.log(e.code); }`;
  const oracle = spawnSync(process.execPath, ["--input-type=module", "-e", snippet], { cwd: tmpdir(), encoding: "utf8" });
  const result = await rt.exec(snippet);
  expect(oracle.stdout).toBe(`${code}\n`);
  expect(result.stdout).toBe(oracle.stdout);
  expect(result.exitCode).toBe(0);
}

// Was a gap: `import("./secure-exec-bridge.js")` handed the guest the prelude's own channel to
// the host (and now would hand it the prelude's CommonJS `require`). Only sandbox builtins'
// files and bundled packages are the guest's to import; Node finds none of these names either.
describe("the prelude's own modules are not the guest's to import", () => {
  it.each([
    ["a literal import()", 'await import("./secure-exec-bridge.js")'],
    ["a computed import()", 'await import("./secure-exec-" + "require.cjs")'],
    ["the prelude itself", 'await import(["./secure-exec", "prelude.js"].join("-"))'],
    ["a path through node_modules", 'await import("./node_modules/../secure-exec-bridge.js")'],
    ["a ./ segment", 'await import("./node_modules/./../secure-exec-console.js")'],
    [
      "with the string and array methods replaced",
      'String.prototype.startsWith = () => true; Array.prototype.includes = () => true; await import("./secure-exec-process-io.js")',
    ],
    [
      "with a name added to Object.prototype and Set.prototype.has replaced",
      'Object.prototype.pkg = "./secure-exec-bridge.js"; Set.prototype.has = () => true; await import("pkg")',
    ],
  ])("%s is not found, as in Node", async (_, load) => {
    await expectLoadFailsAsInNode(load, "ERR_MODULE_NOT_FOUND");
  });

  it("the sandbox's builtins still load through their files and names", async () => {
    const result = await rt.exec('const a = await import("fs"); const b = await import("./secure-exec-fs.js"); const c = await import("node:" + "fs");\nconsole.log(a.readFileSync === b.readFileSync, a.readFileSync === c.readFileSync);');
    expect(result).toEqual({ stdout: "true true\n", stderr: "", exitCode: 0 });
  });
});

// Was a gap: workerd resolves `node:/../x` as the isolate's own module `x`, so
// `import("node:/../secure-exec-bridge.js")` loaded the prelude's channel, and
// `import("node:x/../../y")` took the whole sandbox process down. Only names shaped like a
// builtin's reach workerd now; Node answers these as unknown builtins.
describe("node: specifiers cannot climb out of the builtins", () => {
  it.each([
    ["import() of node:/../", 'await import("node:/../secure-exec-bridge.js")'],
    ["import() climbing past the root", 'await import("node:x/../../secure-exec-bridge.js")'],
    ["import() of node:../", 'await import("node:" + "../secure-exec-require.cjs")'],
    ["getBuiltinModule of node:/../", 'const m = process.getBuiltinModule("node:/../secure-exec-bridge.js"); if (m === undefined) throw Object.assign(new Error("none"), { code: "ERR_UNKNOWN_BUILTIN_MODULE" })'],
  ])("%s is an unknown builtin, as in Node, and the process keeps serving", async (_, load) => {
    await expectLoadFailsAsInNode(load, "ERR_UNKNOWN_BUILTIN_MODULE");
    await expectServing(rt);
  });
});
