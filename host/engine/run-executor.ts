// Carries one run to a sandbox process and back: per-run worker configuration out,
// streamed NDJSON events in, with the deadline, abort and process-loss rules applied.
import { randomFillSync, randomUUID } from "node:crypto";
import type { OutputListener } from "../api/types.js";
import { OutputCapture } from "./output-capture.js";
import { registerRunToken, type HostMessageHandler } from "./host-router.js";
import { registerEgressPolicy, type EgressBudget } from "../capabilities/network/egress.js";
import type { PermissionPolicy } from "../api/options.js";
import { JsonShapeScanner } from "./json-shape.js";
import { PoolDisposedError, type Placement, type PreloadedIsolate, type ProcessPool } from "./process-pool.js";
import type { RunTicket, SandboxProcess } from "./sandbox-process.js";
import {
  buildRunMessage,
  buildStartMessage,
  EXIT_KILLED,
  exitCodeOf,
  fsChangesLimitsFor,
  GuestEventDecoder,
  GuestProtocolError,
  guestWorkerOf,
  isPort,
  MAX_EVENT_BYTES,
  parseReturnValue,
  type GuestEvent,
  type RunMessageFields,
} from "./supervisor-protocol.js";

export { EXIT_KILLED } from "./supervisor-protocol.js";

const SUSPECT_WINDOW_MS = 5_000;
/** How often one run may be moved off a process that stopped answering before it started. */
const MAX_MOVES = 3;

export interface RunRequest {
  /** Guest module as produced by `compileGuestModule`. */
  guestModule: string;
  env: Record<string, string>;
  cwd: string;
  stdin?: string | Uint8Array;
  /** `process.pid` of the guest (spawned guests have theirs). */
  pid?: number;
  /** Extra `process.argv` entries after the script. */
  argv?: string[];
  /** The code is `node -e`/`-p` code: `process.argv` has no script path. */
  eval?: boolean;
  timeoutMs?: number;
  /** Time the call already spent before the run (compiling), counted against `timeoutMs`. */
  spentMs?: number;
  cpuTimeLimitMs?: number;
  signal?: AbortSignal;
  onStdout?: OutputListener;
  onStderr?: OutputListener;
  outputBytes: number;
  /** Cap on the `__return` value's JSON (`limits.returnBytes`). */
  returnBytes: number;
  memoryMb: number;
  /** Handles the guest's host calls (tools, child processes); called once per run. */
  onHostMessage?: (runId: string, signal: AbortSignal, control: RunControl) => HostMessageHandler;
  /** "stream": stdin stays open for `control.deliver` (spawn); default: `stdin`, then end. */
  stdinMode?: "buffer" | "stream";
  /** Attached by `executeRun`: reaches the live guest. */
  control?: RunHandle;
  /** The runtime's network policy; without one (or "deny") the guest has no outbound network. */
  networkPolicy?: PermissionPolicy;
  /** What the run may use of the network (shared with its child processes); needed with a network policy. */
  egressBudget?: EgressBudget;
  /** The runtime's filesystem: shipped to the guest, and its changes applied back. */
  fs?: { snapshot: unknown; onChanges(changes: unknown): void };
  /** Modules beside the guest (resolved packages), by module name. */
  extraModules?: Record<string, unknown>;
  /** Sandbox builtins (fs, child_process, http modules) the guest or its packages import. */
  runtimeModules?: string[];
  /** A guest HTTP server started (`true`) or stopped listening on `port`. */
  onListenerChange?: (port: number, listening: boolean) => void;
}

/** A handle on a live run: messages to its isolate, and an early end. */
export interface RunControl {
  /** Sends a message to the guest isolate (stdin, child process events, HTTP requests). */
  deliver(message: Record<string, unknown>): Promise<unknown>;
  /** Ends the run now with `exitCode`, noting `reason` on stderr when given. */
  kill(exitCode: number, reason?: string): void;
}

/**
 * A caller's handle on a run that may not have started yet (it is still compiling): messages
 * wait for the start, and a kill before it ends the run as soon as it starts.
 */
export class RunHandle implements RunControl {
  private live: RunControl | undefined;
  private ended = false;
  private pendingKill: { exitCode: number; reason?: string } | undefined;
  private readonly waiters: (() => void)[] = [];
  private readonly killedEarly = new AbortController();

  /** Aborted when the run is killed before it started (its compile can stop). */
  get killedBeforeStart(): AbortSignal {
    return this.killedEarly.signal;
  }

  /** How a kill before the start ends the run. */
  get earlyKill(): { exitCode: number; reason?: string } | undefined {
    return this.live ? undefined : this.pendingKill;
  }

  /** Called by `executeRun` once the run exists. */
  attach(live: RunControl): void {
    this.live = live;
    if (this.pendingKill) live.kill(this.pendingKill.exitCode, this.pendingKill.reason);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** The run ended without starting (e.g. it did not compile). */
  end(): void {
    this.ended = true;
    for (const wake of this.waiters.splice(0)) wake();
  }

  async deliver(message: Record<string, unknown>): Promise<unknown> {
    while (!this.live && !this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.live ? this.live.deliver(message) : { ok: false, error: "the run has ended" };
  }

  kill(exitCode: number, reason?: string): void {
    if (this.live) {
      this.live.kill(exitCode, reason);
    } else if (!this.ended && !this.pendingKill) {
      this.pendingKill = { exitCode, reason };
      this.killedEarly.abort(new Error("the run was killed before it started"));
    }
  }
}

export interface RunOutcome {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** The value passed to `__return` (checked JSON, parsed once), when the run ended with 0. */
  returned?: { value: unknown };
  /** How the run ended, for metrics. */
  outcome: "exited" | "timeout" | "cpu-limit" | "lost" | "out-of-memory";
}

function hasNetwork(request: RunRequest): boolean {
  return request.networkPolicy !== undefined && request.networkPolicy !== "deny";
}

function messageFieldsOf(request: RunRequest): RunMessageFields {
  return { ...request, network: hasNetwork(request), fsSnapshot: request.fs?.snapshot };
}

class AttemptLost extends Error {}
/** The attempt was withdrawn before its guest started (its process stopped answering). */
class AttemptMoved extends Error {}
/**
 * A preloaded isolate that could not take its run: the run loads a new one. `declined`: the
 * isolate itself refused it or had ended (its code is not preloaded again), rather than its
 * process or connection failing.
 */
class PreloadUnusable extends Error {
  constructor(readonly declined: boolean) {
    super("the preloaded isolate could not take the run");
  }
}

export async function executeRun(pool: ProcessPool, request: RunRequest): Promise<RunOutcome> {
  const { signal } = request;
  if (signal?.aborted) throw abortReason(signal);
  const runId = randomUUID();
  const stdout = new OutputCapture("stdout", request.outputBytes, guardedListener(request.onStdout, "onStdout"));
  const stderr = new OutputCapture("stderr", request.outputBytes, guardedListener(request.onStderr, "onStderr"));
  const runEnded = new AbortController();
  let observable = false;
  let attemptController: AbortController | undefined;
  let currentProcess: SandboxProcess | undefined;
  let settle: ((outcome: RunOutcome) => void) | undefined;
  let fail: ((error: unknown) => void) | undefined;
  const ended = new Promise<RunOutcome>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // Deliveries wait until the current attempt's guest has started (a replay starts over).
  let guestStarted = false;
  const startWaiters: (() => void)[] = [];
  let done = false;
  const finish = (outcome: Omit<RunOutcome, "stdout" | "stderr">): void => {
    if (done) return;
    done = true;
    settle!({ ...outcome, stdout: stdout.text(), stderr: stderr.text() });
    for (const wake of startWaiters.splice(0)) wake();
  };

  // Deadline and abort end the call at once; the process is checked afterwards and
  // killed only if the guest still holds it.
  const stopGuest = (): void => {
    // Ask the isolate to stop its own timers first: a guest that keeps yielding would
    // otherwise go on running after its request is gone.
    const controller = attemptController;
    const sandbox = currentProcess;
    if (sandbox && isolateId && guestStarted) {
      // The request is dropped once the isolate took the message (or could not in 100 ms).
      const terminated = sandbox.dispatcher
        .request({ path: "/deliver", method: "POST", body: JSON.stringify({ kind: "terminate", isolateId }) })
        .then((response) => response.body.dump())
        .catch(() => undefined);
      void Promise.race([terminated, new Promise((resolve) => setTimeout(resolve, 100))]).then(() => controller?.abort());
    } else {
      controller?.abort();
    }
    if (sandbox) void killIfStuck(sandbox);
  };
  const timers: NodeJS.Timeout[] = [];
  if (request.timeoutMs !== undefined) {
    timers.push(
      setTimeout(() => {
        if (done) return;
        stderr.note(`secure-exec: time limit of ${request.timeoutMs} ms exceeded; the guest was killed\n`);
        finish({ exitCode: EXIT_KILLED, outcome: "timeout" });
        stopGuest();
      }, Math.max(1, request.timeoutMs - (request.spentMs ?? 0))),
    );
  }
  const onAbort = (): void => {
    if (done) return;
    done = true;
    fail!(abortReason(signal!));
    for (const wake of startWaiters.splice(0)) wake();
    stopGuest();
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  let isolateId = "";
  const listening = new Set<number>();
  const markStarted = (): void => {
    guestStarted = true;
    for (const wake of startWaiters.splice(0)) wake();
  };
  const pendingDeliveries: Promise<unknown>[] = [];
  const control: RunControl = {
    async deliver(message) {
      // Messages wait for the guest to start, then go to the isolate it runs in.
      while (!guestStarted && !done) await new Promise<void>((resolve) => startWaiters.push(resolve));
      const sandbox = currentProcess;
      if (!sandbox || done) return { ok: false, error: "the run has ended" };
      // The reply is the guest's to write (a guest server's response, an acknowledgement).
      const delivery = sandbox.dispatcher
        .request({ path: "/deliver", method: "POST", body: JSON.stringify({ ...message, isolateId }) })
        .then((response) => readGuestReply(response.body, deliveryReplyBytes(request.outputBytes)));
      pendingDeliveries.push(delivery.catch(() => undefined));
      return delivery;
    },
    kill(exitCode, reason) {
      if (done) return;
      if (reason) stderr.note(reason);
      finish({ exitCode, outcome: "exited" });
      stopGuest();
    },
  };
  request.control?.attach(control);
  const hostHandler = request.onHostMessage?.(runId, runEnded.signal, control);
  const onHostCall: HostMessageHandler = async (message) => {
    if (done) return { ok: false, error: "this run has ended" };
    observable = true;
    if (!hostHandler) return { ok: false, error: "no host tools are available to this run" };
    return hostHandler(message);
  };
  // Each attempt has a token of its own: an attempt that was withdrawn (or whose process was
  // lost) can reach nothing of the host, even if its guest runs later.
  let revokeToken = (): void => {};
  const issueToken = (): string => {
    revokeToken();
    const token = newRunToken();
    const unregisterHost = registerRunToken(token, onHostCall);
    const unregisterEgress = hasNetwork(request) && request.egressBudget ? registerEgressPolicy(token, request.egressBudget) : () => {};
    revokeToken = () => {
      unregisterHost();
      unregisterEgress();
    };
    return token;
  };
  let moves = 0;

  const attempt = async ({ sandbox, ticket }: Placement, preloaded?: PreloadedIsolate): Promise<void> => {
    // A replay is a new isolate; a preloaded one has never run anything.
    isolateId = preloaded?.isolateId ?? randomUUID();
    guestStarted = false;
    const attemptToken = issueToken();
    const controller = new AbortController();
    attemptController = controller;
    if (preloaded) controller.signal.addEventListener("abort", () => preloaded.abort.abort(), { once: true });
    currentProcess = sandbox;
    // A process that stops answering holds every run placed on it. Those whose guests have not
    // started (nothing of them has happened) move to a responsive process at once, but for
    // the one that may be what holds it (see possibleHolder).
    let moved = false;
    const stopWatchingProcess = sandbox.onStateChange(() => {
      if (sandbox.state !== "unresponsive" || done || moved || guestStarted || observable || moves >= MAX_MOVES) return;
      if (sandbox.possibleHolder() === ticket) return;
      moved = true;
      moves += 1;
      revokeToken();
      controller.abort();
    });
    let cpuWatch: NodeJS.Timeout | undefined;
    if (request.cpuTimeLimitMs !== undefined) {
      const limit = request.cpuTimeLimitMs;
      cpuWatch = setInterval(() => {
        const since = sandbox.unresponsiveSince;
        if (!done && since !== undefined && performance.now() - since >= limit) {
          stderr.note(`secure-exec: CPU time limit of ${limit} ms exceeded; the guest was killed\n`);
          finish({ exitCode: EXIT_KILLED, outcome: "cpu-limit" });
          stopGuest();
        }
      }, Math.min(50, limit));
      cpuWatch.unref();
    }
    const lostWatch = sandbox.lost.then(() => {
      throw new AttemptLost();
    });
    lostWatch.catch(() => {});
    let responseBody: { on(event: "error", listener: () => void): unknown; destroy(): unknown } | undefined;
    try {
      // A preloaded isolate gets its input as the rest of its request; its events are read
      // at once (a preload that had ended shows as a stream without the run's start).
      if (preloaded) preloaded.start(buildStartMessage(messageFieldsOf(request), attemptToken, isolateId));
      const response = await Promise.race([
        preloaded
          ? preloaded.response
          : sandbox.dispatcher.request({
              path: "/run",
              method: "POST",
              body: buildRunMessage(messageFieldsOf(request), attemptToken, isolateId),
              headers: { "content-type": "application/json" },
              signal: controller.signal,
            }),
        lostWatch,
      ]);
      responseBody = response.body;
      // A reset socket must not surface as an uncaught stream error.
      response.body.on("error", () => {});
      const decoder = new GuestEventDecoder({
        outputBytes: request.outputBytes,
        returnBytes: request.returnBytes,
        ...fsChangesLimitsFor(request.fs?.snapshot),
      });
      const iterator = response.body[Symbol.asyncIterator]();
      // After the run's end the stream has nothing left to say: a guest still sending is cut off.
      let afterEnd = 0;
      for (;;) {
        const next = await Promise.race([iterator.next(), lostWatch]);
        if (next.done) break;
        if (done && (afterEnd += (next.value as Uint8Array).byteLength) > MAX_EVENT_BYTES) break;
        let events: GuestEvent[];
        try {
          events = decoder.push(next.value as Uint8Array);
        } catch (error) {
          if (!(error instanceof GuestProtocolError)) throw error;
          // A stream over its bounds is not read further: the run ends here.
          control.kill(EXIT_KILLED, `secure-exec: ${error.message}; the guest was killed\n`);
          return;
        }
        for (const event of events) {
          // A preloaded run's first event is its start: anything else is the preload ending
          // on its own (e.g. a package that threw as it loaded), not this run.
          if (preloaded && !ticket.started && event.s === undefined) throw new PreloadUnusable(true);
          handleEvent(event, ticket);
        }
      }
      // A preload whose stream ended without the run's start declined it (or had ended).
      if (!done && preloaded && !ticket.started) throw new PreloadUnusable(true);
      if (!done) throw new AttemptLost();
    } catch (error) {
      if (done) return;
      if (moved) throw new AttemptMoved();
      // Nothing of it ran: the run goes to a fresh isolate.
      if (error instanceof PreloadUnusable) throw error;
      if (preloaded && !ticket.started) throw new PreloadUnusable(false);
      if (error instanceof AttemptLost || sandbox.state === "dead" || !sandbox.isAlive()) {
        await sandbox.lost.catch(() => undefined);
        throw new AttemptLost();
      }
      // The connection failed while the process lives (it is being killed, or it dropped
      // the socket): the same rules as a lost process apply.
      if (isConnectionError(error)) throw new AttemptLost();
      throw error;
    } finally {
      stopWatchingProcess();
      responseBody?.destroy();
      if (cpuWatch) clearInterval(cpuWatch);
      sandbox.endRun(ticket);
      pool.release(sandbox);
      pool.preloadFor(request.guestModule, guestWorkerOf(messageFieldsOf(request)));
    }
  };

  const handleEvent = (event: GuestEvent, ticket: RunTicket): void => {
    if (done) return;
    if (event.s !== undefined) {
      ticket.started = true;
      markStarted();
    }
    if (event.fs !== undefined) request.fs?.onChanges(event.fs);
    if (isPort(event.l)) {
      listening.add(event.l);
      request.onListenerChange?.(event.l, true);
    }
    if (isPort(event.lc)) {
      listening.delete(event.lc);
      request.onListenerChange?.(event.lc, false);
    }
    if (typeof event.o === "string") {
      observable = true;
      stdout.write(event.o);
    }
    if (typeof event.e === "string") {
      observable = true;
      stderr.write(event.e);
    }
    if (event.rs !== undefined) {
      control.kill(EXIT_KILLED, `secure-exec: the value passed to __return ${event.rs}; the guest was killed\n`);
      return;
    }
    if (event.rl !== undefined) {
      control.kill(
        EXIT_KILLED,
        `secure-exec: the value passed to __return is ${Number(event.rl) || "too many"} bytes of JSON, over limits.returnBytes = ${request.returnBytes}; the guest was killed\n`,
      );
      return;
    }
    if (event.x !== undefined) {
      const exitCode = exitCodeOf(event.x);
      finish({ exitCode, returned: exitCode === 0 ? parseReturnValue(event.r) : undefined, outcome: "exited" });
    }
  };

  void (async () => {
    let excluded: SandboxProcess | undefined;
    let replayed = false;
    for (let attemptNumber = 0; !done; attemptNumber += 1) {
      let placement: Placement;
      let preloaded: PreloadedIsolate | undefined;
      try {
        const warm = attemptNumber === 0 ? await pool.takePreloaded(request.guestModule) : undefined;
        if (warm) {
          placement = warm;
          preloaded = warm.preloaded;
        } else {
          placement = await pool.acquire(excluded);
        }
      } catch (error) {
        if (done) return;
        if (error instanceof PoolDisposedError && attemptNumber > 0) {
          stderr.note("secure-exec: the runtime was disposed; the guest was killed\n");
          finish({ exitCode: EXIT_KILLED, outcome: "lost" });
          return;
        }
        done = true;
        fail!(error);
        return;
      }
      const { sandbox } = placement;
      if (done) {
        sandbox.endRun(placement.ticket);
        pool.release(sandbox);
        return;
      }
      try {
        await attempt(placement, preloaded);
        return;
      } catch (error) {
        if (done) return;
        if (error instanceof AttemptMoved) {
          excluded = sandbox;
          continue;
        }
        if (error instanceof PreloadUnusable) {
          if (error.declined) pool.preloadUnusable(request.guestModule);
          continue;
        }
        if (!(error instanceof AttemptLost)) {
          done = true;
          fail!(error);
          return;
        }
        const loss = sandbox.loss;
        // Replay once on another process if the guest has had no observable effect.
        if (!observable && !replayed) {
          replayed = true;
          excluded = sandbox;
          continue;
        }
        const what =
          loss?.reason === "out-of-memory"
            ? `the sandbox process ran out of memory (limits.memoryMb = ${request.memoryMb})`
            : `sandbox process lost: ${loss?.detail ?? "the sandbox process exited"}`;
        stderr.note(`secure-exec: ${what}; the guest was killed\n`);
        finish({ exitCode: EXIT_KILLED, outcome: loss?.reason === "out-of-memory" ? "out-of-memory" : "lost" });
        return;
      }
    }
  })();

  try {
    return await ended;
  } finally {
    for (const port of listening) request.onListenerChange?.(port, false);
    for (const timer of timers) clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    revokeToken();
    runEnded.abort(RUN_ENDED);
  }
}

/** 192 random bits a token, cut from a pool that one call refills (a call per token costs ~6 µs). */
const TOKEN_BYTES = 24;
const tokenPool = Buffer.alloc(TOKEN_BYTES * 64);
let tokenOffset = tokenPool.length;

function newRunToken(): string {
  if (tokenOffset === tokenPool.length) {
    randomFillSync(tokenPool);
    tokenOffset = 0;
  }
  const token = tokenPool.toString("base64url", tokenOffset, tokenOffset + TOKEN_BYTES);
  tokenOffset += TOKEN_BYTES;
  return token;
}

/** The reason every ended run's signal carries: one AbortError, not a new one (and its stack) per run. */
const RUN_ENDED = new DOMException("The run has ended", "AbortError");

/** A delivery's reply carries at most a guest server's response body (as base64) and its headers. */
function deliveryReplyBytes(outputBytes: number): number {
  return Math.ceil((outputBytes * 4) / 3) + MAX_EVENT_BYTES;
}

/** A reply is a flat object (headers, a body as base64): a deeper or wider one is refused unparsed. */
const DELIVERY_REPLY_SHAPE = { maxDepth: 8, maxContainers: 4096 };

/** Reads a guest-written JSON reply under a byte cap, checking its shape as it arrives. */
async function readGuestReply(body: AsyncIterable<Uint8Array> & { destroy(): unknown }, maxBytes: number): Promise<unknown> {
  const utf8 = new TextDecoder();
  const shape = new JsonShapeScanner(DELIVERY_REPLY_SHAPE);
  const parts: string[] = [];
  let received = 0;
  for await (const chunk of body) {
    received += chunk.byteLength;
    const text = utf8.decode(chunk, { stream: true });
    const problem = received > maxBytes ? `is over ${maxBytes} bytes` : shape.push(text);
    if (problem) {
      body.destroy();
      throw new Error(`secure-exec: the guest's reply ${problem}`);
    }
    parts.push(text);
  }
  parts.push(utf8.decode());
  return JSON.parse(parts.join("")) as unknown;
}

/**
 * A caller's output listener that throws (or rejects) must not change the guest's run: the
 * error is reported once per run as a process warning on the host, and output keeps flowing.
 */
export function guardedListener(listener: OutputListener | undefined, name: string): OutputListener | undefined {
  if (!listener) return undefined;
  let reported = false;
  const report = (error: unknown): void => {
    if (reported) return;
    reported = true;
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    process.emitWarning(`the ${name} listener threw (${detail}); the run goes on`, { type: "SecureExecWarning", code: "SECURE_EXEC_LISTENER_THREW" });
  };
  return (chunk) => {
    try {
      const result: unknown = listener(chunk);
      if (result instanceof Promise) result.catch(report);
    } catch (error) {
      report(error);
    }
  };
}

/** After a deadline or abort: a process that cannot answer a ping is held by a runaway. */
async function killIfStuck(sandbox: SandboxProcess): Promise<void> {
  if (sandbox.state === "dead") return;
  sandbox.quarantine();
  // The aborted guest may still start spinning later (its request was already queued there):
  // the heartbeat keeps watching for a while and kills the process if it then stops answering.
  sandbox.suspectRunaway(SUSPECT_WINDOW_MS);
  const responsive = await sandbox.probe(500);
  if (!responsive) await sandbox.kill({ reason: "killed", detail: "a guest overran its limit" });
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("UND_ERR_") || ["ECONNRESET", "ECONNREFUSED", "EPIPE"].includes(code));
}

function abortReason(signal: AbortSignal): unknown {
  if (signal.reason !== undefined) return signal.reason;
  return new DOMException("This operation was aborted", "AbortError");
}
