// Cases whose sandbox result differs from Node's. Every entry names its case exactly.
import type { Observation } from "./types.js";

export interface DesignedDifference {
  /** Why the sandbox cannot or will not behave as Node does. */
  reason: string;
  /** The clear error the sandbox gives instead (on stderr, or printed by the case). */
  expect: { stderr?: RegExp; exitCode?: number; stdout?: RegExp };
}

/**
 * Differences by design: the sandbox refuses with a clear error naming what is unsupported,
 * and the suite asserts that error.
 */
export const DESIGNED_DIFFERENCES: Record<string, DesignedDifference> = {
  "child_process: spawnSync node": {
    reason: "synchronous child processes: a guest cannot block on the host; the async forms work",
    expect: { stderr: /spawnSync is not supported in the sandbox/, exitCode: 1 },
  },
  "child_process: execSync node": {
    reason: "synchronous child processes: a guest cannot block on the host; the async forms work",
    expect: { stderr: /execSync is not supported in the sandbox/, exitCode: 1 },
  },
  "child_process: env passed to child": {
    reason: "synchronous child processes: a guest cannot block on the host; the async forms work",
    expect: { stderr: /execFileSync is not supported in the sandbox/, exitCode: 1 },
  },
  "eval and Function": {
    reason: "code generation from strings (eval, new Function) is disabled in guest isolates",
    expect: { stderr: /EvalError: Code generation from strings disallowed/, exitCode: 1 },
  },
  "language: dynamic code with new Function closure": {
    reason: "code generation from strings (eval, new Function) is disabled in guest isolates",
    expect: { stderr: /EvalError: Code generation from strings disallowed/, exitCode: 1 },
  },
  "wasm: instantiate bytes": {
    reason: "compiling WebAssembly from bytes is code generation, which guest isolates disallow",
    expect: { stderr: /Wasm code generation disallowed/, exitCode: 1 },
  },
  "wasm: compile then Instance": {
    reason: "compiling WebAssembly from bytes is code generation, which guest isolates disallow",
    expect: { stderr: /Wasm code generation disallowed/, exitCode: 1 },
  },
  "other: node:test runs a test": {
    reason: "node:test's runner needs a process and reporter of its own; mock works",
    expect: { stderr: /node:test test\(\) is not supported in the sandbox/, exitCode: 1 },
  },
  "dgram: createSocket bind": {
    reason: "guests have no UDP sockets",
    expect: { stderr: /dgram.createSocket is not supported in the sandbox: guests have no UDP sockets/, exitCode: 1 },
  },
  "vm: runInNewContext": {
    reason: "vm compiles source text: code generation from strings is disabled in guest isolates",
    expect: { stderr: /vm.runInNewContext is not supported in the sandbox: code generation from strings is disabled/, exitCode: 1 },
  },
  "vm: Script runInThisContext": {
    reason: "vm compiles source text: code generation from strings is disabled in guest isolates",
    expect: { stderr: /vm.Script is not supported in the sandbox/, exitCode: 1 },
  },
  "vm: createContext isolates globals": {
    reason: "vm compiles source text: code generation from strings is disabled in guest isolates",
    expect: { stderr: /vm.runInContext is not supported in the sandbox/, exitCode: 1 },
  },
  "vm: syntax error in script": {
    reason: "vm compiles source text: code generation from strings is disabled in guest isolates",
    expect: { stdout: /^Error secure-exec: vm.Script is not supported in the sandbox/, exitCode: 0 },
  },
  "worker_threads: Worker with eval": {
    reason: "guests run in one isolate, with no threads",
    expect: { stderr: /worker_threads.Worker is not supported in the sandbox/, exitCode: 1 },
  },
  "v8: serialize deserialize": {
    reason: "workerd has no V8 serializer for guests",
    expect: { stderr: /The serialize method is not implemented/, exitCode: 1 },
  },
  "perf_hooks: monitorEventLoopDelay": {
    reason: "workerd has no event loop delay histogram",
    expect: { stderr: /The monitorEventLoopDelay method is not implemented/, exitCode: 1 },
  },
  "net: server listen and connect": {
    reason: "guests have no TCP sockets (HTTP servers work through node:http)",
    expect: { stderr: /createServer\(\) is not implemented/, exitCode: 1 },
  },
  "worker_threads: Worker of a file": {
    reason: "guests run in one isolate, with no threads",
    expect: { stderr: /worker_threads.Worker is not supported in the sandbox/, exitCode: 1 },
  },
  "dgram: socket send": {
    reason: "guests have no UDP sockets",
    expect: { stderr: /dgram.createSocket is not supported in the sandbox/, exitCode: 1 },
  },
  "fs: symlink and readlink": {
    reason: "the virtual filesystem has no links",
    expect: { stderr: /EPERM: operation not permitted, symlink .*the virtual filesystem has no links/, exitCode: 1 },
  },
  "other: sqlite DatabaseSync": {
    reason: "the sandbox has no SQLite: node:sqlite loads (and warns it is experimental, as Node 22 does) but opens no database",
    expect: { stderr: /node:sqlite DatabaseSync is not supported in the sandbox: guests have no SQLite/, exitCode: 1 },
  },
  "fs: linkSync hard link": {
    reason: "the virtual filesystem has no links",
    expect: { stderr: /EPERM: operation not permitted, link .*the virtual filesystem has no links/, exitCode: 1 },
  },
};

/**
 * Differences not fixed yet (the sandbox should match Node), with what differs. Listed so the
 * suite stays green while they are worked on; the compatibility doc reports actual results,
 * and the suite's summary names entries that have started to match (remove them).
 */
export const KNOWN_GAPS: Record<string, string> = {
};

export function matchesDesignedDifference(difference: DesignedDifference, sandbox: Observation): boolean {
  if (sandbox.hung) return false;
  if (difference.expect.stderr && !difference.expect.stderr.test(sandbox.stderr)) return false;
  if (difference.expect.exitCode !== undefined && sandbox.exitCode !== difference.expect.exitCode) return false;
  if (difference.expect.stdout && !difference.expect.stdout.test(sandbox.stdout)) return false;
  return true;
}
