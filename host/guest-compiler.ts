// Compiles guest source for a run. Small sources compile inline (microseconds); large ones
// go to worker threads, because parsing 1 MB takes ~0.7 s and the host's event loop serves
// every tenant, heartbeat and HTTP request.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { compileGuestModule, GuestSyntaxError } from "./guest-module.js";
import type { CompileJob, CompileReply } from "./guest-compiler-worker.js";
import { stripTypes } from "./typescript.js";

/** Sources up to this many characters compile on the calling thread (~10 ms at most). */
export const INLINE_COMPILE_LIMIT = 16 * 1024;
/** Heap of a compiler thread: a pathological source fails its own run, not the host. */
const WORKER_HEAP_MB = 1024;

export interface GuestCompileOptions {
  language: "js" | "ts";
  /** Module name for an import specifier (a bundled package), or undefined to leave it. */
  resolveBare: (specifier: string) => string | undefined;
}

export class GuestCompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GuestCompileError";
  }
}

interface CompilerThread {
  worker: Worker;
  pending: Map<number, (reply: CompileReply) => void>;
}

/** The compiled worker script: beside this module in the build; in the build when running from source. */
function workerScript(): URL | undefined {
  for (const candidate of ["./guest-compiler-worker.js", "../dist/host/guest-compiler-worker.js"]) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

const threads: (CompilerThread | undefined)[] = [];
const threadCount = Math.max(1, Math.min(2, availableParallelism()));
let nextJobId = 1;

function startThread(slot: number, script: URL): CompilerThread {
  // The host's own Node flags (e.g. --input-type) need not suit a plain module worker.
  const worker = new Worker(script, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  const thread: CompilerThread = { worker, pending: new Map() };
  worker.unref();
  worker.on("message", (reply: CompileReply) => {
    const settle = thread.pending.get(reply.id);
    thread.pending.delete(reply.id);
    settle?.(reply);
  });
  const fail = (error: unknown): void => {
    if (threads[slot] === thread) threads[slot] = undefined;
    const message = error instanceof Error ? error.message : String(error);
    for (const [id, settle] of thread.pending) settle({ id, ok: false, error: `the compiler thread failed: ${message}` });
    thread.pending.clear();
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`exited with code ${code}`)));
  return thread;
}

function post(job: Omit<CompileJob, "id">, script: URL): Promise<CompileReply> {
  // The least busy thread; a second one starts only while the first is busy.
  const load = (index: number): number => threads[index]?.pending.size ?? 0;
  let slot = 0;
  for (let index = 1; index < threadCount; index += 1) if (load(index) < load(slot)) slot = index;
  const thread = (threads[slot] ??= startThread(slot, script));
  const id = nextJobId++;
  return new Promise((resolve) => {
    thread.pending.set(id, resolve);
    thread.worker.ref();
    thread.worker.postMessage({ ...job, id } satisfies CompileJob);
  }).finally(() => {
    if (thread.pending.size === 0) thread.worker.unref();
  }) as Promise<CompileReply>;
}

function unwrap(reply: CompileReply): Extract<CompileReply, { ok: true }> {
  if (reply.ok) return reply;
  if ("syntaxError" in reply) throw new GuestSyntaxError(reply.syntaxError.message, reply.syntaxError.line, reply.syntaxError.column);
  throw new GuestCompileError(`secure-exec: the guest source could not be compiled (${reply.error})`);
}

/** The module a run loads for `source`; throws GuestSyntaxError, or what `resolveBare` throws. */
export async function compileGuest(source: string, options: GuestCompileOptions): Promise<string> {
  const script = source.length > INLINE_COMPILE_LIMIT ? workerScript() : undefined;
  if (!script) {
    return compileGuestModule(options.language === "ts" ? stripTypes(source) : source, { resolveBare: options.resolveBare });
  }
  const first = unwrap(await post({ source, language: options.language }, script));
  const resolved: Record<string, string> = {};
  for (const specifier of first.specifiers) {
    const target = options.resolveBare(specifier);
    if (target !== undefined) resolved[specifier] = target;
  }
  if (Object.keys(resolved).length === 0) return first.guestModule;
  return unwrap(await post({ source, language: options.language, resolved }, script)).guestModule;
}
