// Runs guests on the edge: the Worker compiles the guest exactly as the Node host does and
// hands the same run message to the same supervisor, in-process, with its own LOADER.
// There is no process to kill here: the platform's CPU and memory limits end a runaway.
import supervisor from "../supervisor.js";
import type { SupervisorBindings } from "./edge-bindings.js";
import type { ExecOptions, RunResult } from "../../host/api/types.js";
import type { RunEngine } from "../../host/service/http-app.js";
import { compileGuestModule, GUEST_MODULE_NAME, GuestSyntaxError, sandboxModulesOf, syntaxErrorReport, usesVirtualFs } from "../../host/compile/guest-module.js";
import { isBareSpecifier, ModuleNotFoundError, UnsupportedSchemeError } from "../../host/compile/specifiers.js";
import { provideParser } from "../../host/compile/parser.js";
import * as acorn from "acorn";
import * as acornWalk from "acorn-walk";
import { OutputCapture } from "../../host/engine/output-capture.js";
import {
  buildRunMessage,
  EXIT_KILLED,
  exitCodeOf,
  fsChangesLimitsFor,
  GuestEventDecoder,
  GuestProtocolError,
  parseReturnValue,
} from "../../host/engine/supervisor-protocol.js";


// No Node module loader here: the bundle carries the parser.
provideParser({ acorn, acornWalk });
export interface EdgeRuntimeOptions {
  /** `process.env` of every run (a request's `env` is merged over it). */
  env: Record<string, string>;
  /** Cap on captured bytes per output channel per run. */
  outputBytes: number;
  /** Cap on the JSON of a run's `__return` value. */
  returnBytes: number;
  /** Bytes and files of each run's scratch filesystem (nothing persists between runs). */
  scratchFs: { bytes: number; files: number };
}

const DEFAULT_CWD = "/workspace";

interface EdgeOutcome {
  stdout: string;
  stderr: string;
  exitCode: number;
  returned?: { value: unknown };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

export class EdgeRuntime implements RunEngine {
  constructor(
    private readonly bindings: SupervisorBindings,
    private readonly options: EdgeRuntimeOptions,
  ) {}

  async exec(code: string, options: ExecOptions = {}): Promise<RunResult> {
    const { stdout, stderr, exitCode } = await this.execute(code, options);
    return { stdout, stderr, exitCode };
  }

  async run(code: string, options: ExecOptions = {}): Promise<RunResult> {
    const outcome = await this.execute(code, options);
    const result: RunResult = { stdout: outcome.stdout, stderr: outcome.stderr, exitCode: outcome.exitCode };
    if (outcome.exitCode === 0 && outcome.returned) result.value = outcome.returned.value;
    return result;
  }

  /** An empty filesystem with the working directory and `/tmp`, as a Node runtime starts. */
  private scratchFsSnapshot(cwd: string): unknown {
    const now = Date.now();
    const dirs: Record<string, { mtimeMs: number; mode: number }> = {};
    for (const dir of new Set([cwd, "/tmp"])) {
      const parts = dir.split("/").filter(Boolean);
      for (let depth = 1; depth <= parts.length; depth += 1) dirs[`/${parts.slice(0, depth).join("/")}`] = { mtimeMs: now, mode: 0o755 };
    }
    return { files: {}, dirs, limits: this.options.scratchFs, usage: { bytes: 0, files: Object.keys(dirs).length } };
  }

  private async execute(code: string, options: ExecOptions): Promise<EdgeOutcome> {
    const { signal } = options;
    if (signal?.aborted) throw abortReason(signal);
    const cwd = options.cwd ?? DEFAULT_CWD;
    let guestModule: string;
    try {
      // No packages here: a package import fails as in a Node runtime without nodeModules.
      guestModule = compileGuestModule(code, {
        resolveBare: (specifier) => {
          if (isBareSpecifier(specifier)) throw new ModuleNotFoundError(specifier, `file://${cwd}/${GUEST_MODULE_NAME}`);
          return undefined;
        },
      });
    } catch (error) {
      let stderr: string;
      if (error instanceof GuestSyntaxError) stderr = syntaxErrorReport(code, error);
      else if (error instanceof ModuleNotFoundError || error instanceof UnsupportedSchemeError) stderr = `${error.name}: ${error.message}\n`;
      else throw error;
      options.onStderr?.(new TextEncoder().encode(stderr));
      return { stdout: "", stderr, exitCode: 1 };
    }
    const runtimeModules = sandboxModulesOf(guestModule);
    const fsSnapshot = usesVirtualFs(runtimeModules) ? this.scratchFsSnapshot(cwd) : undefined;
    const isolateId = crypto.randomUUID();
    const message = buildRunMessage(
      {
        guestModule,
        runtimeModules,
        network: false,
        fsSnapshot,
        env: { ...this.options.env, ...options.env },
        cwd,
        stdin: options.stdin,
        outputBytes: this.options.outputBytes,
        returnBytes: this.options.returnBytes,
      },
      crypto.randomUUID(),
      isolateId,
    );

    const stdout = new OutputCapture("stdout", this.options.outputBytes, options.onStdout);
    const stderr = new OutputCapture("stderr", this.options.outputBytes, options.onStderr);
    let ended: ((outcome: EdgeOutcome) => void) | undefined;
    let failed: ((error: unknown) => void) | undefined;
    const outcome = new Promise<EdgeOutcome>((resolve, reject) => {
      ended = resolve;
      failed = reject;
    });
    let done = false;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    const stopGuest = (): void => {
      // The guest stops its own timers; the platform ends what ignores that.
      void supervisor
        .fetch(new Request("http://supervisor/deliver", { method: "POST", body: JSON.stringify({ kind: "terminate", isolateId }) }), this.bindings)
        .then((reply) => reply.body?.cancel())
        .catch(() => undefined)
        .finally(() => reader?.cancel().catch(() => undefined));
    };
    const finish = (exitCode: number, returned?: { value: unknown }): void => {
      if (done) return;
      done = true;
      ended!({ stdout: stdout.text(), stderr: stderr.text(), exitCode, returned });
    };
    // Armed before the guest starts: its first synchronous stretch runs inside the call below.
    const timer =
      options.timeout !== undefined
        ? setTimeout(() => {
            if (done) return;
            stderr.note(`secure-exec: time limit of ${options.timeout} ms exceeded; the guest was killed\n`);
            finish(EXIT_KILLED);
            stopGuest();
          }, options.timeout)
        : undefined;
    const onAbort = (): void => {
      if (done) return;
      done = true;
      failed!(abortReason(signal!));
      stopGuest();
    };
    signal?.addEventListener("abort", onAbort, { once: true });

    void (async () => {
      const decoder = new GuestEventDecoder({
        outputBytes: this.options.outputBytes,
        returnBytes: this.options.returnBytes,
        ...fsChangesLimitsFor(fsSnapshot),
      });
      try {
        const response = await supervisor.fetch(new Request("http://supervisor/run", { method: "POST", body: message }), this.bindings);
        if (!response.body) throw new Error(`the supervisor answered ${response.status} without a body`);
        reader = response.body.getReader();
        if (done) stopGuest();
        for (;;) {
          const next = await reader.read();
          if (next.done) break;
          for (const event of decoder.push(next.value)) {
            if (done) break;
            if (typeof event.o === "string") stdout.write(event.o);
            if (typeof event.e === "string") stderr.write(event.e);
            if (event.rs !== undefined) {
              stderr.note(`secure-exec: the value passed to __return ${event.rs}; the guest was killed\n`);
              finish(EXIT_KILLED);
              stopGuest();
            }
            if (event.rl !== undefined) {
              stderr.note(
                `secure-exec: the value passed to __return is ${Number(event.rl) || "too many"} bytes of JSON, over limits.returnBytes = ${this.options.returnBytes}; the guest was killed\n`,
              );
              finish(EXIT_KILLED);
              stopGuest();
            }
            if (event.x !== undefined) {
              const exitCode = exitCodeOf(event.x);
              finish(exitCode, exitCode === 0 ? parseReturnValue(event.r) : undefined);
            }
          }
        }
      } catch (error) {
        if (error instanceof GuestProtocolError && !done) {
          stderr.note(`secure-exec: ${error.message}; the guest was killed\n`);
          finish(EXIT_KILLED);
          stopGuest();
        }
        // The isolate went away mid-stream (e.g. a platform limit): reported below.
      }
      if (!done) {
        stderr.note("secure-exec: the guest's isolate ended without an exit (a platform limit may have stopped it); the guest was killed\n");
        finish(EXIT_KILLED);
      }
    })();

    try {
      return await outcome;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
