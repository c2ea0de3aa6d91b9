import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await NodeRuntime.create({ env: { RUNTIME_VAR: "from-runtime", SHARED: "runtime" } });
});
afterAll(async () => {
  await rt.dispose();
});

describe("the SPEC's examples, verbatim", () => {
  it("node:os builtins: os.platform() prints linux", async () => {
    const result = await rt.exec('import os from "node:os"; console.log(os.platform())');
    expect(result).toEqual({ stdout: "linux\n", stderr: "", exitCode: 0 });
  });

  it("a pending timer keeps the run alive", async () => {
    const result = await rt.exec('setTimeout(() => console.log("late"), 50)');
    expect(result.stdout).toBe("late\n");
    expect(result.exitCode).toBe(0);
  });

  it("__return hands a value to run()", async () => {
    const result = await rt.run<{ city: string }>('__return({ city: "Tokyo" })');
    expect(result.value).toEqual({ city: "Tokyo" });
  });
});

describe("ES modules", () => {
  it("supports top-level import and await", async () => {
    const result = await rt.exec(
      'import { createHash } from "node:crypto";\nconst d = await Promise.resolve("abc");\nconsole.log(createHash("sha256").update(d).digest("hex").slice(0, 8));',
    );
    expect(result.stdout).toBe("ba7816bf\n");
  });

  it("supports dynamic import of builtins and exported declarations", async () => {
    const result = await rt.exec('export const x = 2;\nconst path = await import("node:path");\nconsole.log(path.join("/a", "b"), x);');
    expect(result.stdout).toBe("/a/b 2\n");
  });

  it("reports a syntax error with exit code 1", async () => {
    const result = await rt.exec("let x = ;");
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("SyntaxError");
  });

  it("reports an unknown module as an error", async () => {
    const result = await rt.exec('import nope from "node:does-not-exist";');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/does-not-exist/);
  });
});

describe("__return", () => {
  it("last call wins", async () => {
    expect((await rt.run("__return(1); __return(2);")).value).toBe(2);
  });
  it("__return(undefined) gives null", async () => {
    const result = await rt.run("__return(undefined)");
    expect(result.value).toBeNull();
    expect("value" in result).toBe(true);
  });
  it("never called gives undefined", async () => {
    const result = await rt.run("console.log(1)");
    expect(result.value).toBeUndefined();
  });
  it("value is set only when exitCode is 0", async () => {
    const result = await rt.run("__return(5); process.exit(2)");
    expect(result.exitCode).toBe(2);
    expect(result.value).toBeUndefined();
  });
  it("a value that is not JSON-serialisable throws in the guest", async () => {
    const result = await rt.run("try { __return(10n) } catch (e) { console.log(e.name) }");
    expect(result.stdout).toBe("TypeError\n");
  });
});

describe("repeated code", () => {
  it("each run of the same code (preloaded isolates after the first) sees its own input and state", async () => {
    const code = 'globalThis.count = (globalThis.count ?? 0) + 1; console.log(process.env.RUN, count, process.argv.length); setTimeout(() => console.log("late", process.env.RUN), 2)';
    for (let run = 0; run < 5; run++) {
      const result = await rt.exec(code, { env: { RUN: String(run) } });
      expect(result).toEqual({ stdout: `${run} 1 2\nlate ${run}\n`, stderr: "", exitCode: 0 });
    }
  });
});

describe("exit codes", () => {
  it("process.exit(n) ends the run with n and runs nothing after it", async () => {
    const result = await rt.exec('console.log("a"); process.exit(3); console.log("b")');
    expect(result).toEqual({ stdout: "a\n", stderr: "", exitCode: 3 });
  });
  it("process.exitCode is honoured at a normal end", async () => {
    expect((await rt.exec("process.exitCode = 4")).exitCode).toBe(4);
  });
  it("an uncaught exception ends with 1 and the stack on stderr", async () => {
    const result = await rt.exec('function boom() { throw new Error("kaboom") }\nboom();');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("Error: kaboom");
    expect(result.stderr).toMatch(/at boom \(guest\.js:1:/);
  });
  it("an exception thrown in a timer ends with 1", async () => {
    const result = await rt.exec('setTimeout(() => { throw new RangeError("late boom") }, 5)');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("RangeError: late boom");
  });
  it("an unhandled rejection ends with 1", async () => {
    const result = await rt.exec('Promise.reject(new TypeError("rejected"))');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("TypeError: rejected");
  });
  it("a module awaiting forever ends like Node (13)", async () => {
    const result = await rt.exec("await new Promise(() => {})");
    expect(result.exitCode).toBe(13);
    expect(result.stderr).toContain("unsettled top-level await");
  });
  it("an interval keeps the run alive until cleared", async () => {
    const result = await rt.exec("let n = 0; const t = setInterval(() => { n++; console.log(n); if (n === 3) clearInterval(t) }, 5)");
    expect(result.stdout).toBe("1\n2\n3\n");
  });
  it("an unref'd timer does not keep the run alive", async () => {
    const result = await rt.exec('setTimeout(() => console.log("never"), 5000).unref(); console.log("done")');
    expect(result.stdout).toBe("done\n");
  });
});

describe("console and streams", () => {
  it("formats like Node's util.format", async () => {
    const result = await rt.exec('console.log("%s is %d years", "Ann", 42, { a: [1, { b: 2 }] }); console.info("i"); console.debug("d")');
    expect(result.stdout).toBe("Ann is 42 years { a: [ 1, { b: 2 } ] }\ni\nd\n");
  });
  it("sends console.error and console.warn to stderr", async () => {
    const result = await rt.exec('console.error("e", 1); console.warn("w")');
    expect(result).toEqual({ stdout: "", stderr: "e 1\nw\n", exitCode: 0 });
  });
  it("supports process.stdout.write and process.stderr.write", async () => {
    const result = await rt.exec('process.stdout.write("no newline"); process.stderr.write(new TextEncoder().encode("bytes"))');
    expect(result.stdout).toBe("no newline");
    expect(result.stderr).toBe("bytes");
  });
});

describe("stdin", () => {
  it("is async-iterable", async () => {
    const result = await rt.exec("let s = ''; for await (const c of process.stdin) s += c; console.log(s.toUpperCase())", {
      stdin: "hello",
    });
    expect(result.stdout).toBe("HELLO\n");
  });
  it("emits data and end events", async () => {
    const result = await rt.exec(
      "process.stdin.on('data', (d) => console.log('data', String(d))); process.stdin.on('end', () => console.log('end'))",
      { stdin: new TextEncoder().encode("bytes in") },
    );
    expect(result.stdout).toBe("data bytes in\nend\n");
  });
  it("pipes", async () => {
    const result = await rt.exec("process.stdin.pipe(process.stdout)", { stdin: "piped through" });
    expect(result.stdout).toBe("piped through");
  });
  it("is empty and ended when no stdin is given", async () => {
    const result = await rt.exec("let s = ''; for await (const c of process.stdin) s += c; console.log(JSON.stringify(s))");
    expect(result.stdout).toBe('""\n');
  });
});

describe("environment", () => {
  it("process.env is the runtime env merged with the per-call env, and none of the host's", async () => {
    const result = await rt.run("__return(process.env)", { env: { CALL_VAR: "from-call", SHARED: "call" } });
    expect(result.value).toEqual({ RUNTIME_VAR: "from-runtime", SHARED: "call", CALL_VAR: "from-call" });
    expect(process.env.PATH).toBeDefined();
  });
  it("process.cwd() is the per-call cwd, else the runtime cwd, else /workspace", async () => {
    expect((await rt.exec("console.log(process.cwd())")).stdout).toBe("/workspace\n");
    expect((await rt.exec("console.log(process.cwd())", { cwd: "/tmp/job" })).stdout).toBe("/tmp/job\n");
    const other = await NodeRuntime.create({ cwd: "/srv/app" });
    try {
      expect((await other.exec("console.log(process.cwd())")).stdout).toBe("/srv/app\n");
    } finally {
      await other.dispose();
    }
  });
  it("cannot fetch to the outside", async () => {
    const result = await rt.exec('try { await fetch("http://127.0.0.1:9/"); console.log("reached") } catch (e) { console.log("blocked") }');
    expect(result.stdout).toBe("blocked\n");
  });
  it("code generation from strings stays refused", async () => {
    const result = await rt.exec('try { eval("1+1"); console.log("eval ran") } catch (e) { console.log(e.name) }');
    expect(result.stdout).toBe("EvalError\n");
  });
  it("gives every run a fresh isolate: nothing leaks between runs", async () => {
    await rt.exec("globalThis.leaked = 'secret'; Object.prototype.polluted = 1");
    const result = await rt.exec("console.log(typeof globalThis.leaked, ({}).polluted)");
    expect(result.stdout).toBe("undefined undefined\n");
  });
});
