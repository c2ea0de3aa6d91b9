// Compiles guest source for a run. Small sources compile inline (microseconds); large ones
// go to worker threads, because parsing 1 MB takes ~0.7 s and the host's event loop serves
// every tenant, heartbeat and HTTP request. The queue lives here, on the host: each thread
// runs one job at a time, queues are per runtime and served in turn, a job whose run gave
// up is dropped (or its thread terminated), and a thread that dies fails only its own job.
// One runtime runs at most one job at a time while there are two threads, so a runtime that
// arrives always finds a thread within one job's time.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { builtHostModule } from "../package-files.js";
import { compileGuestModule, GuestSyntaxError } from "./guest-module.js";
import { ModuleNotFoundError, PackageLoadError, UnknownBuiltinError } from "./specifiers.js";
import type { CompileJob, CompileReply } from "./guest-compiler-worker.js";
import { stripTypes } from "./typescript.js";
import { UnsupportedSchemeError } from "./specifiers.js";

/** Sources up to this many characters compile on the calling thread (~10 ms at most). */
export const INLINE_COMPILE_LIMIT = 16 * 1024;
/** Compiles one runtime may have waiting; more are refused (`CompilerBusyError`). */
export const MAX_QUEUED_PER_RUNTIME = 32;
/** Heap of a compiler thread: a pathological source fails its own run, not the host. */
const WORKER_HEAP_MB = 1024;
/**
 * Longest one compile job may hold a thread, whatever the run's own timeout: past it the
 * thread is terminated and the run fails, so a pathological source cannot starve the
 * compiles of other runtimes queued behind it. A megabyte of ordinary code takes ~0.7 s.
 * `SECURE_EXEC_COMPILE_BUDGET_MS` overrides it.
 */
export const COMPILE_JOB_BUDGET_MS = positiveNumber(process.env.SECURE_EXEC_COMPILE_BUDGET_MS) ?? 5_000;

function positiveNumber(text: string | undefined): number | undefined {
  const value = Number(text);
  return text !== undefined && Number.isFinite(value) && value > 0 ? value : undefined;
}

export interface GuestCompileOptions {
  language: "js" | "ts";
  /** Module name for an import specifier (a bundled package), or undefined to leave it. */
  resolveBare: (specifier: string, how?: { dynamic: boolean }) => string | undefined;
  /** Whose queue the compile waits in (one per runtime): queues are served in turn. */
  queue: string;
  /** Abandons the compile: a waiting job is dropped, a running one's thread is terminated. */
  signal?: AbortSignal;
}

/** The guest's source could not be compiled (e.g. the compiler ran out of memory on it). */
export class GuestCompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GuestCompileError";
  }
}

/** The runtime already has `MAX_QUEUED_PER_RUNTIME` compiles waiting. */
export class CompilerBusyError extends Error {
  constructor() {
    super(`secure-exec: ${MAX_QUEUED_PER_RUNTIME} large sources of this runtime are already waiting to compile; try again later`);
    this.name = "CompilerBusyError";
  }
}

interface QueuedJob {
  job: Omit<CompileJob, "id">;
  queue: string;
  settle: (reply: CompileReply | { aborted: unknown }) => void;
}

interface CompilerThread {
  worker: Worker;
  running: { id: number; entry: QueuedJob; budget: NodeJS.Timeout } | undefined;
}

/** Without a build (running from source) everything compiles inline. */
const COMPILER_SCRIPT = builtHostModule("compile/guest-compiler-worker.js");
const threadCount = Math.max(1, Math.min(2, availableParallelism()));
const threads: (CompilerThread | undefined)[] = new Array(threadCount).fill(undefined);
/** Waiting jobs by queue, in arrival order; queues are served round-robin. */
const queues = new Map<string, QueuedJob[]>();
let nextJobId = 1;

function startThread(slot: number): CompilerThread {
  // The host's own Node flags (e.g. --input-type) need not suit a plain module worker.
  const worker = new Worker(COMPILER_SCRIPT!, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  worker.unref();
  const thread: CompilerThread = { worker, running: undefined };
  const finishRunning = (reply: CompileReply | { aborted: unknown }): void => {
    const running = thread.running;
    thread.running = undefined;
    if (running) clearTimeout(running.budget);
    worker.unref();
    running?.entry.settle(reply);
  };
  worker.on("message", (reply: CompileReply) => {
    if (thread.running?.id !== reply.id) return;
    finishRunning(reply);
    dispatch();
  });
  const lost = (error: unknown): void => {
    if (threads[slot] !== thread) return;
    threads[slot] = undefined;
    const message = error instanceof Error ? error.message : String(error);
    // Only the job it was running fails; waiting jobs go to a fresh thread.
    if (thread.running) finishRunning({ id: thread.running.id, ok: false, error: `the compiler thread stopped: ${message}` });
    dispatch();
  };
  worker.on("error", lost);
  worker.on("exit", (code) => lost(new Error(`exit code ${code}`)));
  return thread;
}

/** Hands waiting jobs to idle threads, taking one from each queue in turn. */
function dispatch(): void {
  for (let slot = 0; slot < threadCount; slot += 1) {
    if (threads[slot]?.running) continue;
    const entry = takeNext();
    if (!entry) return;
    const thread = (threads[slot] ??= startThread(slot));
    const id = nextJobId++;
    const budget = setTimeout(() => overBudget(slot, thread, id), COMPILE_JOB_BUDGET_MS);
    budget.unref();
    thread.running = { id, entry, budget };
    thread.worker.ref();
    thread.worker.postMessage({ ...entry.job, id } satisfies CompileJob);
  }
}

/** A job past its budget: its thread is terminated (the next job gets a fresh one). */
function overBudget(slot: number, thread: CompilerThread, id: number): void {
  if (threads[slot] !== thread || thread.running?.id !== id) return;
  const { entry } = thread.running;
  threads[slot] = undefined;
  thread.running = undefined;
  void thread.worker.terminate();
  entry.settle({
    id,
    ok: false,
    error: `compiling took longer than ${COMPILE_JOB_BUDGET_MS / 1000} s, the most one source may take`,
  });
  dispatch();
}

/** Compile jobs one runtime may have running at once: with two threads, one is always left for the others. */
const RUNNING_PER_QUEUE = Math.max(1, threadCount - 1);

function runningOf(queue: string): number {
  let count = 0;
  for (const thread of threads) if (thread?.running?.entry.queue === queue) count += 1;
  return count;
}

function takeNext(): QueuedJob | undefined {
  for (const [queue, jobs] of queues) {
    if (runningOf(queue) >= RUNNING_PER_QUEUE) continue;
    const entry = jobs.shift();
    queues.delete(queue);
    // Re-inserted at the end: the next job comes from the next queue.
    if (jobs.length > 0) queues.set(queue, jobs);
    if (entry) return entry;
  }
  return undefined;
}

function compileOnThread(job: Omit<CompileJob, "id">, queue: string, signal: AbortSignal | undefined): Promise<CompileReply> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const waiting = queues.get(queue) ?? [];
  if (waiting.length >= MAX_QUEUED_PER_RUNTIME) return Promise.reject(new CompilerBusyError());
  return new Promise<CompileReply>((resolve, reject) => {
    const onAbort = (): void => {
      const jobs = queues.get(queue);
      const index = jobs?.indexOf(entry) ?? -1;
      if (index !== -1) {
        jobs!.splice(index, 1);
        if (jobs!.length === 0) queues.delete(queue);
        entry.settle({ aborted: signal!.reason });
        return;
      }
      // Running: stop the parse where it is; the thread is replaced for the next job.
      for (const [slot, thread] of threads.entries()) {
        if (thread?.running?.entry !== entry) continue;
        threads[slot] = undefined;
        clearTimeout(thread.running.budget);
        thread.running = undefined;
        void thread.worker.terminate();
        entry.settle({ aborted: signal!.reason });
        dispatch();
      }
    };
    const entry: QueuedJob = {
      job,
      queue,
      settle: (reply) => {
        signal?.removeEventListener("abort", onAbort);
        if ("aborted" in reply) reject(reply.aborted);
        else resolve(reply);
      },
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    waiting.push(entry);
    queues.set(queue, waiting);
    dispatch();
  });
}

function unwrap(reply: CompileReply): Extract<CompileReply, { ok: true }> {
  if (reply.ok) return reply;
  if ("syntaxError" in reply) throw new GuestSyntaxError(reply.syntaxError.message, reply.syntaxError.line, reply.syntaxError.column);
  if ("unsupportedScheme" in reply) throw new UnsupportedSchemeError(reply.unsupportedScheme);
  if ("unknownBuiltin" in reply) throw new UnknownBuiltinError(reply.unknownBuiltin);
  throw new GuestCompileError(`secure-exec: the guest source could not be compiled (${reply.error})`);
}

/**
 * The module a run loads for `source`. Throws GuestSyntaxError, UnsupportedSchemeError, GuestCompileError,
 * CompilerBusyError, what `resolveBare` throws, or the signal's reason.
 */
export async function compileGuest(source: string, options: GuestCompileOptions): Promise<string> {
  if (source.length <= INLINE_COMPILE_LIMIT || !COMPILER_SCRIPT) {
    return compileGuestModule(options.language === "ts" ? stripTypes(source) : source, { resolveBare: options.resolveBare });
  }
  const first = unwrap(await compileOnThread({ source, language: options.language }, options.queue, options.signal));
  const resolved: Record<string, string> = {};
  const unloadable: Record<string, string> = {};
  for (const specifier of first.specifiers) {
    let target: string | undefined;
    try {
      target = options.resolveBare(specifier, { dynamic: first.dynamicOnly.includes(specifier) });
    } catch (error) {
      // Only `import()` names it: the guest's import() rejects, where it can be caught.
      if (!(error instanceof ModuleNotFoundError) || !first.dynamicOnly.includes(specifier)) throw error;
      if (error instanceof PackageLoadError) unloadable[specifier] = error.message;
    }
    if (target !== undefined) resolved[specifier] = target;
  }
  if (Object.keys(resolved).length === 0 && Object.keys(unloadable).length === 0) return first.guestModule;
  const job = { source, language: options.language, resolved, unloadable };
  return unwrap(await compileOnThread(job, options.queue, options.signal)).guestModule;
}
