// Normalising and syntax-checking Code Mode code. The code is the model's (attacker-
// controlled, up to MAX_CODE_CHARS) and the host's event loop serves every runtime and
// tenant: small code is parsed inline, larger code on one parser thread shared by every
// executor of the process, one job at a time, each bounded by the execution's timeout.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ParseThread } from "../../host/compile/parse-thread.js";
import { packageRoot } from "../../host/package-files.js";
import { prepareCodeInline, type ParseReply, type PreparedCode } from "./parse-worker.js";

/** Code up to this many characters is parsed on the calling thread (a few ms at most). */
export const INLINE_PARSE_LIMIT = 16 * 1024;

/** Without a build (running from source) everything is parsed inline. */
const PARSE_SCRIPT = (() => {
  const file = join(packageRoot, "dist", "runtime", "codemode", "parse-worker.js");
  return existsSync(file) ? pathToFileURL(file) : undefined;
})();
let thread: ParseThread<string, ParseReply> | undefined;

/** The normalised code and its syntax error, if any; rejects when the parser is busy or the parse overran `timeoutMs`. */
export async function prepareCode(code: string, timeoutMs: number): Promise<PreparedCode> {
  if (code.length <= INLINE_PARSE_LIMIT || PARSE_SCRIPT === undefined) return prepareCodeInline(code);
  thread ??= new ParseThread<string, ParseReply>(PARSE_SCRIPT, { heapMb: 512, maxWaiting: 32, what: "parsing the code" });
  let reply: ParseReply;
  try {
    reply = await thread.run(code, timeoutMs);
  } catch (error) {
    // The executor adds its own prefix.
    throw new Error(String(error instanceof Error ? error.message : error).replace(/^secure-exec: /, ""));
  }
  if (!reply.ok) throw new Error(reply.error);
  return reply.prepared;
}
