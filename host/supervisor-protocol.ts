// What travels between a host and the supervisor (worker-templates/supervisor.js): the
// per-run message out, NDJSON guest events back. Shared by the Node host and the edge
// Worker, so both speak to guests in exactly the same way.
import { Buffer } from "node:buffer";
import { cellDefinition } from "./cell-definition.js";

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
  outputBytes: number;
  /** `os.totalmem()` of the guest. */
  memoryMb?: number;
  /** `process.pid` of the guest (spawned guests have theirs). */
  pid?: number;
}

export function guestWorkerOf(
  fields: Pick<RunMessageFields, "guestModule" | "extraModules" | "runtimeModules" | "network">,
): GuestWorker {
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
  return JSON.stringify({ isolateId, worker: guestWorkerOf(fields), input: runInputOf(fields, token) });
}

/** A preloaded isolate's `/run`: it loads, evaluates its imports and waits for `startMessage`. */
export function buildPreloadMessage(worker: GuestWorker, isolateId: string): string {
  return JSON.stringify({ isolateId, worker, input: null });
}

/** The `/deliver` body that starts a preloaded isolate's run. */
export function buildStartMessage(fields: RunMessageFields, token: string, isolateId: string): string {
  return JSON.stringify({ kind: "start", isolateId, input: runInputOf(fields, token) });
}

function runInputOf(fields: RunMessageFields, token: string): Record<string, unknown> {
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
    outputBytes: fields.outputBytes,
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
}

/** Splits the supervisor's response body into events; a character may span two chunks. */
export class GuestEventDecoder {
  private pending = "";
  private readonly utf8 = new TextDecoder();

  push(chunk: Uint8Array): GuestEvent[] {
    this.pending += this.utf8.decode(chunk, { stream: true });
    const events: GuestEvent[] = [];
    let newline: number;
    while ((newline = this.pending.indexOf("\n")) !== -1) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      if (line.length > 0) events.push(parseEvent(line));
    }
    return events;
  }
}

// Events come from guest-controlled code: each field is checked before it is believed.
function parseEvent(line: string): GuestEvent {
  try {
    const event: unknown = JSON.parse(line);
    return typeof event === "object" && event !== null ? (event as GuestEvent) : {};
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

/** A return value is handed on only if it is JSON (the guest's JSON.stringify may be replaced). */
export function validJson(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  try {
    JSON.parse(value);
    return value;
  } catch {
    return undefined;
  }
}
