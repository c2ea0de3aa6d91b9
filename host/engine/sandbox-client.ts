// The host's HTTP/1.1 client for one sandbox process's direct socket: keep-alive connections
// to the process's own supervisor, which frames every reply (Content-Length or chunked). Every
// run makes at least one request; here one costs ~0.1 ms of host CPU, where node:http's client
// costs ~0.35 ms (its request and message objects, header checks and streams), and a separate
// client library ~100 ms to load on a fresh host. Replies are read strictly: anything that is
// not the HTTP/1.1 the supervisor writes fails the request and closes its connection.
import { connect, type Socket } from "node:net";

export interface SandboxRequest {
  path: string;
  method: "GET" | "POST";
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface SandboxResponse {
  statusCode: number;
  body: ResponseBody;
}

/** A reply's head (status line and headers) larger than this is refused. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Body bytes buffered while nobody reads: above this, reading from the socket pauses. */
const PAUSE_ABOVE_BYTES = 1 << 20;
/** What a buffered chunk costs beside its bytes (a guest's stream may be many tiny chunks). */
const CHUNK_OVERHEAD_BYTES = 128;
/** workerd closes a keep-alive connection idle for 5 s: the host closes its own first. */
const IDLE_CLOSE_MS = 4_000;

/** A reply that is not what the supervisor writes. */
export class SandboxProtocolError extends Error {
  readonly code = "ERR_SANDBOX_PROTOCOL";
}

function connectionError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** A response body: read it once (text, json, dump or iterate), or destroy it. */
export class ResponseBody implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private queuedBytes = 0;
  private ended = false;
  private failure: unknown;
  private waiter: (() => void) | undefined;
  private readonly errorListeners: ((error: Error) => void)[] = [];

  constructor(
    private readonly onDestroy: () => void,
    private readonly flow: { pause(): void; resume(): void },
  ) {}

  on(event: "error", listener: (error: Error) => void): this {
    this.errorListeners.push(listener);
    return this;
  }

  async text(): Promise<string> {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of this) text += decoder.decode(chunk, { stream: true });
    return text + decoder.decode();
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  /** Reads the body to its end and drops it, so the connection can serve the next request. */
  async dump(): Promise<void> {
    for await (const chunk of this) void chunk;
  }

  /** Stops reading: the connection is closed, and a read still waiting fails. */
  destroy(): void {
    if (this.ended || this.failure !== undefined) return;
    this.fail(connectionError("the response was destroyed", "ERR_STREAM_PREMATURE_CLOSE"), false);
    this.onDestroy();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return { next: () => this.next() };
  }

  /** @internal */
  push(chunk: Uint8Array): void {
    if (this.ended || this.failure !== undefined) return;
    this.chunks.push(chunk);
    this.queuedBytes += chunk.byteLength + CHUNK_OVERHEAD_BYTES;
    if (this.queuedBytes > PAUSE_ABOVE_BYTES) this.flow.pause();
    this.wake();
  }

  /** @internal Whether unread chunks hold the socket paused. */
  get holdsSocket(): boolean {
    return this.queuedBytes > PAUSE_ABOVE_BYTES;
  }

  /** @internal */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** @internal */
  fail(error: unknown, notify = true): void {
    if (this.ended || this.failure !== undefined) return;
    this.failure = error;
    if (notify) for (const listener of this.errorListeners) listener(error as Error);
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private async next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        this.queuedBytes -= chunk.byteLength + CHUNK_OVERHEAD_BYTES;
        if (this.queuedBytes <= PAUSE_ABOVE_BYTES) this.flow.resume();
        return { done: false, value: chunk };
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return { done: true, value: undefined };
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

interface PendingRequest {
  /** Drops the abort listener of a request waiting for a free connection. */
  unqueue?: () => void;
  head: string;
  body: string | undefined;
  signal: AbortSignal | undefined;
  resolve: (response: SandboxResponse) => void;
  reject: (error: unknown) => void;
  /** A streamed body's writer, bound to the connection that sends the request. */
  stream?: BodyStream;
}

/** The rest of a request body sent in chunks: the last part may be written long after the head. */
class BodyStream {
  private write: ((data: string) => void) | undefined;
  private ending: string | undefined;
  private done = false;

  /** Whether the last part went out: until then the connection carries this body. */
  get sent(): boolean {
    return this.done && this.write !== undefined;
  }

  /** @internal */
  attach(write: (data: string) => void): void {
    this.write = write;
    if (this.ending !== undefined) write(this.ending);
  }

  /** Sends `last` as the body's final chunk and ends it (once; later calls do nothing). */
  end(last: string): void {
    if (this.done) return;
    this.done = true;
    const framed = `${Buffer.byteLength(last).toString(16)}\r\n${last}\r\n0\r\n\r\n`;
    if (this.write) this.write(framed);
    else this.ending = framed;
  }
}

/** A request whose body ends later: its response may arrive before that. */
export interface StreamedRequest {
  response: Promise<SandboxResponse>;
  /** Writes the body's last part and ends it. */
  end(last: string): void;
}

type BodyState =
  | { kind: "length"; remaining: number }
  | { kind: "chunk-size" }
  | { kind: "chunk-data"; remaining: number }
  | { kind: "chunk-end" }
  | { kind: "trailer" };

/** One keep-alive connection: one request at a time, its reply parsed as it arrives. */
class Connection {
  private readonly socket: Socket;
  private current: PendingRequest | undefined;
  private response: ResponseBody | undefined;
  private head = "";
  private body: BodyState | undefined;
  private line = "";
  private keepAlive = true;
  private closed = false;
  private removeAbortListener: (() => void) | undefined;
  /** The body of the request in flight, when it is still being sent. */
  private stream: BodyStream | undefined;
  /** The reply in flight has ended: the connection is free once the current read is handled. */
  private replyDone = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    host: string,
    port: number,
    private readonly onIdle: (connection: Connection) => void,
    private readonly onClosed: (connection: Connection) => void,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on("data", (data: Buffer) => this.receive(data));
    this.socket.on("error", (error) => this.close(error));
    this.socket.on("close", () => this.close(connectionError("the sandbox process closed the connection", "ECONNRESET")));
  }

  send(request: PendingRequest): void {
    clearTimeout(this.idleTimer);
    this.current = request;
    this.head = "";
    this.keepAlive = true;
    const { signal } = request;
    if (signal) {
      const onAbort = (): void => this.close(abortError(signal));
      signal.addEventListener("abort", onAbort, { once: true });
      this.removeAbortListener = () => signal.removeEventListener("abort", onAbort);
    }
    this.socket.write(request.body === undefined ? request.head : request.head + request.body);
    this.stream = request.stream;
    request.stream?.attach((data) => {
      if (!this.closed) this.socket.write(data);
    });
  }

  /** Ends the connection; the request or reply in flight fails with `error`. */
  close(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.removeAbortListener?.();
    this.socket.destroy();
    const request = this.current;
    this.current = undefined;
    request?.reject(error);
    const response = this.response;
    this.response = undefined;
    response?.fail(error);
    this.onClosed(this);
  }

  private receive(data: Buffer): void {
    let offset = 0;
    try {
      while (offset < data.length && !this.closed) {
        if (this.current) offset = this.readHead(data, offset);
        else if (this.response && this.body) offset = this.readBody(data, offset);
        else throw new SandboxProtocolError("the sandbox process sent bytes no request asked for");
      }
    } catch (error) {
      this.close(error);
      return;
    }
    // Free for the next request only once this read is done: bytes after a reply are no one's.
    if (this.replyDone && !this.closed) {
      this.replyDone = false;
      this.onIdle(this);
    }
  }

  /** Idle in the pool: closed before workerd closes it (a request then would meet a reset). */
  park(): void {
    this.idleTimer = setTimeout(() => this.close(connectionError("the connection was idle", "ECONNRESET")), IDLE_CLOSE_MS);
    this.idleTimer.unref();
  }

  private readHead(data: Buffer, offset: number): number {
    const text = data.toString("latin1", offset, Math.min(data.length, offset + MAX_HEAD_BYTES + 4));
    const combined = this.head + text;
    const end = combined.indexOf("\r\n\r\n");
    if (end === -1) {
      if (combined.length > MAX_HEAD_BYTES) throw new SandboxProtocolError("the reply's head is too large");
      this.head = combined;
      return data.length;
    }
    const consumed = end + 4 - this.head.length;
    const head = combined.slice(0, end);
    this.head = "";
    const lines = head.split("\r\n");
    const status = /^HTTP\/1\.1 (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
    if (!status) throw new SandboxProtocolError(`the reply's status line is not HTTP/1.1: ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`);
    let length: number | undefined;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new SandboxProtocolError("the reply has a malformed header");
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "content-length") {
        if (!/^\d{1,15}$/.test(value)) throw new SandboxProtocolError("the reply's content-length is not a number");
        if (length !== undefined && length !== Number(value)) throw new SandboxProtocolError("the reply has conflicting content-lengths");
        length = Number(value);
      } else if (name === "transfer-encoding") {
        if (value.toLowerCase() !== "chunked") throw new SandboxProtocolError(`the reply's transfer-encoding ${value} is not chunked`);
        chunked = true;
      } else if (name === "connection" && value.toLowerCase() === "close") {
        this.keepAlive = false;
      }
    }
    const statusCode = Number(status[1]);
    // The supervisor never sends an interim (1xx) reply: one would be taken for the final one.
    if (statusCode < 200) throw new SandboxProtocolError(`the reply's status ${statusCode} is not a final one`);
    const bodyless = statusCode === 204 || statusCode === 304;
    if (!chunked && length === undefined && !bodyless) {
      // Without a length or chunking the body would run to the connection's close.
      throw new SandboxProtocolError("the reply has neither a content-length nor chunked encoding");
    }
    const request = this.current!;
    this.current = undefined;
    // Flow control acts on the socket only while this reply is the one it carries.
    const response: ResponseBody = new ResponseBody(
      () => this.close(connectionError("the response was destroyed", "ERR_STREAM_PREMATURE_CLOSE")),
      {
        pause: () => {
          if (this.response === response) this.socket.pause();
        },
        resume: () => {
          if (this.response === response) this.socket.resume();
        },
      },
    );
    this.response = response;
    this.body = chunked ? { kind: "chunk-size" } : { kind: "length", remaining: bodyless ? 0 : (length ?? 0) };
    request.resolve({ statusCode, body: response });
    const next = offset + consumed;
    if (this.body.kind === "length" && this.body.remaining === 0) this.finishBody();
    return next;
  }

  private readBody(data: Buffer, offset: number): number {
    const body = this.body!;
    switch (body.kind) {
      case "length":
      case "chunk-data": {
        const take = Math.min(body.remaining, data.length - offset);
        // Each socket read is a buffer of its own: the chunk can be handed on without a copy.
        this.response!.push(data.subarray(offset, offset + take));
        body.remaining -= take;
        if (body.remaining === 0) {
          if (body.kind === "length") this.finishBody();
          else this.body = { kind: "chunk-end" };
        }
        return offset + take;
      }
      case "chunk-size":
      case "chunk-end":
      case "trailer": {
        const newline = data.indexOf(10, offset);
        const piece = data.toString("latin1", offset, newline === -1 ? data.length : newline + 1);
        this.line += piece;
        if (this.line.length > 1024) throw new SandboxProtocolError("the reply's chunk framing is malformed");
        if (newline === -1) return data.length;
        const line = this.line;
        this.line = "";
        if (!line.endsWith("\r\n")) throw new SandboxProtocolError("the reply's chunk framing is malformed");
        const content = line.slice(0, -2);
        if (body.kind === "chunk-end") {
          if (content !== "") throw new SandboxProtocolError("the reply's chunk framing is malformed");
          this.body = { kind: "chunk-size" };
        } else if (body.kind === "chunk-size") {
          const size = /^([0-9a-fA-F]{1,8})(?:;.*)?$/.exec(content);
          if (!size) throw new SandboxProtocolError("the reply's chunk size is malformed");
          const bytes = parseInt(size[1]!, 16);
          this.body = bytes === 0 ? { kind: "trailer" } : { kind: "chunk-data", remaining: bytes };
        } else if (content === "") {
          this.finishBody();
        }
        return newline + 1;
      }
    }
  }

  private finishBody(): void {
    const response = this.response!;
    this.response = undefined;
    this.body = undefined;
    this.removeAbortListener?.();
    this.removeAbortListener = undefined;
    response.end();
    // A reply that ended before its request's body did leaves the connection mid-request; one
    // whose unread chunks hold the socket paused would leave the next reply unread.
    const unsent = this.stream !== undefined && !this.stream.sent;
    this.stream = undefined;
    if (!this.keepAlive || unsent || response.holdsSocket) this.close(connectionError("the sandbox process closed the connection", "ECONNRESET"));
    else this.replyDone = true;
  }
}

export class SandboxClient {
  private readonly host: string;
  private readonly port: number;
  private readonly maxConnections: number;
  private readonly idle: Connection[] = [];
  private readonly open = new Set<Connection>();
  private readonly queue: PendingRequest[] = [];
  private destroyed = false;

  constructor(url: URL, options: { connections: number }) {
    this.host = url.hostname;
    this.port = Number(url.port);
    this.maxConnections = options.connections;
  }

  /**
   * Resolves with the response once its head arrived; rejects with the socket's error
   * (`ECONNREFUSED`, `ECONNRESET`, …), a `SandboxProtocolError`, or an `AbortError` when
   * `signal` fires (which also ends a body still arriving).
   */
  request(options: SandboxRequest): Promise<SandboxResponse> {
    const headers = options.body === undefined ? options.headers : { ...options.headers, "content-length": String(Buffer.byteLength(options.body)) };
    return this.send(options.path, options.method, headers, options.body, options.signal);
  }

  private send(
    path: string,
    method: string,
    headers: Record<string, string> | undefined,
    body: string | undefined,
    signal: AbortSignal | undefined,
    stream?: BodyStream,
  ): Promise<SandboxResponse> {
    return new Promise((resolve, reject) => {
      if (this.destroyed) return reject(connectionError("the sandbox client is closed", "ECONNREFUSED"));
      if (signal?.aborted) return reject(abortError(signal));
      let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n`;
      for (const [name, value] of Object.entries(headers ?? {})) head += `${name}: ${value}\r\n`;
      head += "\r\n";
      const pending: PendingRequest = { head, body, signal, resolve, reject, stream };
      const connection = this.idle.pop() ?? (this.open.size < this.maxConnections ? this.connectNew() : undefined);
      if (connection) connection.send(pending);
      else this.enqueue(pending);
    });
  }

  /**
   * A POST whose body is `first` now and the part given to `end()` later, in chunked framing:
   * the response (e.g. an isolate that loaded and waits for its input) can arrive in between.
   */
  openStream(options: Omit<SandboxRequest, "body" | "method"> & { first: string }): StreamedRequest {
    const stream = new BodyStream();
    const chunk = `${Buffer.byteLength(options.first).toString(16)}\r\n${options.first}\r\n`;
    const response = this.send(options.path, "POST", { ...options.headers, "transfer-encoding": "chunked" }, chunk, options.signal, stream);
    return { response, end: (last) => stream.end(last) };
  }

  /** Closes every connection. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const pending of this.queue.splice(0)) pending.reject(connectionError("the sandbox client is closed", "ECONNRESET"));
    for (const connection of [...this.open]) connection.close(connectionError("the sandbox client is closed", "ECONNRESET"));
  }

  private connectNew(): Connection {
    const connection = new Connection(
      this.host,
      this.port,
      (idle) => this.reuse(idle),
      (closed) => this.forget(closed),
    );
    this.open.add(connection);
    return connection;
  }

  /** Waits for a free connection; a caller that gives up meanwhile gets its AbortError at once. */
  private enqueue(pending: PendingRequest): void {
    this.queue.push(pending);
    const { signal } = pending;
    if (!signal) return;
    const onAbort = (): void => {
      const index = this.queue.indexOf(pending);
      if (index >= 0) this.queue.splice(index, 1);
      pending.reject(abortError(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pending.unqueue = () => signal.removeEventListener("abort", onAbort);
  }

  private reuse(connection: Connection): void {
    const waiting = this.nextWaiting();
    if (waiting) connection.send(waiting);
    else {
      this.idle.push(connection);
      connection.park();
    }
  }

  private forget(connection: Connection): void {
    this.open.delete(connection);
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
    // A request that waited for a free connection takes the place this one leaves.
    const waiting = this.destroyed ? undefined : this.nextWaiting();
    if (waiting) this.connectNew().send(waiting);
  }

  /** The oldest queued request whose caller has not given up on it. */
  private nextWaiting(): PendingRequest | undefined {
    for (;;) {
      const pending = this.queue.shift();
      if (!pending) return undefined;
      pending.unqueue?.();
      if (pending.signal?.aborted) {
        pending.reject(abortError(pending.signal));
        continue;
      }
      return pending;
    }
  }
}
