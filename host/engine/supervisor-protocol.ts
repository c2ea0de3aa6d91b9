// What travels between a host and the supervisor (worker-templates/supervisor.js): the
// per-run message out, NDJSON guest events back. Shared by the Node host and the edge
// Worker, so both speak to guests in exactly the same way.
import { Buffer } from "node:buffer";
import { cellDefinition } from "./cell-definition.js";
import { JsonShapeScanner, jsonShapeProblem, type JsonShapeLimits } from "./json-shape.js";

/** Exit code of a run ended by a limit, a kill or a lost process. */
export const EXIT_KILLED = 137;

/** The dynamic worker a run loads: the guest module and what sits beside it. */
export interface GuestWorker {
  compatibilityDate: string;
  compatibilityFlags: readonly string[];
  guestModule: string;
  extraModules?: Record<string, unknown>;
  runtimeModules?: string[];
  /** Guests without network get `globalOutbound: null`. */
  network: boolean;
}

export interface RunMessageFields {
  /** Guest module as produced by `compileGuestModule`. */
  guestModule: string;
  extraModules?: Record<string, unknown>;
  runtimeModules?: string[];
  network: boolean;
  fsSnapshot?: unknown;
  env: Record<string, string>;
  cwd: string;
  stdin?: string | Uint8Array;
  stdinMode?: "buffer" | "stream";
  argv?: string[];
  /** The code is `node -e`/`-p` code: `process.argv` has no script path. */
  eval?: boolean;
  outputBytes: number;
  /** Cap on the `__return` value's JSON (`limits.returnBytes`). */
  returnBytes: number;
  /** `os.totalmem()` of the guest. */
  memoryMb?: number;
  /** `process.pid` of the guest (spawned guests have theirs). */
  pid?: number;
}

/**
 * Largest host call (tool call, child process message) a guest may send: the tool-argument
 * cap (1 MiB) and room for the envelope. The host refuses a larger body before reading it.
 */
export const MAX_HOST_CALL_BYTES = 1024 * 1024 + 64 * 1024;

/** Header of a host call that names its run; checked before the body is read. */
export const RUN_TOKEN_HEADER = "x-secure-exec-run";

export function guestWorkerOf(fields: Pick<RunMessageFields, "guestModule" | "extraModules" | "runtimeModules" | "network">): GuestWorker {
  return {
    compatibilityDate: cellDefinition.compatibilityDate,
    compatibilityFlags: cellDefinition.guest.compatibilityFlags,
    guestModule: fields.guestModule,
    extraModules: fields.extraModules,
    runtimeModules: fields.runtimeModules,
    network: fields.network,
  };
}

/** Body of the supervisor's `/run`. `token` authorises the run's host calls (and egress). */
export function buildRunMessage(fields: RunMessageFields, token: string, isolateId: string): string {
  return JSON.stringify({ isolateId, worker: guestWorkerOf(fields), input: runInputOf(fields, token) } satisfies RunMessage);
}

/** A preloaded isolate's `/run`: it loads, evaluates its imports and waits for its start message. */
export function buildPreloadMessage(worker: GuestWorker, isolateId: string): string {
  return JSON.stringify({ isolateId, worker, input: null } satisfies RunMessage);
}

/** The last part of a preload's request body: it starts the preloaded isolate's run. */
export function buildStartMessage(fields: RunMessageFields, token: string, isolateId: string): string {
  return JSON.stringify({ kind: "start", isolateId, input: runInputOf(fields, token) });
}

/**
 * The fields the JS side reads and writes by name: the supervisor (worker-templates/supervisor.js)
 * reads the run message and its worker, the prelude (worker-templates/guest-prelude.js) reads
 * the input and writes the events. test/protocol-shape.test.ts checks that those files use
 * exactly these keys; the types below are built from them, so the host uses them too.
 */
const RUN_MESSAGE_FIELDS = { isolateId: true, worker: true, input: true } as const;
const GUEST_WORKER_FIELDS = {
  compatibilityDate: true,
  compatibilityFlags: true,
  guestModule: true,
  extraModules: true,
  runtimeModules: true,
  network: true,
} as const satisfies Record<keyof GuestWorker, true>;
const RUN_INPUT_FIELDS = {
  egressToken: true,
  fs: true,
  env: true,
  cwd: true,
  stdin: true,
  stdinMode: true,
  argv: true,
  eval: true,
  outputBytes: true,
  returnBytes: true,
  hostCallBytes: true,
  memoryMb: true,
  pid: true,
  token: true,
} as const;
/** Keys of the events a guest's isolate writes (the decoder joins the pieces into `r` and `fs`). */
const GUEST_EVENT_FIELDS = {
  s: "started: deliveries are accepted",
  o: "stdout",
  e: "stderr",
  l: "a guest server listens on this port",
  lc: "a guest server stopped listening on this port",
  fs: "filesystem changes, in one event",
  fp: "a piece of the filesystem changes",
  fe: "the filesystem changes end",
  rp: "a piece of the `__return` value's JSON",
  rl: "the `__return` value's JSON was this many bytes, over its cap",
  x: "exit code",
} as const satisfies Record<Exclude<keyof GuestEvent, "r" | "rs"> | "rp" | "fp" | "fe", string>;

export const RUN_MESSAGE_KEYS = Object.keys(RUN_MESSAGE_FIELDS) as (keyof typeof RUN_MESSAGE_FIELDS)[];
export const GUEST_WORKER_KEYS = Object.keys(GUEST_WORKER_FIELDS) as (keyof GuestWorker)[];
export const RUN_INPUT_KEYS = Object.keys(RUN_INPUT_FIELDS) as (keyof typeof RUN_INPUT_FIELDS)[];
export const GUEST_EVENT_KEYS = Object.keys(GUEST_EVENT_FIELDS) as (keyof typeof GUEST_EVENT_FIELDS)[];

type RunMessage = Record<keyof typeof RUN_MESSAGE_FIELDS, unknown>;
type RunInput = Record<keyof typeof RUN_INPUT_FIELDS, unknown>;

function runInputOf(fields: RunMessageFields, token: string): RunInput {
  const stdin =
    fields.stdin === undefined
      ? undefined
      : typeof fields.stdin === "string"
        ? Buffer.from(fields.stdin, "utf8").toString("base64")
        : Buffer.from(fields.stdin.buffer, fields.stdin.byteOffset, fields.stdin.byteLength).toString("base64");
  return {
    egressToken: fields.network ? token : undefined,
    fs: fields.fsSnapshot,
    env: fields.env,
    cwd: fields.cwd,
    stdin,
    stdinMode: fields.stdinMode ?? "buffer",
    argv: fields.argv ?? [],
    eval: fields.eval === true ? true : undefined,
    outputBytes: fields.outputBytes,
    returnBytes: fields.returnBytes,
    hostCallBytes: MAX_HOST_CALL_BYTES,
    memoryMb: fields.memoryMb,
    pid: fields.pid,
    token,
  };
}

export interface GuestEvent {
  /** The guest has started (its isolate accepts deliveries). */
  s?: number;
  o?: string;
  e?: string;
  /** A guest server listens on this port / stopped listening. */
  l?: number;
  lc?: number;
  /** Filesystem changes of the run (sent just before the exit). */
  fs?: unknown;
  x?: number;
  r?: string;
  /** The guest's `__return` value was this many bytes, over `limits.returnBytes` (the run ends with 137). */
  rl?: number;
  /** Set by the decoder: why the `__return` value would cost too much to parse (the run ends with 137). */
  rs?: string;
}

/** An event line is a flat object (filesystem changes nest a few levels). */
const EVENT_SHAPE: JsonShapeLimits = { maxDepth: 8, maxContainers: 8192 };

/** Return values: nesting the host's JSON tools handle, and objects and arrays in proportion to the byte cap. */
export function returnShapeFor(returnBytes: number): JsonShapeLimits {
  return { maxDepth: 1000, maxContainers: Math.max(1000, Math.floor(returnBytes / 10)) };
}

/**
 * Largest event line the host parses. The prelude cuts output, return values and filesystem
 * changes into pieces well below it (`EVENT_PIECE_CHARS` in guest-prelude.js): at most 6
 * bytes of JSON per character, so 64 Ki characters stay under 384 KiB.
 */
export const MAX_EVENT_BYTES = 1024 * 1024;

/** What one run's event stream may carry; anything beyond is a broken (or forged) stream. */
export interface EventStreamLimits {
  /** Per output channel, as `limits.outputBytes`. */
  outputBytes: number;
  /** The `__return` value's JSON, as `limits.returnBytes`. */
  returnBytes: number;
  /** The filesystem changes' JSON (0: the run has no filesystem). */
  fsChangesBytes: number;
  /** Objects and arrays in the filesystem changes (one per changed path, and a few). */
  fsChangesContainers: number;
}

/** The guest's event stream broke its bounds: the host ends the run with this message. */
export class GuestProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GuestProtocolError";
  }
}

/** Bytes of JSON text that can carry `chars` characters of output (escapes take up to 6). */
function jsonBytesFor(chars: number): number {
  return 6 * chars + MAX_EVENT_BYTES;
}

/**
 * Everything one run's stream may carry: both output channels, the return value and the
 * filesystem changes at their worst, and room for the small events (start, listen, exit).
 */
export function streamBytesFor(limits: { outputBytes: number; returnBytes: number; fsChangesBytes?: number }): number {
  return 2 * jsonBytesFor(limits.outputBytes) + jsonBytesFor(limits.returnBytes) + 2 * (limits.fsChangesBytes ?? 0) + 4 * MAX_EVENT_BYTES;
}

/**
 * Splits the supervisor's response body into events, in time linear in its size: chunks are
 * kept as they come and only new bytes are scanned for the newline that ends a line (a JSON
 * line holds no raw newline, and 0x0A never occurs inside a UTF-8 sequence). Pieces of a
 * return value (`rp`) or of the filesystem changes (`fp` … `fe`) are joined here, each under
 * its cap. A line over `MAX_EVENT_BYTES`, or a stream over its limits, throws
 * `GuestProtocolError` before more is buffered.
 */
export class GuestEventDecoder {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private streamBytes = 0;
  private readonly utf8 = new TextDecoder();
  private readonly outputSent = { o: 0, e: 0 };
  private returnParts: string[] = [];
  private returnSize = 0;
  private returnShape: JsonShapeScanner;
  private fsParts: string[] = [];
  private fsSize = 0;
  private fsShape: JsonShapeScanner;

  constructor(private readonly limits: EventStreamLimits) {
    this.returnShape = new JsonShapeScanner(returnShapeFor(limits.returnBytes));
    this.fsShape = new JsonShapeScanner({ maxDepth: EVENT_SHAPE.maxDepth, maxContainers: limits.fsChangesContainers });
  }

  push(chunk: Uint8Array): GuestEvent[] {
    this.streamBytes += chunk.byteLength;
    if (this.streamBytes > streamBytesFor(this.limits)) {
      throw new GuestProtocolError("the guest sent more events than its limits allow a run");
    }
    const events: GuestEvent[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      const tail = chunk.subarray(start, newline);
      this.reserve(tail.byteLength);
      const line = this.pending.length === 0 ? tail : concatBytes([...this.pending, tail], this.pendingBytes + tail.byteLength);
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
      if (line.byteLength === 0) continue;
      const text = this.utf8.decode(line);
      const problem = jsonShapeProblem(text, EVENT_SHAPE);
      if (problem) throw new GuestProtocolError(`the guest sent an event that ${problem}`);
      const event = this.accept(parseEvent(text), line.byteLength);
      if (event) events.push(event);
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start);
      this.reserve(rest.byteLength);
      this.pending.push(rest);
      this.pendingBytes += rest.byteLength;
    }
    return events;
  }

  private reserve(bytes: number): void {
    if (this.pendingBytes + bytes > MAX_EVENT_BYTES) {
      throw new GuestProtocolError(`the guest sent an event of more than ${MAX_EVENT_BYTES} bytes`);
    }
  }

  /** Checks an event against the stream's limits; pieces are kept until their end. */
  private accept(event: GuestEvent & { rp?: unknown; fp?: unknown; fe?: unknown }, lineBytes: number): GuestEvent | undefined {
    for (const channel of ["o", "e"] as const) {
      if (typeof event[channel] !== "string") continue;
      this.outputSent[channel] += lineBytes;
      if (this.outputSent[channel] > jsonBytesFor(this.limits.outputBytes)) {
        throw new GuestProtocolError(`the guest sent more ${channel === "o" ? "stdout" : "stderr"} than limits.outputBytes allows`);
      }
    }
    if (typeof event.rp === "string") return this.returnPiece(event.rp);
    if (typeof event.fp === "string") {
      this.fsSize += Buffer.byteLength(event.fp);
      if (this.fsSize > this.limits.fsChangesBytes) {
        throw new GuestProtocolError(`the guest's filesystem changes exceed ${this.limits.fsChangesBytes} bytes`);
      }
      const problem = this.fsShape.push(event.fp);
      if (problem) throw new GuestProtocolError(`the guest's filesystem changes ${problem}`);
      this.fsParts.push(event.fp);
      return undefined;
    }
    if (event.fe !== undefined) {
      const text = this.fsParts.join("");
      this.fsParts = [];
      const changes = parseEvent(text.length > 0 ? `{"fs":${text}}` : "{}");
      return changes.fs === undefined ? undefined : { fs: changes.fs };
    }
    if (event.x !== undefined) {
      if (typeof event.r === "string") {
        const refused = this.returnPiece(event.r);
        if (refused) return refused;
      }
      if (this.returnParts.length > 0) event.r = this.returnParts.join("");
      this.returnParts = [];
    }
    delete event.rs;
    return event;
  }

  /** A piece of the return value, checked for size and shape as it arrives. */
  private returnPiece(piece: string): GuestEvent | undefined {
    this.returnSize += Buffer.byteLength(piece);
    if (this.returnSize > this.limits.returnBytes) return { rl: this.returnSize };
    const problem = this.returnShape.push(piece);
    if (problem) return { rs: problem };
    this.returnParts.push(piece);
    return undefined;
  }
}

/**
 * Room for a run's filesystem changes: every byte the filesystem may hold (as base64), a path
 * and a metadata object per file it may hold. Without a snapshot the run has no filesystem.
 */
export function fsChangesLimitsFor(snapshot: unknown): Pick<EventStreamLimits, "fsChangesBytes" | "fsChangesContainers"> {
  if (snapshot === undefined) return { fsChangesBytes: 0, fsChangesContainers: 0 };
  const limits = (snapshot as { limits?: { bytes?: unknown; files?: unknown } }).limits;
  const bytes = typeof limits?.bytes === "number" && Number.isFinite(limits.bytes) ? limits.bytes : 0;
  const files = typeof limits?.files === "number" && Number.isFinite(limits.files) ? limits.files : 0;
  return { fsChangesBytes: Math.ceil((bytes * 4) / 3) + files * 1024 + MAX_EVENT_BYTES, fsChangesContainers: files + 64 };
}

function concatBytes(parts: Uint8Array[], total: number): Uint8Array {
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.byteLength;
  }
  return joined;
}

// Events come from guest-controlled code: each field is checked before it is believed.
function parseEvent(line: string): GuestEvent & Record<string, unknown> {
  try {
    const event: unknown = JSON.parse(line);
    return typeof event === "object" && event !== null && !Array.isArray(event) ? (event as GuestEvent & Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;
}

/** The exit code an `{x}` event asks for (anything out of range reads as 1). */
export function exitCodeOf(value: unknown): number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 255 ? (value as number) : 1;
}

/**
 * A return value is handed on only if it is JSON (the guest's JSON.stringify may be
 * replaced); it is parsed here, once, and the parsed value travels on.
 */
export function parseReturnValue(value: unknown): { value: unknown } | undefined {
  if (typeof value !== "string") return undefined;
  try {
    return { value: JSON.parse(value) as unknown };
  } catch {
    return undefined;
  }
}
