// Runs conformance cases twice: with the host's own `node` (a child process in a temp dir,
// same stdin) and in the sandbox (one NodeRuntime for all cases), and reduces both runs to
// what must agree. Only what has to differ is normalised: the host's temp dir is the guest's
// /workspace.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeRuntime } from "../../runtime/index.js";
import type { ConformanceCase, Observation } from "./types.js";

/** Wall-clock limit of one run on either side; a run still going then counts as a hang. */
export const CASE_TIMEOUT_MS = 10_000;
/** Stands for the case's directory in cached host results. */
const CWD_TOKEN = "\u0000cwd\u0000";
const hostMajor = Number(process.versions.node.split(".")[0]);

/** `empty`, `output`, or the name (and code) of the first error header on stderr. */
export function stderrClassOf(stderr: string, exitCode: number): string {
  if (stderr.trim() === "") return "empty";
  if (exitCode === 0) return "output";
  for (const line of stderr.split("\n")) {
    const header = /^(?:Uncaught )?([A-Z][A-Za-z]*(?:Error|Exception)|Error)(?: \[([A-Z0-9_]+)\])?(?::|$)/.exec(line);
    if (header) return header[2] ? `${header[1]} [${header[2]}]` : header[1]!;
  }
  return "output";
}

function observation(stdout: string, stderr: string, exitCode: number, hung: boolean): Observation {
  return { stdout, stderr, exitCode, hung, stderrClass: hung ? "hang" : stderrClassOf(stderr, exitCode) };
}

/** Host results depend only on node's version and the case's inputs: kept across runs. */
const cacheDir = join(tmpdir(), "secure-exec-conformance-cache-v3");

function cacheKey(testCase: ConformanceCase): string {
  return createHash("sha256")
    .update(JSON.stringify([process.version, testCase.code, testCase.stdin ?? null, testCase.env ?? {}]))
    .digest("hex");
}

/**
 * The case's working directory in the sandbox: its own, since one runtime's virtual
 * filesystem is shared by all cases (on the host each case gets a fresh temp dir).
 */
export function guestCwdOf(testCase: ConformanceCase): string {
  const slug = testCase.name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 48);
  return `/workspace/${slug}-${createHash("sha1").update(testCase.name).digest("hex").slice(0, 6)}`;
}

/** Creates every case's directory in the sandbox, in one run. */
export async function prepareSandbox(runtime: NodeRuntime, cases: readonly ConformanceCase[]): Promise<void> {
  const dirs = JSON.stringify(cases.map(guestCwdOf));
  const result = await runtime.exec(`import fs from "node:fs";\nfor (const dir of ${dirs}) fs.mkdirSync(dir, { recursive: true });`);
  if (result.exitCode !== 0) throw new Error(`could not create the cases' directories: ${result.stderr}`);
}

function withCwd(seen: Observation, cwd: string): Observation {
  const put = (text: string) => text.split(CWD_TOKEN).join(cwd);
  return { ...seen, stdout: put(seen.stdout), stderr: put(seen.stderr) };
}

/** What the host's own node does with the case (or the pinned Node 22 result). */
export async function runOnHost(testCase: ConformanceCase): Promise<Observation> {
  return withCwd(await runOnHostRaw(testCase), guestCwdOf(testCase));
}

async function runOnHostRaw(testCase: ConformanceCase): Promise<Observation> {
  if (testCase.node22 && hostMajor < 22) {
    const pin = testCase.node22;
    return { stdout: pin.stdout, stderr: "", exitCode: pin.exitCode ?? 0, hung: false, stderrClass: pin.stderrClass ?? "empty" };
  }
  const cached = join(cacheDir, `${cacheKey(testCase)}.json`);
  if (existsSync(cached)) {
    try {
      return JSON.parse(readFileSync(cached, "utf8")) as Observation;
    } catch {
      // A torn write: run again.
    }
  }
  const base = realpathSync(mkdtempSync(join(tmpdir(), "conformance-")));
  const dir = join(base, "cwd");
  mkdirSync(dir);
  try {
    // guest.js under a "type": "module" package, so file names in output match the guest's.
    writeFileSync(join(dir, "package.json"), '{"type":"module"}\n');
    writeFileSync(join(dir, "guest.js"), testCase.code);
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...testCase.env };
    const result = await new Promise<{ stdout: string; stderr: string; exitCode: number; hung: boolean }>((resolve) => {
      // stdin is a file, as for `node guest.js < input` (a pipe from spawn is a socket, which
      // /dev/stdin cannot open).
      const stdinPath = join(base, "stdin");
      writeFileSync(stdinPath, testCase.stdin ?? "");
      const stdinFd = openSync(stdinPath, "r");
      const child = spawn(process.execPath, ["guest.js"], { cwd: dir, env, stdio: [stdinFd, "pipe", "pipe"] });
      closeSync(stdinFd);
      let stdout = "";
      let stderr = "";
      let hung = false;
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const timer = setTimeout(() => {
        hung = true;
        child.kill("SIGKILL");
      }, CASE_TIMEOUT_MS);
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        // A shell reports death by a signal as 128 + its number (SIGTERM 143, SIGKILL 137).
        resolve({ stdout, stderr, exitCode: code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1), hung });
      });
    });
    const normalise = (text: string) => text.split(dir).join(CWD_TOKEN);
    const seen = observation(normalise(result.stdout), normalise(result.stderr), result.exitCode, result.hung);
    if (!seen.hung) {
      mkdirSync(cacheDir, { recursive: true });
      writeFileSync(cached, JSON.stringify(seen));
    }
    return seen;
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

/** What the sandbox does with the case. */
export async function runInSandbox(runtime: NodeRuntime, testCase: ConformanceCase): Promise<Observation> {
  const options = { timeout: CASE_TIMEOUT_MS, cwd: guestCwdOf(testCase), ...(testCase.stdin !== undefined ? { stdin: testCase.stdin } : {}), ...(testCase.env ? { env: testCase.env } : {}) };
  try {
    const result = await runtime.exec(testCase.code, options);
    // The call's timeout resolves with 137 and no exit of the guest's own.
    const hung = result.exitCode === 137 && /timed out|time limit|timeout/i.test(result.stderr);
    return observation(result.stdout, result.stderr, result.exitCode, hung);
  } catch (error) {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { stdout: "", stderr: text, exitCode: -1, hung: false, stderrClass: `host call rejected: ${text}` };
  }
}

export interface CaseResult {
  testCase: ConformanceCase;
  builtin: string;
  host: Observation;
  sandbox: Observation;
  identical: boolean;
  /** Wall-clock time of the case (both sides), for finding slow ones. */
  ms?: number;
}

export function identical(host: Observation, sandbox: Observation): boolean {
  return !host.hung && !sandbox.hung && host.stdout === sandbox.stdout && host.stderrClass === sandbox.stderrClass && host.exitCode === sandbox.exitCode;
}

/** Runs `work` over `items` with at most `concurrency` in flight; results keep input order. */
export async function mapLimited<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

export async function runCases(runtime: NodeRuntime, cases: readonly { builtin: string; testCase: ConformanceCase }[], concurrency = 4): Promise<CaseResult[]> {
  await prepareSandbox(runtime, cases.map((entry) => entry.testCase));
  return mapLimited(cases, concurrency, async ({ builtin, testCase }) => {
    const [host, sandbox] = await Promise.all([runOnHost(testCase), runInSandbox(runtime, testCase)]);
    return { testCase, builtin, host, sandbox, identical: identical(host, sandbox) };
  });
}
