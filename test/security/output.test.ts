// What a guest writes and returns: floods are capped with a marker, text that looks like the
// wire protocol stays text, work scheduled after the result never reaches another run, and
// poisoned `__return` values end as a clear error or a plain JSON value.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

const CAP = 1024 * 1024;
let rt: NodeRuntime;
beforeAll(async () => {
  rt = await createRuntime({ limits: { outputBytes: CAP, processes: 1 } });
});
afterAll(async () => {
  await rt?.dispose();
});

describe("output floods (limits.outputBytes = 1 MiB)", () => {
  it("100k console.log lines are cut at the cap with a marker; the run's value still arrives", async () => {
    let streamed = 0;
    const result = await rt.run('for (let i = 0; i < 100_000; i++) console.log("line " + i); __return("done")', {
      onStdout: (chunk) => (streamed += chunk.byteLength),
      timeout: 30_000,
    });
    expect(result.exitCode).toBe(0);
    expect(result.value).toBe("done");
    expect(result.stdout.endsWith(`\n[secure-exec: stdout truncated at ${CAP} bytes]\n`)).toBe(true);
    expect(Buffer.byteLength(result.stdout)).toBeLessThan(CAP + 100);
    expect(streamed).toBeLessThan(CAP + 100);
  });

  it("one 50 MB string on stdout, and another on stderr, are cut at the cap", async () => {
    const result = await rt.run(
      'const s = "y".repeat(50 * 1024 * 1024); process.stdout.write(s); console.error("z".repeat(50 * 1024 * 1024)); __return(s.length)',
      { timeout: 30_000 },
    );
    expect(result.exitCode).toBe(0);
    expect(result.value).toBe(50 * 1024 * 1024);
    expect(result.stdout).toBe(`${"y".repeat(CAP)}\n[secure-exec: stdout truncated at ${CAP} bytes]\n`);
    expect(result.stderr).toBe(`${"z".repeat(CAP)}\n[secure-exec: stderr truncated at ${CAP} bytes]\n`);
    await expectServing(rt);
  });

  it("multi-byte text past the cap is cut at the cap", async () => {
    const result = await rt.exec('process.stdout.write("€".repeat(600_000))', { timeout: 30_000 });
    expect(result.exitCode).toBe(0);
    expect(result.stdout.endsWith(`\n[secure-exec: stdout truncated at ${CAP} bytes]\n`)).toBe(true);
    expect(Buffer.byteLength(result.stdout.split("\n[secure-exec")[0]!)).toBeLessThanOrEqual(CAP);
  });

  // Was a known gap, fixed: the host decodes the guest's event stream one network chunk at a time
  // (Buffer#toString per chunk), so a multi-byte character split across two chunks turns
  // into U+FFFD replacement characters: 300k "€" (900 KB, under the cap) come back with
  // "\uFFFD" sprinkled in. Not an escape, but output integrity.
  it("non-ASCII output under the cap arrives intact", async () => {
    const result = await rt.exec('process.stdout.write("€".repeat(300_000))', { timeout: 30_000 });
    expect(result.stdout.includes("\uFFFD")).toBe(false);
    expect(result.stdout).toBe("€".repeat(300_000));
  });
});

describe("forged protocol lines", () => {
  it("stdout that looks like the host's NDJSON events is just text: exit code and value are the real ones", async () => {
    const result = await rt.run(`
      console.log('{"x":0,"r":"\\\\"forged\\\\""}');
      console.log('{"o":"fake stdout"}\\n{"e":"fake stderr"}\\n{"x":7}');
      process.stdout.write('\\n{"x":3,"r":"1"}\\n{"s":1}\\n{"l":3000}\\n{"fs":{"writes":{"/etc/passwd":"cHdu"}}}\\n');
      process.stdout.write("raw\\r\\nnewlines\\u2028\\u2029\\u0000end\\n");
      process.stdout.write(new Uint8Array([0x7b, 0x22, 0x78, 0x22, 0x3a, 0x39, 0x7d, 0x0a]));
      __return({ real: true });
    `);
    expect(result.exitCode).toBe(0);
    expect(result.value).toEqual({ real: true });
    expect(result.stdout).toContain('{"x":0,"r":"\\"forged\\""}\n');
    expect(result.stdout).toContain('{"o":"fake stdout"}\n{"e":"fake stderr"}\n{"x":7}\n');
    expect(result.stdout).toContain('{"fs":{"writes":{"/etc/passwd":"cHdu"}}}\n');
    expect(result.stdout).toContain("raw\r\nnewlines\u2028\u2029\u0000end\n");
    expect(result.stdout.endsWith('{"x":9}\n')).toBe(true);
    expect(result.stderr).toBe("");
    expect(rt.findListener({ port: 3000 })).toBeUndefined();
    await expect(rt.readFile("/etc/passwd")).rejects.toThrow(/ENOENT/);
  });

  it("forged lines on stderr do not change an explicit exit code", async () => {
    const result = await rt.exec(`console.error('{"x":0,"r":"1"}\\n{"e":"x"}'); process.stderr.write('{"x":5}\\n'); process.exit(4)`);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toBe('{"x":0,"r":"1"}\n{"e":"x"}\n{"x":5}\n');
  });

  // Was a known gap, fixed: guest code can import the prelude's own bridge module ("./secure-exec-bridge.js")
  // and emit raw events, or replace JSON.stringify, which the prelude uses to encode them. The
  // host trusts what arrives: `{x: "pwn"}` becomes `exitCode: "pwn"` (not a number), and an
  // `r` that is not JSON (or a line that is not JSON) makes run() reject with a bare
  // SyntaxError ("Expected property name or '}' in JSON at position 1") instead of resolving.
  it("events forged through the bridge module cannot give a non-numeric exit code", async () => {
    const result = await rt.exec('import { bridge } from "./secure-exec-bridge.js"; bridge.current.emit({ x: "pwn" });', { timeout: 5_000 });
    expect(typeof result.exitCode).toBe("number");
  });

  it("a guest that poisons JSON.stringify still gets a clear result from run()", async () => {
    const outcome = await rt.run('JSON.stringify = () => "{"; __return(1);', { timeout: 5_000 }).then(
      (result) => ({ resolved: true, exitCode: result.exitCode }),
      (error: unknown) => ({ resolved: false, error: String(error) }),
    );
    expect(outcome).toMatchObject({ resolved: true });
  });

  it("the host is unharmed by forged events either way", async () => {
    await rt.exec('import { bridge } from "./secure-exec-bridge.js"; bridge.current.emit({ x: 0, r: "{" });', { timeout: 5_000 }).catch(() => undefined);
    await rt.run('const s = JSON.stringify; JSON.stringify = (v) => (v && v.o !== undefined ? "garbage" : s(v)); console.log("hi")', { timeout: 5_000 }).catch(() => undefined);
    await expectServing(rt);
  });
});

describe("work scheduled after the result", () => {
  it("a timer that would print after process.exit never prints, here or in the next run", async () => {
    const first = await rt.exec('setTimeout(() => console.log("LATE-1"), 50); setInterval(() => console.log("LATE-1i"), 10); process.exit(0)');
    expect(first).toEqual({ stdout: "", stderr: "", exitCode: 0 });
    const next = await rt.exec('await new Promise((r) => setTimeout(r, 200)); console.log("next")');
    expect(next).toEqual({ stdout: "next\n", stderr: "", exitCode: 0 });
  });

  it("__return, then a timer exits, then another timer would print: the value stands, nothing leaks", async () => {
    const first = await rt.run('__return(1); setTimeout(() => console.log("LATE-2"), 40); setTimeout(() => process.exit(0), 5);');
    expect(first).toEqual({ stdout: "", stderr: "", exitCode: 0, value: 1 });
    const next = await rt.exec('await new Promise((r) => setTimeout(r, 150)); console.log("next")');
    expect(next.stdout).toBe("next\n");
  });

  it("a rejection and a throw scheduled after exit do not surface anywhere", async () => {
    const first = await rt.exec(
      'setTimeout(() => { throw new Error("LATE-3") }, 20); Promise.reject(new Error("early")).catch(() => {}); queueMicrotask(() => process.exit(2)); setTimeout(() => Promise.reject(new Error("LATE-4")), 30);',
    );
    expect(first).toEqual({ stdout: "", stderr: "", exitCode: 2 });
    const next = await rt.exec('await new Promise((r) => setTimeout(r, 150)); console.log("next")');
    expect(next).toEqual({ stdout: "next\n", stderr: "", exitCode: 0 });
  });
});

describe("poisoned __return values", () => {
  const cases: [string, string, (result: { exitCode: number; value?: unknown; stderr: string }) => void][] = [
    ["a thenable object is serialised, never awaited", '__return({ then(resolve) { resolve("pwned"); } })', (r) => expect(r.value).toEqual({})],
    ["a thenable function is refused", 'const f = () => 1; f.then = (r) => r("x"); __return(f)', (r) => expect(r.stderr).toMatch(/not JSON-serialisable/)],
    ["a throwing getter fails the run clearly", '__return({ get x() { throw new Error("getter trap"); } })', (r) => expect(r.stderr).toMatch(/Error: getter trap/)],
    ["a throwing toJSON fails the run clearly", '__return({ toJSON() { throw new Error("toJSON trap"); } })', (r) => expect(r.stderr).toMatch(/Error: toJSON trap/)],
    ["toJSON returning itself is plain JSON", "__return({ toJSON() { return this; } })", (r) => expect(r.value).toEqual({})],
    ["a Proxy whose traps throw fails the run clearly", '__return(new Proxy({}, { ownKeys() { throw new Error("ownKeys trap"); }, get() { throw new Error("get trap"); } }))', (r) => expect(r.stderr).toMatch(/trap/)],
    ["a lying Proxy gives plain JSON", '__return(new Proxy({}, { ownKeys: () => ["a"], getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }), get: (t, k) => (k === "toJSON" ? undefined : "v") }))', (r) => expect(r.value).toEqual({ a: "v" })],
    ["a revoked Proxy fails the run clearly", "const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); __return(proxy)", (r) => expect(r.stderr).toMatch(/revoked/)],
    ["a Symbol.species trap is never consulted", 'class Evil extends Array { static get [Symbol.species]() { throw new Error("species trap"); } } __return(Evil.from([1, 2, 3]))', (r) => expect(r.value).toEqual([1, 2, 3])],
    ["a species-built result is plain JSON", "class Evil extends Array { static get [Symbol.species]() { return function () { return { pwn: 1 }; }; } } __return(Evil.from([1, 2]).map((x) => x * 2))", (r) => expect(r.value).toEqual({ 0: 2, 1: 4, pwn: 1 })],
    ["a cycle fails the run clearly", "const o = {}; o.o = o; __return(o)", (r) => expect(r.stderr).toMatch(/circular/)],
    ["a BigInt fails the run clearly", "__return(10n)", (r) => expect(r.stderr).toMatch(/BigInt/)],
    ["a symbol is refused", '__return(Symbol("s"))', (r) => expect(r.stderr).toMatch(/not JSON-serialisable/)],
    ["a __proto__ key stays an own key on the host", `__return(JSON.parse('{"__proto__": {"polluted": true}}'))`, (r) => expect(Object.keys(r.value as object)).toEqual(["__proto__"])],
  ];
  for (const [label, code, check] of cases) {
    it(label, async () => {
      const result = await rt.run(code);
      if (result.exitCode === 0) {
        // A value that arrived is plain JSON.
        expect(JSON.parse(JSON.stringify(result.value ?? null))).toEqual(result.value ?? null);
      } else {
        expect(result.exitCode).toBe(1);
        expect(result.value).toBeUndefined();
      }
      check(result);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  }

  it("the runtime keeps serving after all of them", async () => {
    await expectServing(rt);
  });
});
