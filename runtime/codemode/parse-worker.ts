// Worker thread of runtime/codemode/code-parser.ts: normalises and syntax-checks large Code
// Mode code off the host's event loop (acorn takes ~0.5 s per MiB, two or three passes).
import { parentPort } from "node:worker_threads";
import { normalizeCode, syntaxErrorOf } from "./guest-source.js";

export interface PreparedCode {
  normalized: string;
  syntaxError?: string;
}

export function prepareCodeInline(code: string): PreparedCode {
  const normalized = normalizeCode(code);
  const syntaxError = syntaxErrorOf(code, normalized);
  return syntaxError === undefined ? { normalized } : { normalized, syntaxError };
}

export type ParseReply = { ok: true; prepared: PreparedCode } | { ok: false; error: string };

parentPort?.on("message", ({ id, job }: { id: number; job: string }) => {
  let reply: ParseReply;
  try {
    reply = { ok: true, prepared: prepareCodeInline(job) };
  } catch (error) {
    reply = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort!.postMessage({ id, reply });
});
