// Worker thread of the resident runner: prepares large snippets (acorn, up to three passes)
// off the host's event loop. Small snippets are prepared inline (resident-runner.ts).
import { parentPort } from "node:worker_threads";
import { locateSyntaxError, prepareSnippet, type SnippetReply } from "./resident-runner.js";

parentPort?.on("message", ({ id, job }: { id: number; job: { code: string; name: string } }) => {
  let reply: SnippetReply;
  try {
    const snippet = prepareSnippet(job.code);
    // Where a snippet that does not compile fails, found now rather than on the host later.
    reply = { ok: true, snippet, syntaxLocation: snippet.isAsync ? "" : locateSyntaxError(job.code, job.name) };
  } catch (error) {
    reply = { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort!.postMessage({ id, reply });
});
