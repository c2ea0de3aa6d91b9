// Resident runner: one live guest that evaluates snippet after snippet (globals persist).
//
// The guest is a static worker (worker-templates/resident-worker.js) with Miniflare's
// `unsafeEvalBinding`, alone in a workerd process of its own, so a timeout, a heap bomb or
// process.exit ends that runner and nothing else. The host reaches it over the process's
// direct socket with one long-lived WebSocket (undici): one message per snippet out, one
// NDJSON message back when it ends. One HTTP request per snippet would be about as fast, but
// workerd keeps ~2 KB per request it served, which would end a busy runner on its memory cap
// after ~60,000 snippets; a WebSocket keeps it flat. See docs/resident-runner.md.
import { readStatusKb } from "./sandbox-process.js";
import { IdleCpuWatch, SANDBOX_PROCESS_IDLE, type IdleCpuThresholds } from "./idle-cpu-watch.js";
import { ParseThread } from "../compile/parse-thread.js";
import { readFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { builtHostModule, templatePath } from "../package-files.js";
import { WebSocket } from "undici";
import type { Node } from "acorn";
import { acorn, acornWalk } from "../compile/parser.js";
import { z } from "zod";
import type { ResidentExecOptions, ResidentRunner, ResidentRunnerOptions, RunResult } from "../api/types.js";
import { parseOptions } from "../api/options.js";
import { launchStaticWorkerd, type WorkerdExit, type WorkerdHandle } from "./workerd-launcher.js";
import { cellDefinition } from "./cell-definition.js";
import { OutputCapture } from "./output-capture.js";
import { exitCodeOf, MAX_EVENT_BYTES, parseReturnValue, returnShapeFor, streamBytesFor } from "./supervisor-protocol.js";
import { JsonShapeScanner, jsonShapeProblem } from "./json-shape.js";

export interface ResidentRunnerSettings extends ResidentRunnerOptions {
  env: Record<string, string>;
  cwd: string;
  memoryMb: number;
  outputBytes: number;
  /** Cap on the JSON of a snippet's value (`limits.returnBytes`). */
  returnBytes: number;
}

/** A resident runner with its diagnostics (not part of the public `ResidentRunner` type). */
export interface DiagnosableResidentRunner extends ResidentRunner {
  /** Pid of the runner's workerd process (diagnostic; the process dies with the runner). */
  processId(): number;
}

const EXIT_KILLED = 137;
const WORKER_MODULE = "resident-worker.js";
const CONFIG_MODULE = "resident-config.txt";
const EVAL_BINDING = "UNSAFE_EVAL";
/** Same words as a dynamic worker with `globalOutbound: null`. */
const NO_NETWORK_MESSAGE =
  "This worker is not permitted to access the internet via global functions like fetch(). It must use capabilities (such as bindings in 'env') to talk to the outside world.";
/** Room above `memoryMb` for the runner's own code, compiled snippets and the channel. */
const MEMORY_SLACK_MB = 32;
const WARMUP_SNIPPETS = [
  'console.log("%s %o", "warm", { up: [1] }); process.stdout.write("."); console.error("warm"); void 0',
  "await new Promise((resolve) => setTimeout(resolve, 0)); void 0",
  '__return({ warm: true }); ({ warm: [1, "x"] })',
];
const WARMUP_ROUNDS = 3;
const WARMUP_TIMEOUT_MS = 10_000;
/**
 * Between execs a runner uses no CPU at all: a spin is caught as in a sandbox process; 5 % of
 * a core over two 2 s windows is a guest's work too (long windows even out the ticks), and so
 * is 5 % over 10 s (bursts that rest between the shorter windows).
 */
const RESIDENT_IDLE: readonly IdleCpuThresholds[] = [
  SANDBOX_PROCESS_IDLE,
  { sampleMs: 2_000, share: 0.05, samples: 2 },
  { sampleMs: 10_000, share: 0.05, samples: 1 },
];
/** A broken channel with a live process: how long to wait for the process to report its death. */
const CHANNEL_LOSS_GRACE_MS = 250;
/** How often (in execs) the host looks at the process's data size. */
const MEMORY_CHECK_EVERY = 64;
/** workerd refuses WebSocket messages above 32 MiB; a snippet must fit in one. */
const MAX_SNIPPET_BYTES = 32 * 1024 * 1024 - 4096;

const residentExecOptionsSchema = z.strictObject({
  timeout: z.number().positive().finite().optional(),
});
const residentRunnerOptionsSchema = z.strictObject({
  timeout: z.number().positive().finite().optional(),
});

/** `exec` while another `exec` of the same runner is in flight. */
export class ResidentRunnerBusyError extends Error {
  constructor() {
    super(
      "secure-exec: this resident runner is already running a snippet; a resident runner runs one exec at a time (await the previous exec first)",
    );
    this.name = "ResidentRunnerBusyError";
  }
}

/** `exec` on a runner that was killed, exited or disposed. */
export class ResidentRunnerEndedError extends Error {
  constructor(readonly reason: string) {
    super(`secure-exec: this resident runner ${reason}; create a new one with createResidentRunner()`);
    this.name = "ResidentRunnerEndedError";
  }
}


/** Guest-side modules the runner's worker shares with every run's prelude. */
const SHARED_MODULES = {
  "secure-exec-console.js": "node/guest-console.js",
  "secure-exec-process-io.js": "node/guest-process-io.js",
  "secure-exec-bridge.js": "guest-bridge.js",
} as const;

let workerSources: { main: string; shared: Record<string, string> } | undefined;
function loadWorkerSources(): { main: string; shared: Record<string, string> } {
  workerSources ??= {
    main: readFileSync(templatePath(WORKER_MODULE), "utf8"),
    shared: Object.fromEntries(Object.entries(SHARED_MODULES).map(([name, file]) => [name, readFileSync(templatePath(file), "utf8")])),
  };
  return workerSources;
}

export async function startResidentRunner(settings: ResidentRunnerSettings): Promise<ResidentRunner> {
  const { env, cwd, memoryMb, outputBytes, returnBytes, ...runnerOptions } = settings;
  const options = parseOptions(residentRunnerOptionsSchema, runnerOptions, "createResidentRunner option");
  const sources = loadWorkerSources();
  const handle = await launchStaticWorkerd({
    mainModule: { name: WORKER_MODULE, source: sources.main },
    esModules: sources.shared,
    textModules: {
      [CONFIG_MODULE]: JSON.stringify({ env, cwd, outputBytes, returnBytes }),
    },
    compatibilityDate: cellDefinition.compatibilityDate,
    // Messages are small and local: permessage-deflate would only cost CPU on both ends.
    compatibilityFlags: ["nodejs_compat", "no_web_socket_compression"],
    unsafeEvalBinding: EVAL_BINDING,
    denyNetworkMessage: NO_NETWORK_MESSAGE,
  });
  let runner: ResidentGuest;
  try {
    runner = new ResidentGuest(handle, await openSession(handle), { env, cwd, memoryMb, outputBytes, returnBytes, timeout: options.timeout });
  } catch (error) {
    await handle.kill();
    throw error;
  }
  try {
    await runner.warmUp();
    await runner.applyMemoryLimit();
    runner.watchIdleCpu();
  } catch (error) {
    await runner.dispose();
    throw error;
  }
  return runner;
}

/**
 * One event of the runner's worker. Guest code shares the worker's isolate (it can, e.g.,
 * give every object a `toJSON`), so nothing is believed before it passes this schema.
 */
const residentEventSchema = z.strictObject({
  o: z.string().optional(),
  e: z.string().optional(),
  /** A piece of the snippet's value (JSON text), sent before its exit event. */
  rp: z.string().optional(),
  /** The value was this many bytes, over `limits.returnBytes`. */
  rl: z.number().optional(),
  x: z.number().int().optional(),
  r: z.string().optional(),
  end: z.literal(true).optional(),
});
type GuestEvent = z.infer<typeof residentEventSchema>;

/** A message the runner's worker could not have sent: the runner is killed. */
class ResidentProtocolError extends Error {}

function parseResidentEvent(line: string): GuestEvent {
  // Events are flat: nesting here could only make the parse expensive.
  const problem = jsonShapeProblem(line, { maxDepth: 2, maxContainers: 2 });
  if (problem) throw new ResidentProtocolError(`an event that ${problem}`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ResidentProtocolError("an event that is not JSON");
  }
  const parsed = residentEventSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ResidentProtocolError(`an event with a bad ${issue.path.map(String).join(".") || "shape"}: ${issue.message}`);
  }
  return parsed.data;
}

interface InFlightExec {
  /** Ends the exec with 137 and the note on stderr; the runner ends with `reason`. */
  kill(note: string, reason: string): void;
  /** One message of NDJSON events from the worker. */
  onMessage(data: unknown): void;
}

/** The runner's one WebSocket to its worker. */
async function openSession(handle: WorkerdHandle): Promise<WebSocket> {
  const socket = new WebSocket(`ws://${handle.url.host}/session`);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error("secure-exec: cannot open a session with the resident runner's process")), {
      once: true,
    });
  });
  return socket;
}

class ResidentGuest implements DiagnosableResidentRunner {
  private busy = false;
  private endReason: string | undefined;
  private inFlight: InFlightExec | undefined;
  private snippets = 0;
  private disposing: Promise<void> | undefined;
  /** Set once the RLIMIT_DATA cap is in place (sizes in KiB). */
  private memoryCap: { limitKb: number; idleKb: number; collectAtKb: number; rebase: boolean } | undefined;
  private execsSinceMemoryCheck = 0;
  /** Between execs no guest code should run: a runner that burns CPU then is killed. */
  private readonly idleWatch: IdleCpuWatch;

  constructor(
    private readonly handle: WorkerdHandle,
    private readonly socket: WebSocket,
    private readonly settings: ResidentRunnerSettings,
  ) {
    this.idleWatch = new IdleCpuWatch(handle.pid, { onBurning: () => this.killEscapedGuest() }, RESIDENT_IDLE);
    void handle.exited.then((exit) => this.onProcessExit(exit));
    socket.addEventListener("message", (event) => this.inFlight?.onMessage(event.data));
    socket.addEventListener("close", () => this.onSessionClosed());
  }

  processId(): number {
    return this.handle.pid;
  }

  async exec(code: string, options?: ResidentExecOptions): Promise<RunResult> {
    if (typeof code !== "string") throw new TypeError("secure-exec: code must be a string");
    const timeout =
      options === undefined
        ? this.settings.timeout
        : (parseOptions(residentExecOptionsSchema, options, "resident exec option").timeout ?? this.settings.timeout);
    if (this.endReason !== undefined) throw new ResidentRunnerEndedError(this.endReason);
    if (this.busy) throw new ResidentRunnerBusyError();
    this.busy = true;
    try {
      this.snippets += 1;
      const name = `snippet-${this.snippets}`;
      // Small snippets are prepared in this turn (nothing can end the runner in between).
      let prepared: PreparedSnippetWithLocation | undefined;
      if (code.length > INLINE_SNIPPET_LIMIT && SNIPPET_SCRIPT !== undefined) {
        prepared = await prepareSnippetOffThread(code, name, timeout);
        if (this.endReason !== undefined) throw new ResidentRunnerEndedError(this.endReason);
      }
      return await this.evaluate(code, name, timeout, prepared);
    } finally {
      this.busy = false;
      this.watchMemory();
    }
  }

  watchIdleCpu(): void {
    if (this.endReason === undefined) this.idleWatch.start();
  }

  private killEscapedGuest(): void {
    if (this.endReason !== undefined || this.inFlight) return;
    this.end("was killed: guest code kept running between execs");
    void this.handle.kill();
  }

  async dispose(): Promise<void> {
    this.disposing ??= (async () => {
      this.idleWatch.stop();
      this.end("was disposed");
      this.inFlight?.kill("secure-exec: the resident runner was disposed; the guest was killed\n", "was disposed");
      await this.handle.kill();
      this.closeSocket();
    })();
    return this.disposing;
  }

  /** The first snippets pay one-off compilation (eval, node:util, node:stream) before any guest arrives. */
  async warmUp(): Promise<void> {
    for (let round = 0; round < WARMUP_ROUNDS; round += 1) {
      for (const snippet of WARMUP_SNIPPETS) {
        const result = await this.evaluate(snippet, "warmup", WARMUP_TIMEOUT_MS);
        if (result.exitCode !== 0) {
          throw new Error(`secure-exec: the resident runner failed to start: ${result.stderr.trim() || `exit code ${result.exitCode}`}`);
        }
      }
    }
  }

  /** Caps the process's writable private memory (RLIMIT_DATA), as for sandbox processes: a heap bomb aborts only it. */
  async applyMemoryLimit(): Promise<void> {
    const idleKb = readStatusKb(this.handle.pid, "VmData") ?? 0;
    const limitBytes = idleKb * 1024 + (this.settings.memoryMb + MEMORY_SLACK_MB) * 1024 * 1024;
    await new Promise<void>((resolve) => {
      execFile("prlimit", [`--pid=${this.handle.pid}`, `--data=${limitBytes}:${limitBytes}`], () => resolve());
    });
    if (idleKb > 0 && readDataLimit(this.handle.pid) === limitBytes) {
      const limitKb = limitBytes / 1024;
      this.memoryCap = { limitKb, idleKb, collectAtKb: idleKb + (limitKb - idleKb) / 2, rebase: false };
    }
  }

  /**
   * Garbage V8 has not collected yet (compiled snippets, mostly) counts against the cap; past
   * half of it the runner asks V8 to collect. The next threshold starts from what is left after
   * that, so a guest whose live data fills the cap still meets it.
   */
  private watchMemory(): void {
    const cap = this.memoryCap;
    if (!cap || this.endReason !== undefined || ++this.execsSinceMemoryCheck < MEMORY_CHECK_EVERY) return;
    this.execsSinceMemoryCheck = 0;
    const dataKb = readStatusKb(this.handle.pid, "VmData");
    if (dataKb === undefined) return;
    const headroomKb = cap.limitKb - cap.idleKb;
    if (cap.rebase) {
      cap.rebase = false;
      cap.collectAtKb = Math.max(cap.idleKb + headroomKb / 2, dataKb + headroomKb / 4);
    }
    if (dataKb < cap.collectAtKb) return;
    cap.rebase = true;
    // The collection is the host's work, not a guest's.
    this.idleWatch.idle();
    try {
      this.socket.send(`g${cap.limitKb * 1024}`);
    } catch {
      // the session is gone; sessionBroken handles it
    }
  }

  private end(reason: string): void {
    this.endReason ??= reason;
  }

  private evaluate(code: string, name: string, timeoutMs: number | undefined, prepared?: PreparedSnippetWithLocation): Promise<RunResult> {
    const snippet = prepared?.snippet ?? prepareSnippet(code);
    const message = `${snippet.isAsync ? "a" : "s"}${name}\n${snippet.source}`;
    if (message.length > MAX_SNIPPET_BYTES / 3 && Buffer.byteLength(message) > MAX_SNIPPET_BYTES) {
      return Promise.reject(new RangeError(`secure-exec: the snippet is too large for a resident runner (at most ${MAX_SNIPPET_BYTES} bytes)`));
    }
    const stdout = new OutputCapture("stdout", this.settings.outputBytes);
    const stderr = new OutputCapture("stderr", this.settings.outputBytes);
    const { outputBytes, returnBytes } = this.settings;
    return new Promise<RunResult>((resolve) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      // Everything that can fail is settled before the exec counts as done.
      const finish = (exitCode: number, returned?: { value: unknown }): void => {
        if (done) return;
        let stderrText = stderr.text();
        if (exitCode === 1 && /^SyntaxError: [^\n]*\n$/.test(stderrText)) stderrText = (prepared?.syntaxLocation ?? locateSyntaxError(code, name)) + stderrText;
        const result: RunResult = { stdout: stdout.text(), stderr: stderrText, exitCode };
        if (exitCode === 0 && returned) result.value = returned.value;
        done = true;
        if (timer) clearTimeout(timer);
        if (this.inFlight === inFlight) this.inFlight = undefined;
        this.idleWatch.idle();
        resolve(result);
      };
      const sent = { o: 0, e: 0 };
      let streamed = 0;
      const valueParts: string[] = [];
      let valueBytes = 0;
      const valueShape = new JsonShapeScanner(returnShapeFor(returnBytes));
      const overReturnLimit = (bytes: number): void =>
        inFlight.kill(
          `secure-exec: the snippet's value is ${bytes} bytes of JSON, over limits.returnBytes = ${returnBytes}; the resident runner was killed\n`,
          `was killed: a snippet's value exceeded limits.returnBytes = ${returnBytes}`,
        );
      const handleEvent = (event: GuestEvent, lineLength: number): void => {
        for (const channel of ["o", "e"] as const) {
          const text = event[channel];
          if (text === undefined) continue;
          sent[channel] += lineLength;
          if (sent[channel] > 6 * outputBytes + MAX_EVENT_BYTES) {
            throw new ResidentProtocolError(`more ${channel === "o" ? "stdout" : "stderr"} than limits.outputBytes allows`);
          }
          (channel === "o" ? stdout : stderr).write(text);
        }
        if (event.rl !== undefined) return overReturnLimit(event.rl);
        for (const piece of [event.rp, event.x !== undefined ? event.r : undefined]) {
          if (piece === undefined) continue;
          valueBytes += Buffer.byteLength(piece);
          if (valueBytes > returnBytes) return overReturnLimit(valueBytes);
          const problem = valueShape.push(piece);
          if (problem) {
            return inFlight.kill(
              `secure-exec: the snippet's value ${problem}; the resident runner was killed\n`,
              `was killed: a snippet's value ${problem}`,
            );
          }
          valueParts.push(piece);
        }
        if (event.x === undefined) return;
        let returned: { value: unknown } | undefined;
        if (valueParts.length > 0) {
          returned = parseReturnValue(valueParts.join(""));
          if (!returned) throw new ResidentProtocolError("a value that is not JSON");
        }
        if (event.end) {
          // process.exit ends the runner; its process goes at once.
          this.end(`has exited: the guest called process.exit(${event.x})`);
          void this.handle.kill();
        }
        finish(exitCodeOf(event.x), returned);
      };
      const inFlight: InFlightExec = {
        kill: (note, reason) => {
          if (done) return;
          this.end(reason);
          stderr.note(note);
          finish(EXIT_KILLED);
          void this.handle.kill();
        },
        onMessage: (data) => {
          try {
            if (typeof data !== "string") throw new ResidentProtocolError("a binary message");
            streamed += data.length;
            if (streamed > streamBytesFor({ outputBytes, returnBytes })) throw new ResidentProtocolError("more events than its limits allow an exec");
            let start = 0;
            while (!done && start < data.length) {
              const newline = data.indexOf("\n", start);
              if (newline === -1) throw new ResidentProtocolError("a message that does not end its last line");
              if (newline - start > MAX_EVENT_BYTES) throw new ResidentProtocolError(`an event of more than ${MAX_EVENT_BYTES} characters`);
              if (newline > start) handleEvent(parseResidentEvent(data.slice(start, newline)), newline - start);
              start = newline + 1;
            }
          } catch (error) {
            const what = error instanceof ResidentProtocolError ? error.message : "a message the host could not handle";
            inFlight.kill(
              `secure-exec: the resident runner sent ${what}; the runner was killed\n`,
              `was killed: it broke the runner protocol (it sent ${what})`,
            );
          }
        },
      };
      this.inFlight = inFlight;
      this.idleWatch.busy();
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            inFlight.kill(
              `secure-exec: time limit of ${timeoutMs} ms exceeded; the resident runner was killed\n`,
              `was killed: the time limit of ${timeoutMs} ms was exceeded`,
            ),
          timeoutMs,
        );
      }
      try {
        this.socket.send(message);
      } catch {
        this.sessionBroken();
      }
    });
  }

  /** The session failed while the process may live: a dead process reports itself first. */
  private sessionBroken(): void {
    if (this.endReason !== undefined) return;
    const grace = setTimeout(() => {
      if (this.endReason !== undefined) return;
      const reason = "was killed: its session with the host broke";
      if (this.inFlight) this.inFlight.kill("secure-exec: the resident runner stopped answering; the runner was killed\n", reason);
      this.end(reason);
      void this.handle.kill();
    }, CHANNEL_LOSS_GRACE_MS);
    grace.unref();
  }

  private onSessionClosed(): void {
    this.sessionBroken();
  }

  private closeSocket(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }

  private onProcessExit(exit: WorkerdExit): void {
    const outOfMemory = /out of memory|allocation failed|OOM/i.test(exit.stderrTail);
    const reason = outOfMemory
      ? `was killed: its process ran out of memory (limits.memoryMb = ${this.settings.memoryMb})`
      : "was killed: its process exited unexpectedly";
    const what = outOfMemory
      ? `the resident runner's process ran out of memory (limits.memoryMb = ${this.settings.memoryMb})`
      : "the resident runner's process exited unexpectedly";
    this.idleWatch.stop();
    this.inFlight?.kill(`secure-exec: ${what}; the guest was killed\n`, reason);
    this.end(reason);
    this.closeSocket();
    void this.handle.kill();
  }
}

function readDataLimit(pid: number): number | undefined {
  try {
    const match = /Max data size\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}


/**
 * V8 reports a snippet that does not compile without saying where; acorn finds the spot,
 * shown the way Node shows it (`snippet-3:1`, the line, a caret).
 */
export function locateSyntaxError(code: string, name: string): string {
  try {
    acorn().parse(code, { ecmaVersion: "latest", sourceType: "script", allowHashBang: true, allowAwaitOutsideFunction: true });
    return "";
  } catch (error) {
    const location = (error as { loc?: { line: number; column: number } }).loc;
    if (!location) return "";
    const sourceLine = code.split("\n")[location.line - 1] ?? "";
    return `${name}:${location.line}\n${sourceLine}\n${" ".repeat(location.column)}^\n\n`;
  }
}

// ---------------------------------------------------------------------------------------
// Large snippets are prepared off the host's event loop

/** Snippets up to this many characters are prepared inline (a few ms at most). */
export const INLINE_SNIPPET_LIMIT = 16 * 1024;
/** Without a build (running from source) snippets are prepared inline. */
const SNIPPET_SCRIPT = builtHostModule("engine/resident-snippet-worker.js");
let snippetThread: ParseThread<{ code: string; name: string }, SnippetReply> | undefined;

export interface PreparedSnippetWithLocation {
  snippet: PreparedSnippet;
  /** Where the snippet fails to compile, if known already ("" when it compiles). */
  syntaxLocation?: string;
}

export type SnippetReply = { ok: true; snippet: PreparedSnippet; syntaxLocation: string } | { ok: false; error: string };

/**
 * A snippet's source for the eval binding. The snippet is the client's (up to the HTTP body
 * cap or MCP's 1 MiB) and acorn takes ~0.4 s per MiB on it; the host's event loop serves
 * every runtime and tenant, so large snippets are parsed on a worker thread.
 */
async function prepareSnippetOffThread(code: string, name: string, timeoutMs: number | undefined): Promise<PreparedSnippetWithLocation> {
  snippetThread ??= new ParseThread(SNIPPET_SCRIPT!, { heapMb: 512, maxWaiting: 64, what: "preparing the snippet" });
  const reply = await snippetThread.run({ code, name }, timeoutMs ?? 60_000);
  if (!reply.ok) throw new Error(`secure-exec: the snippet could not be prepared: ${reply.error}`);
  return { snippet: reply.snippet, syntaxLocation: reply.syntaxLocation };
}

// ---------------------------------------------------------------------------------------
// Snippets with top-level await

export interface PreparedSnippet {
  /** Script source for the eval binding. */
  source: string;
  /** The source evaluates to a promise of the snippet's completion value. */
  isAsync: boolean;
}

type AnyNode = Node & { type: string; [key: string]: unknown };

interface Edit {
  start: number;
  end: number;
  text: string;
}

/**
 * A snippet is evaluated as a classic script, so its top-level `var`, `let`, `const`,
 * `function` and `class` declarations persist as globals, and its completion value is the
 * value of its last expression. A script cannot `await`; a snippet that does is rewritten
 * (like Node's REPL does): declarations are hoisted out as globals and the rest runs in an
 * async arrow function whose result is the last expression statement. Line numbers stay.
 */
export function prepareSnippet(snippet: string): PreparedSnippet {
  const code = routeImports(snippet);
  if (!code.includes("await")) return { source: code, isAsync: false };
  const options = { ecmaVersion: "latest", sourceType: "script", allowHashBang: true } as const;
  try {
    acorn().parse(code, options);
    return { source: code, isAsync: false };
  } catch {
    // try again with top-level await
  }
  let program: AnyNode;
  try {
    program = acorn().parse(code, { ...options, allowAwaitOutsideFunction: true }) as unknown as AnyNode;
  } catch {
    // Not valid either way: V8 reports the syntax error in its own words.
    return { source: code, isAsync: false };
  }
  return { source: rewriteTopLevelAwait(code, program), isAsync: true };
}

/** What each `import(` of a snippet calls instead: the runner's checked resolver (resident-worker.js). */
const RESIDENT_IMPORT = "__secureExecImport";

/**
 * Every `import(x)` of the snippet calls the runner's resolver: workerd's own would load the
 * runner's modules (they sit beside the snippet) and resolves `node:/../x` as `x`. Same
 * length per line; a snippet acorn cannot parse is left to V8, which reports it.
 */
function routeImports(code: string): string {
  if (!code.includes("import")) return code;
  let program: Node;
  try {
    program = acorn().parse(code, { ecmaVersion: "latest", sourceType: "script", allowHashBang: true, allowAwaitOutsideFunction: true });
  } catch {
    return code;
  }
  const starts: number[] = [];
  acornWalk().simple(program, { ImportExpression: (node) => void starts.push(node.start) });
  // One pass over the text: a snippet may hold a hundred thousand import() calls.
  const parts: string[] = [];
  let from = 0;
  for (const start of starts.sort((a, b) => a - b)) {
    parts.push(code.slice(from, start), RESIDENT_IMPORT);
    from = start + "import".length;
  }
  parts.push(code.slice(from));
  return parts.join("");
}

function rewriteTopLevelAwait(code: string, program: AnyNode): string {
  const varNames = new Set<string>();
  const letNames = new Set<string>();
  const functionNames: string[] = [];
  const edits: Edit[] = [];
  const text = (node: AnyNode): string => code.slice(node.start, node.end);

  /** `a = (init), {b} = (init)` for the declarators that have an initialiser. */
  const assignments = (declaration: AnyNode, names: Set<string>): string[] => {
    const parts: string[] = [];
    for (const declarator of declaration.declarations as AnyNode[]) {
      const id = declarator.id as AnyNode;
      collectPatternNames(id, names);
      const init = declarator.init as AnyNode | null;
      if (init) parts.push(`${text(id)} = (${text(init)})`);
    }
    return parts;
  };
  const replaceDeclarationStatement = (declaration: AnyNode, names: Set<string>): void => {
    const parts = assignments(declaration, names);
    edits.push({ start: declaration.start, end: declaration.end, text: parts.length > 0 ? `void (${parts.join(", ")});` : ";" });
  };

  // `var` anywhere outside functions is global; `let`, `const` and `class` only at the top.
  const visit = (statement: AnyNode | null | undefined): void => {
    if (!statement) return;
    switch (statement.type) {
      case "VariableDeclaration":
        if (statement.kind === "var") replaceDeclarationStatement(statement, varNames);
        break;
      case "BlockStatement":
        for (const child of statement.body as AnyNode[]) visit(child);
        break;
      case "IfStatement":
        visit(statement.consequent as AnyNode);
        visit(statement.alternate as AnyNode | null);
        break;
      case "ForStatement": {
        const init = statement.init as AnyNode | null;
        if (init?.type === "VariableDeclaration" && init.kind === "var") {
          const parts = assignments(init, varNames);
          edits.push({ start: init.start, end: init.end, text: parts.length > 0 ? parts.join(", ") : "void 0" });
        }
        visit(statement.body as AnyNode);
        break;
      }
      case "ForInStatement":
      case "ForOfStatement": {
        const left = statement.left as AnyNode;
        if (left.type === "VariableDeclaration" && left.kind === "var") {
          const declarator = (left.declarations as AnyNode[])[0]!;
          collectPatternNames(declarator.id as AnyNode, varNames);
          edits.push({ start: left.start, end: left.end, text: text(declarator.id as AnyNode) });
        }
        visit(statement.body as AnyNode);
        break;
      }
      case "WhileStatement":
      case "DoWhileStatement":
      case "LabeledStatement":
      case "WithStatement":
        visit(statement.body as AnyNode);
        break;
      case "TryStatement":
        visit(statement.block as AnyNode);
        visit((statement.handler as AnyNode | null)?.body as AnyNode | undefined);
        visit(statement.finalizer as AnyNode | null);
        break;
      case "SwitchStatement":
        for (const switchCase of statement.cases as AnyNode[]) {
          for (const child of switchCase.consequent as AnyNode[]) visit(child);
        }
        break;
      default:
        break;
    }
  };

  const body = program.body as AnyNode[];
  body.forEach((statement, index) => {
    if (statement.type === "VariableDeclaration" && statement.kind !== "var") {
      replaceDeclarationStatement(statement, letNames);
    } else if (statement.type === "FunctionDeclaration") {
      // Stays a declaration (hoisted within the snippet); published as a global at the start.
      functionNames.push((statement.id as AnyNode & { name: string }).name);
    } else if (statement.type === "ClassDeclaration") {
      const name = (statement.id as AnyNode & { name: string }).name;
      letNames.add(name);
      edits.push({ start: statement.start, end: statement.end, text: `${name} = ${text(statement)};` });
    } else if (statement.type === "ExpressionStatement" && index === body.length - 1) {
      // The completion value of the snippet.
      edits.push({ start: statement.start, end: statement.end, text: `return (${text(statement.expression as AnyNode)});` });
    } else {
      visit(statement);
    }
  });

  let rewritten = code;
  for (const edit of edits.sort((a, b) => b.start - a.start)) {
    rewritten = rewritten.slice(0, edit.start) + edit.text + rewritten.slice(edit.end);
  }
  for (const name of functionNames) varNames.add(name);
  for (const name of letNames) varNames.delete(name);
  const hoisted =
    (varNames.size > 0 ? `var ${[...varNames].join(", ")}; ` : "") + (letNames.size > 0 ? `let ${[...letNames].join(", ")}; ` : "");
  const publish = functionNames.map((name) => `globalThis[${JSON.stringify(name)}] = ${name}; `).join("");
  // Everything on the first line keeps the snippet's line numbers.
  return `${hoisted}(async () => { ${publish}${rewritten}\n})()`;
}

function collectPatternNames(pattern: AnyNode | null, names: Set<string>): void {
  if (!pattern) return;
  switch (pattern.type) {
    case "Identifier":
      names.add((pattern as AnyNode & { name: string }).name);
      break;
    case "ObjectPattern":
      for (const property of pattern.properties as AnyNode[]) {
        collectPatternNames(property.type === "RestElement" ? (property.argument as AnyNode) : (property.value as AnyNode), names);
      }
      break;
    case "ArrayPattern":
      for (const element of pattern.elements as (AnyNode | null)[]) collectPatternNames(element, names);
      break;
    case "RestElement":
      collectPatternNames(pattern.argument as AnyNode, names);
      break;
    case "AssignmentPattern":
      collectPatternNames(pattern.left as AnyNode, names);
      break;
    default:
      break;
  }
}
