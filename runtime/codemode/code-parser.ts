// Normalising and syntax-checking Code Mode code. The code is the model's (attacker-
// controlled, up to MAX_CODE_CHARS), and the host's event loop serves every runtime and
// tenant: small code is parsed inline, larger code on one worker thread shared by every
// executor of the process, one job at a time, each bounded in time (the thread is
// terminated and replaced past it).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { packageRoot } from "../../host/package-files.js";
import { normalizeCode, syntaxErrorOf } from "./guest-source.js";
import type { ParseJob, ParseReply } from "./parse-worker.js";

/** Code up to this many characters is parsed on the calling thread (a few ms at most). */
export const INLINE_PARSE_LIMIT = 16 * 1024;
/** Large codes waiting for the parser thread; more are refused. */
export const MAX_QUEUED_PARSES = 32;
const WORKER_HEAP_MB = 512;

export interface PreparedCode {
  normalized: string;
  syntaxError?: string;
}

interface Waiting {
  job: ParseJob;
  timeoutMs: number;
  settle(reply: ParseReply): void;
}

/** Without a build (running from source) everything is parsed inline. */
const PARSE_SCRIPT = (() => {
  const file = join(packageRoot, "dist", "runtime", "codemode", "parse-worker.js");
  return existsSync(file) ? pathToFileURL(file) : undefined;
})();
const waiting: Waiting[] = [];
let worker: Worker | undefined;
let running: { entry: Waiting; timer: NodeJS.Timeout } | undefined;
let nextId = 1;

function inline(code: string): PreparedCode {
  const normalized = normalizeCode(code);
  const syntaxError = syntaxErrorOf(code, normalized);
  return syntaxError === undefined ? { normalized } : { normalized, syntaxError };
}

/** The normalised code and its syntax error, if any; rejects when the parser is busy or the parse overran `timeoutMs`. */
export async function prepareCode(code: string, timeoutMs: number): Promise<PreparedCode> {
  if (code.length <= INLINE_PARSE_LIMIT || PARSE_SCRIPT === undefined) return inline(code);
  if (waiting.length >= MAX_QUEUED_PARSES) {
    throw new Error(`${MAX_QUEUED_PARSES} large codes are already waiting to be parsed; try again later`);
  }
  const reply = await new Promise<ParseReply>((resolve) => {
    waiting.push({ job: { id: nextId++, code }, timeoutMs, settle: resolve });
    dispatch();
  });
  if (!reply.ok) throw new Error(reply.error);
  return reply.syntaxError === undefined ? { normalized: reply.normalized } : { normalized: reply.normalized, syntaxError: reply.syntaxError };
}

function ensureWorker(): Worker {
  if (worker) return worker;
  const started = new Worker(PARSE_SCRIPT!, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  started.unref();
  started.on("message", (reply: ParseReply) => {
    if (!running || running.entry.job.id !== reply.id) return;
    finish(reply);
  });
  const lost = (error: unknown) => {
    if (worker !== started) return;
    worker = undefined;
    finish({ id: running?.entry.job.id ?? 0, ok: false, error: `the code could not be parsed (${error instanceof Error ? error.message : String(error)})` });
  };
  started.on("error", lost);
  started.on("exit", (code) => lost(new Error(`the parser thread exited with code ${code}`)));
  worker = started;
  return started;
}

function finish(reply: ParseReply): void {
  const done = running;
  running = undefined;
  if (done) {
    clearTimeout(done.timer);
    done.entry.settle(reply);
  }
  worker?.unref();
  dispatch();
}

function dispatch(): void {
  if (running) return;
  const entry = waiting.shift();
  if (!entry) return;
  const thread = ensureWorker();
  const timer = setTimeout(() => {
    // A parse past its time: the thread goes (terminate is the only way to stop acorn).
    const stuck = worker;
    worker = undefined;
    finish({ id: entry.job.id, ok: false, error: `parsing the code took longer than ${entry.timeoutMs} ms` });
    void stuck?.terminate();
  }, entry.timeoutMs);
  timer.unref();
  running = { entry, timer };
  thread.ref();
  thread.postMessage(entry.job);
}
