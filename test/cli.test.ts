// The `secure-exec` command, run as a real process from the build (dist/host/cli.js).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = join(root, "dist/host/cli.js");
let dir: string;
const children = new Set<ChildProcess>();

// The CLI runs from the build, which test/global-setup.ts keeps current.
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "secure-exec-cli-test-"));
});

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], input?: string, nodeArgs: string[] = []): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, cli, ...args], {
      env: { ...process.env, SECURE_EXEC_SPARE_PROCESSES: "0", SECURE_EXEC_TOKENS: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? "");
  });
}

function script(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

describe("secure-exec run", () => {
  it("runs a file with --env and --stdin and prints the guest's output", async () => {
    const file = script(
      "hello.mjs",
      'import os from "node:os";\nlet input = "";\nfor await (const chunk of process.stdin) input += chunk;\nconsole.log(`hello ${process.env.WHO} on ${os.platform()}: ${input}`);\nconsole.error("to stderr");\n',
    );
    const ran = await runCli(["run", file, "--env", "WHO=world", "-e", "EXTRA=1", "--stdin", "piped text"]);
    expect(ran).toEqual({ code: 0, stdout: "hello world on linux: piped text\n", stderr: "to stderr\n" });
  });

  it("loads no option schemas for a one-shot run (its flags are checked already)", async () => {
    const file = script("one-shot.mjs", "console.log(1);\n");
    const hook = `data:text/javascript,${encodeURIComponent(
      `export async function resolve(specifier, context, next) { if (/zod/.test(specifier)) process.stderr.write("SCHEMA-IMPORT " + specifier + "\\n"); return next(specifier, context); }`,
    )}`;
    const register = `data:text/javascript,${encodeURIComponent(`import { register } from "node:module"; register(${JSON.stringify(hook)});`)}`;
    const ran = await runCli(["run", file, "--env", "A=1", "--timeout", "5000"], undefined, ["--import", register]);
    expect(ran).toEqual({ code: 0, stdout: "1\n", stderr: "" });
  });

  it("runs code from standard input with -", async () => {
    const ran = await runCli(["run", "-"], 'console.log(6 * 7); console.log(typeof process.env.HOME)');
    expect(ran).toEqual({ code: 0, stdout: "42\nundefined\n", stderr: "" });
  });

  it("exits with the guest's exit code (137 on timeout) and prints the __return value with --json", async () => {
    const [exited, timedOut, json] = await Promise.all([
      runCli(["run", "-"], 'console.log("bye"); process.exit(7)'),
      runCli(["run", "-", "--timeout", "300"], "await new Promise(() => setInterval(() => {}, 1000))"),
      runCli(["run", "-", "--json"], 'console.log("out"); __return({ n: 1 })'),
    ]);
    expect(exited.code).toBe(7);
    expect(exited.stdout).toBe("bye\n");
    expect(timedOut.code).toBe(137);
    expect(timedOut.stderr).toMatch(/time limit of 300 ms exceeded/);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ stdout: "out\n", stderr: "", exitCode: 0, value: { n: 1 } });
  });

  it("reports usage errors clearly with exit code 2", async () => {
    const badTimeout = await runCli(["run", "x.mjs", "--timeout", "soon"]);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toMatch(/--timeout must be a positive integer/);
    const badEnv = await runCli(["run", "x.mjs", "--env", "NOEQUALS"]);
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/KEY=VALUE/);
    const missing = await runCli(["run", join(dir, "missing.mjs")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read file .*missing\.mjs: no such file/);
    const unknown = await runCli(["launch"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'launch'/);
  });
});

describe("secure-exec --help", () => {
  it("describes the commands and their options", async () => {
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Usage: secure-exec/);
    expect(top.stdout).toMatch(/run \[options\] <file>/);
    expect(top.stdout).toMatch(/serve \[options\]/);
    const run = await runCli(["run", "--help"]);
    expect(run.code).toBe(0);
    for (const flag of ["--timeout <ms>", "--env <KEY=VALUE>", "--stdin <text>"]) expect(run.stdout).toContain(flag);
    const serve = await runCli(["serve", "--help"]);
    expect(serve.code).toBe(0);
    for (const flag of ["--port <n>", "--host <address>", "--config <file>"]) expect(serve.stdout).toContain(flag);
  });
});

describe("secure-exec serve", () => {
  it("serves the HTTP API with a config module and stops on SIGTERM", async () => {
    const config = script(
      "server-config.mjs",
      `export default {
  tenants: { acme: { token: "acme-token-123", env: { PLAN: "pro" } } },
  tools: { double: { description: "doubles", inputSchema: { type: "object" }, handler: ({ n }) => n * 2 } },
};\n`,
    );
    const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--config", config], {
      env: { ...process.env, SECURE_EXEC_SPARE_PROCESSES: "0", SECURE_EXEC_TOKENS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) resolve(match[1]!);
      });
      child.on("close", () => reject(new Error(`serve exited early: ${out}`)));
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const unauthorized = await fetch(`${url}/v1/run`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(unauthorized.status).toBe(401);
    const response = await fetch(`${url}/v1/run`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer acme-token-123" },
      body: JSON.stringify({ code: '__return({ plan: process.env.PLAN, doubled: await callHostTool("double", { n: 21 }) })' }),
    });
    expect(await response.json()).toEqual({ stdout: "", stderr: "", exitCode: 0, value: { plan: "pro", doubled: 42 } });
    const pids = execFileSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
    expect(pids.length).toBeGreaterThan(0);
    child.kill("SIGTERM");
    // A graceful close: exit 0, and its workerd processes are gone.
    expect(await exited).toBe(0);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // An exited child may linger as a zombie for a moment until it is reaped.
    for (let waited = 0; pids.some(alive) && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(pids.filter(alive)).toEqual([]);
    children.delete(child);
  });

  it("refuses to listen beyond loopback without tenants", async () => {
    const ran = await runCli(["serve", "--host", "0.0.0.0", "--port", "0"]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/no tenants are configured/);
  });
});
