// Worker thread of host/compile/guest-compiler.ts: parses large guest sources off the host's event
// loop. Package specifiers are resolved on the host (it owns the bundler), so a first pass
// reports them and, if any resolve, a second pass rewrites them from the host's map.
import { parentPort } from "node:worker_threads";
import { compileGuestModule, GuestSyntaxError } from "./guest-module.js";
import { PackageLoadError, UnknownBuiltinError } from "./specifiers.js";
import { stripTypes } from "./typescript.js";
import { UnsupportedSchemeError } from "./specifiers.js";

export interface CompileJob {
  id: number;
  source: string;
  language: "js" | "ts";
  /** Specifier → module name, from the host; absent on the first pass. */
  resolved?: Record<string, string>;
  /** Packages only `import()` names that could not be loaded: specifier → the load error's message. */
  unloadable?: Record<string, string>;
}

export type CompileReply =
  | { id: number; ok: true; guestModule: string; specifiers: string[]; dynamicOnly: string[] }
  | { id: number; ok: false; syntaxError: { message: string; line: number; column: number } }
  | { id: number; ok: false; unsupportedScheme: string }
  | { id: number; ok: false; unknownBuiltin: string }
  | { id: number; ok: false; error: string };

parentPort?.on("message", (job: CompileJob) => {
  let reply: CompileReply;
  try {
    const specifiers = new Set<string>();
    const staticSpecifiers = new Set<string>();
    const source = job.language === "ts" ? stripTypes(job.source) : job.source;
    const guestModule = compileGuestModule(source, {
      resolveBare: (specifier, how) => {
        specifiers.add(specifier);
        if (!how.dynamic) staticSpecifiers.add(specifier);
        const unloadable = job.unloadable?.[specifier];
        if (unloadable !== undefined) throw new PackageLoadError(specifier, new Error(unloadable));
        return job.resolved?.[specifier];
      },
    });
    const dynamicOnly = [...specifiers].filter((specifier) => !staticSpecifiers.has(specifier));
    reply = { id: job.id, ok: true, guestModule, specifiers: [...specifiers], dynamicOnly };
  } catch (error) {
    reply =
      error instanceof GuestSyntaxError
        ? { id: job.id, ok: false, syntaxError: { message: error.message, line: error.line, column: error.column } }
        : error instanceof UnsupportedSchemeError
          ? { id: job.id, ok: false, unsupportedScheme: error.specifier }
        : error instanceof UnknownBuiltinError
          ? { id: job.id, ok: false, unknownBuiltin: error.message.replace("No such built-in module: ", "") }
          : { id: job.id, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort!.postMessage(reply);
});
