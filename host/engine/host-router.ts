// Routes messages guests send through the HOST binding to the run that sent them.
// A run is known only by an unguessable token handed to its own isolate; it travels in a
// header, so a call is checked (run, then size) before a byte of its body is read.
import type { IncomingMessage, ServerResponse } from "node:http";
import { JsonShapeScanner, type JsonShapeLimits } from "./json-shape.js";
import { MAX_HOST_CALL_BYTES, RUN_TOKEN_HEADER } from "./supervisor-protocol.js";

/** Tool input nests and branches like real arguments; a cheaper-to-send, costlier-to-parse shape is refused. */
export const HOST_CALL_SHAPE: JsonShapeLimits = { maxDepth: 1000, maxContainers: 100_000 };

/** A message a guest sent through the HOST binding (every field is the guest's to set). */
export type GuestHostMessage = { name?: unknown; input?: unknown; kind?: unknown; [key: string]: unknown };
export type HostMessageHandler = (message: GuestHostMessage) => Promise<unknown>;

/**
 * Bytes of one run's host calls the host holds at once (received, not yet answered): many
 * calls in parallel must not add up to more memory than a few large ones.
 */
export const MAX_HOST_CALL_BYTES_IN_FLIGHT = 8 * MAX_HOST_CALL_BYTES;

interface LiveRun {
  handler: HostMessageHandler;
  bytesInFlight: number;
}

const runs = new Map<string, LiveRun>();

export function registerRunToken(token: string, handler: HostMessageHandler): () => void {
  runs.set(token, { handler, bytesInFlight: 0 });
  return () => runs.delete(token);
}

/** The run a call names, if that run is live. */
function runOf(request: IncomingMessage): LiveRun | undefined {
  const token = request.headers[RUN_TOKEN_HEADER];
  return typeof token === "string" ? runs.get(token) : undefined;
}

async function dispatch(handler: HostMessageHandler, body: string): Promise<string> {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return JSON.stringify({ ok: false, error: "malformed host request" });
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    return JSON.stringify({ ok: false, error: "malformed host request" });
  }
  try {
    return JSON.stringify(await handler(message as Record<string, unknown>));
  } catch (error) {
    return JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

/**
 * Bytes of a refused call the endpoint reads and throws away before it answers: workerd
 * reports an answer that comes while it still sends as a lost connection, not as the error.
 * Past this the connection is dropped.
 */
const DISCARD_LIMIT_BYTES = 32 * 1024 * 1024;

/** Answers once the body is through, unparsed and unbuffered; a longer body loses its connection. */
function refuse(response: ServerResponse, request: IncomingMessage, status: number, body: Record<string, unknown>): void {
  const text = JSON.stringify({ ok: false, ...body });
  let discarded = 0;
  request.removeAllListeners("data");
  request.on("data", (chunk: Buffer) => {
    discarded += chunk.byteLength;
    if (discarded > DISCARD_LIMIT_BYTES) request.destroy();
  });
  const answer = (): void => {
    if (response.headersSent) return;
    response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    response.end(text);
  };
  if (request.readableEnded) answer();
  else request.once("end", answer);
  request.resume();
}

function tooLarge(bytes: number | string): Record<string, unknown> {
  return {
    code: "ERR_TOOL_LIMIT",
    error: `host call of ${bytes} bytes exceeds the limit of ${MAX_HOST_CALL_BYTES} bytes (tool input is capped at 1 MiB)`,
  };
}

/** One host call: run token, then declared size, then the bytes as they arrive; parsed last. */
export function handleHostCall(request: IncomingMessage, response: ServerResponse): void {
  const run = runOf(request);
  if (!run) {
    refuse(response, request, 403, { error: "this run has ended; host calls are closed" });
    return;
  }
  const { handler } = run;
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > MAX_HOST_CALL_BYTES) {
    refuse(response, request, 413, tooLarge(declared));
    return;
  }
  // The call's bytes count against its run from the start (as declared, else as they come)
  // until it is answered or gone.
  let held = 0;
  const hold = (bytes: number): boolean => {
    if (run.bytesInFlight + bytes > MAX_HOST_CALL_BYTES_IN_FLIGHT) return false;
    run.bytesInFlight += bytes;
    held += bytes;
    return true;
  };
  response.once("close", () => {
    run.bytesInFlight -= held;
    held = 0;
  });
  const busy = {
    code: "ERR_TOOL_LIMIT",
    error: `this run's host calls in flight exceed ${MAX_HOST_CALL_BYTES_IN_FLIGHT} bytes; wait for some to finish`,
  };
  const declaredBytes = Number.isFinite(declared) && declared > 0 ? declared : 0;
  if (!hold(declaredBytes)) {
    refuse(response, request, 429, busy);
    return;
  }
  // Decoded and checked piece by piece as it arrives, so no one step holds the event loop.
  const utf8 = new TextDecoder();
  const shape = new JsonShapeScanner(HOST_CALL_SHAPE);
  const parts: string[] = [];
  let received = 0;
  let refused = false;
  request.on("data", (chunk: Buffer) => {
    if (refused) return;
    received += chunk.byteLength;
    if (received > MAX_HOST_CALL_BYTES) {
      refused = true;
      parts.length = 0;
      refuse(response, request, 413, tooLarge(`more than ${MAX_HOST_CALL_BYTES}`));
      return;
    }
    if (received > declaredBytes && !hold(received - Math.max(declaredBytes, received - chunk.byteLength))) {
      refused = true;
      parts.length = 0;
      refuse(response, request, 429, busy);
      return;
    }
    const text = utf8.decode(chunk, { stream: true });
    const problem = shape.push(text);
    if (problem) {
      refused = true;
      parts.length = 0;
      refuse(response, request, 413, { code: "ERR_TOOL_LIMIT", error: `host call ${problem}` });
      return;
    }
    parts.push(text);
  });
  request.on("end", () => {
    if (refused) return;
    // The token is judged again once the body is in: an attempt withdrawn meanwhile (its run
    // moved to another process) must not reach a tool beside the attempt that replaced it.
    if (runOf(request) !== run) {
      refuse(response, request, 403, { error: "this run has ended; host calls are closed" });
      return;
    }
    parts.push(utf8.decode());
    void dispatch(handler, parts.join("")).then((reply) => {
      response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
      response.end(reply);
    });
  });
}

let endpoint: Promise<string> | undefined;

/**
 * A keep-alive HTTP endpoint on loopback that workerd reaches as an external service:
 * about half the round trip of a Miniflare function binding. Unguessable run tokens, not
 * the socket, are what authorise a call.
 */
export function hostEndpointAddress(): Promise<string> {
  endpoint ??= (async () => {
    const { createServer } = await import("node:http");
    const { handleEgress } = await import("../capabilities/network/egress.js");
    // Proxy-style requests from workerd carry no Host header.
    const server = createServer({ requireHostHeader: false }, (request, response) => {
      // Proxy-style requests (absolute URL) are guest fetches; the rest are host calls.
      if (/^https?:\/\//i.test(request.url ?? "")) {
        void handleEgress(request, response);
        return;
      }
      handleHostCall(request, response);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    server.unref();
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("secure-exec: host endpoint has no port");
    return `127.0.0.1:${address.port}`;
  })();
  return endpoint;
}
