// Worker thread of runtime/codemode/code-parser.ts: normalises and syntax-checks large Code
// Mode code off the host's event loop (acorn takes ~0.5 s per MiB, two or three passes).
import { parentPort } from "node:worker_threads";
import { normalizeCode, syntaxErrorOf } from "./guest-source.js";

export interface ParseJob {
  id: number;
  code: string;
}

export type ParseReply = { id: number; ok: true; normalized: string; syntaxError?: string } | { id: number; ok: false; error: string };

parentPort?.on("message", (job: ParseJob) => {
  let reply: ParseReply;
  try {
    const normalized = normalizeCode(job.code);
    const syntaxError = syntaxErrorOf(job.code, normalized);
    reply = syntaxError === undefined ? { id: job.id, ok: true, normalized } : { id: job.id, ok: true, normalized, syntaxError };
  } catch (error) {
    reply = { id: job.id, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort!.postMessage(reply);
});
