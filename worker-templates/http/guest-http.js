// `node:http` for guests: the real module, except that `createServer().listen(port)`
// opens no socket: the host reaches the server through `rt.fetch(port, ...)`, whose
// requests arrive as deliveries and are answered through a ServerResponse-like object.
// The client (`request`, `get`) is the sandbox's too: a request to the guest's own loopback
// reaches its own servers, any other goes out through `fetch` (the run's network policy),
// and every failure is an 'error' event on the request.
const realHttp = process.getBuiltinModule("node:http");
const { EventEmitter } = process.getBuiltinModule("node:events");
const { Readable, Writable } = process.getBuiltinModule("node:stream");

import { bridge as runBridge, httpServers, sandboxBuiltins } from "./secure-exec-bridge.js";

const servers = new Map();
const bridge = {
  emit: (event) => runBridge.current.emit(event),
  hold: () => runBridge.current.hold(),
};



/** [name, value, name, value, ...] (raw header lists) as pairs. */
function pairsOf(list) {
  if (list.length > 0 && Array.isArray(list[0])) return list;
  const pairs = [];
  for (let i = 0; i + 1 < list.length; i += 2) pairs.push([list[i], list[i + 1]]);
  return pairs;
}

class IncomingMessage extends Readable {
  constructor(message) {
    super({ read() {} });
    this.method = message.method;
    this.url = message.path;
    this.headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    this.rawHeaders = Object.entries(this.headers).flat();
    this.httpVersion = "1.1";
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.socket = { remoteAddress: "127.0.0.1", remotePort: 0, encrypted: false };
    this.connection = this.socket;
    const body = message.body ? Buffer.from(message.body, "base64") : null;
    if (body && body.length > 0) this.push(body);
    this.push(null);
  }
}

class ServerResponse extends EventEmitter {
  constructor(resolve) {
    super();
    this.statusCode = 200;
    this.statusMessage = "";
    this.headersSent = false;
    this.finished = false;
    this.writableEnded = false;
    this.headers = new Map();
    this.written = new Map();
    this.chunks = [];
    this.resolve = resolve;
  }
  setHeader(name, value) {
    this.headers.set(String(name).toLowerCase(), Array.isArray(value) ? value.map(String) : String(value));
    return this;
  }
  getHeader(name) {
    return this.headers.get(String(name).toLowerCase());
  }
  getHeaders() {
    return Object.fromEntries(this.headers);
  }
  hasHeader(name) {
    return this.headers.has(String(name).toLowerCase());
  }
  removeHeader(name) {
    this.headers.delete(String(name).toLowerCase());
  }
  writeHead(statusCode, statusMessage, headers) {
    if (typeof statusMessage === "object" && statusMessage !== null) {
      headers = statusMessage;
      statusMessage = undefined;
    }
    this.statusCode = statusCode;
    if (statusMessage) this.statusMessage = statusMessage;
    // Headers given here are sent, not stored: getHeader() does not see them (as in Node).
    const entries = Array.isArray(headers) ? pairsOf(headers) : Object.entries(headers ?? {});
    for (const [name, value] of entries) this.written.set(String(name).toLowerCase(), Array.isArray(value) ? value.map(String) : String(value));
    this.headersSent = true;
    return this;
  }
  write(chunk, encoding, callback) {
    if (chunk !== undefined && chunk !== null) this.chunks.push(Buffer.from(chunk, typeof encoding === "string" ? encoding : "utf8"));
    this.headersSent = true;
    const done = typeof encoding === "function" ? encoding : callback;
    if (typeof done === "function") queueMicrotask(done);
    return true;
  }
  end(chunk, encoding, callback) {
    if (this.writableEnded) return this;
    if (typeof chunk === "function") {
      callback = chunk;
      chunk = undefined;
    }
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    this.writableEnded = true;
    this.finished = true;
    const all = new Map([...this.headers, ...this.written]);
    this.resolve({
      ok: true,
      status: this.statusCode,
      statusText: this.statusMessage || realHttp.STATUS_CODES?.[this.statusCode] || "",
      headers: Object.fromEntries([...all].map(([name, value]) => [name, Array.isArray(value) ? value.join(", ") : value])),
      // Repeated headers (set-cookie) one by one, for the guest's own clients.
      headerList: [...all].flatMap(([name, value]) => (Array.isArray(value) ? value.map((one) => [name, one]) : [[name, value]])),
      body: Buffer.concat(this.chunks).toString("base64"),
    });
    queueMicrotask(() => this.emit("finish"));
    if (typeof callback === "function") queueMicrotask(callback);
    return this;
  }
}

class Server extends EventEmitter {
  constructor(handler) {
    super();
    if (typeof handler === "function") this.on("request", handler);
    this.port = undefined;
    this.listening = false;
  }
  listen(...args) {
    const callback = args.find((arg) => typeof arg === "function");
    const options = typeof args[0] === "object" && args[0] !== null ? args[0] : { port: args[0] };
    const port = Number(options.port ?? 0) || 3000;
    if (httpServers.has(port)) {
      const error = new Error(`listen EADDRINUSE: address already in use :::${port}`);
      error.code = "EADDRINUSE";
      queueMicrotask(() => this.emit("error", error));
      return this;
    }
    this.port = port;
    this.listening = true;
    servers.set(port, this);
    httpServers.set(port, (message) => this._handle(message));
    // A listening server keeps the run alive, as it does in Node.
    this.release = bridge.hold();
    bridge.emit({ l: port });
    queueMicrotask(() => {
      this.emit("listening");
      callback?.();
    });
    return this;
  }
  address() {
    return this.listening ? { address: "127.0.0.1", family: "IPv4", port: this.port } : null;
  }
  close(callback) {
    if (this.listening) {
      servers.delete(this.port);
      httpServers.delete(this.port);
      this.listening = false;
      bridge.emit({ lc: this.port });
      this.release?.();
    }
    queueMicrotask(() => {
      this.emit("close");
      callback?.();
    });
    return this;
  }
  _handle(message) {
    return new Promise((resolve) => {
      const request = new IncomingMessage(message);
      const response = new ServerResponse(resolve);
      try {
        this.emit("request", request, response);
      } catch (error) {
        resolve({ ok: true, status: 500, statusText: "Internal Server Error", headers: {}, body: "" });
        // A handler that throws is an uncaught exception of the guest, as in Node (the run's
        // timers report what their callbacks throw).
        globalThis.setTimeout(() => {
          throw error;
        }, 0);
      }
    });
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
}

export function createServer(optionsOrHandler, maybeHandler) {
  return new Server(typeof optionsOrHandler === "function" ? optionsOrHandler : maybeHandler);
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "::"]);

function systemError(code, syscall, address, port, detail) {
  const error = new Error(`${syscall} ${code} ${address}:${port}${detail ? ` (${detail})` : ""}`);
  error.errno = code === "ECONNREFUSED" ? -111 : code === "EACCES" ? -13 : code === "ECONNRESET" ? -104 : -1;
  error.code = code;
  error.syscall = syscall;
  error.address = address;
  error.port = port;
  return error;
}

/** The response a client request receives. */
class ClientIncomingMessage extends Readable {
  constructor(status, statusText, headerPairs) {
    super({ read() {} });
    this.statusCode = status;
    this.statusMessage = statusText || realHttp.STATUS_CODES?.[status] || "";
    this.headers = {};
    this.rawHeaders = [];
    for (const [name, value] of headerPairs) {
      const key = name.toLowerCase();
      this.rawHeaders.push(name, value);
      if (key === "set-cookie") (this.headers[key] ??= []).push(value);
      else this.headers[key] = key in this.headers ? `${this.headers[key]}, ${value}` : value;
    }
    this.trailers = {};
    this.rawTrailers = [];
    this.httpVersion = "1.1";
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.complete = false;
    this.url = "";
    this.method = null;
    this.socket = { remoteAddress: undefined, remotePort: undefined, encrypted: false, setTimeout() {}, destroy() {} };
    this.connection = this.socket;
    this.once("end", () => (this.complete = true));
  }
  setTimeout(ms, callback) {
    if (callback) this.once("timeout", callback);
    return this;
  }
}

function normaliseRequestArgs(defaultProtocol, args) {
  let url;
  let options = {};
  let callback;
  for (const arg of args) {
    if (typeof arg === "function") callback = arg;
    else if (typeof arg === "string" || arg instanceof URL) url = new URL(String(arg));
    else if (arg && typeof arg === "object") options = arg;
  }
  const protocol = options.protocol ?? url?.protocol ?? defaultProtocol;
  if (protocol !== "http:" && protocol !== "https:") {
    const error = new TypeError(`Protocol "${protocol}" not supported. Expected "${defaultProtocol}"`);
    error.code = "ERR_INVALID_PROTOCOL";
    throw error;
  }
  const hostname = String(options.hostname ?? options.host?.replace(/:\d+$/, "") ?? url?.hostname ?? "localhost").replace(/^\[|\]$/g, "");
  const port = Number(options.port ?? (url?.port || (protocol === "https:" ? 443 : 80)));
  const path = options.path ?? (url ? `${url.pathname}${url.search}` : "/");
  const method = String(options.method ?? "GET").toUpperCase();
  const auth = options.auth ?? (url?.username ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined);
  return { protocol, hostname, port, path, method, auth, headers: options.headers ?? {}, signal: options.signal, timeout: options.timeout, callback };
}

export class ClientRequest extends Writable {
  constructor(target) {
    // Not destroyed at 'finish': the response is still to come.
    super({ autoDestroy: false });
    this.method = target.method;
    this.path = target.path;
    this.host = target.hostname;
    this.protocol = target.protocol;
    this.port = target.port;
    this.reusedSocket = false;
    this.aborted = false;
    this.headersSent = false;
    this.socket = { setTimeout() {}, setNoDelay() {}, setKeepAlive() {}, destroy() {}, remoteAddress: target.hostname };
    this.connection = this.socket;
    this._headers = new Map();
    for (const [name, value] of Object.entries(target.headers)) this.setHeader(name, value);
    if (target.auth && !this.hasHeader("authorization")) this.setHeader("authorization", `Basic ${Buffer.from(target.auth).toString("base64")}`);
    this._target = target;
    this._chunks = [];
    this._abort = new AbortController();
    if (target.callback) this.once("response", target.callback);
    if (target.timeout) this.setTimeout(target.timeout);
    if (target.signal) {
      if (target.signal.aborted) queueMicrotask(() => this.destroy(abortError(target.signal)));
      else target.signal.addEventListener("abort", () => this.destroy(abortError(target.signal)), { once: true });
    }
    queueMicrotask(() => this.emit("socket", this.socket));
  }
  setHeader(name, value) {
    this._headers.set(String(name).toLowerCase(), [String(name), Array.isArray(value) ? value.map(String) : String(value)]);
    return this;
  }
  getHeader(name) {
    return this._headers.get(String(name).toLowerCase())?.[1];
  }
  getHeaders() {
    return Object.fromEntries([...this._headers].map(([key, [, value]]) => [key, value]));
  }
  getHeaderNames() {
    return [...this._headers.keys()];
  }
  getRawHeaderNames() {
    return [...this._headers.values()].map(([name]) => name);
  }
  hasHeader(name) {
    return this._headers.has(String(name).toLowerCase());
  }
  removeHeader(name) {
    this._headers.delete(String(name).toLowerCase());
  }
  flushHeaders() {
    this.headersSent = true;
  }
  setNoDelay() {}
  setSocketKeepAlive() {}
  setTimeout(ms, callback) {
    if (callback) this.once("timeout", callback);
    clearTimeout(this._timer);
    if (ms > 0) {
      this._timer = setTimeout(() => this.emit("timeout"), ms);
      this._timer.unref?.();
    }
    return this;
  }
  abort() {
    if (this.aborted) return;
    this.aborted = true;
    queueMicrotask(() => this.emit("abort"));
    this.destroy();
  }
  _write(chunk, encoding, callback) {
    this._chunks.push(Buffer.from(chunk, encoding));
    callback();
  }
  _final(callback) {
    callback();
    this.headersSent = true;
    this._send();
  }
  _destroy(error, callback) {
    clearTimeout(this._timer);
    this._abort.abort();
    this._response?.destroy(error ?? undefined);
    callback(error);
  }
  async _send() {
    const release = bridge.hold();
    const { hostname, port, protocol } = this._target;
    try {
      const headerPairs = [...this._headers.values()].flatMap(([name, value]) => (Array.isArray(value) ? value.map((v) => [name, v]) : [[name, value]]));
      const body = Buffer.concat(this._chunks);
      // Connecting takes a turn of the event loop, as in Node (an abort right after the call wins).
      await Promise.resolve();
      if (this.destroyed) return;
      const loopback = LOOPBACK.has(hostname);
      const server = loopback && protocol === "http:" ? httpServers.get(port) : undefined;
      if (server) {
        const reply = await server({
          method: this.method,
          path: this.path,
          headers: Object.fromEntries(headerPairs.map(([name, value]) => [name.toLowerCase(), value])),
          body: body.toString("base64"),
        });
        if (this.destroyed) return;
        const response = new ClientIncomingMessage(reply.status, reply.statusText, reply.headerList ?? Object.entries(reply.headers ?? {}));
        this._deliver(response);
        const bytes = Buffer.from(reply.body ?? "", "base64");
        if (bytes.length > 0) response.push(bytes);
        response.push(null);
        return;
      }
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      const defaultPort = protocol === "https:" ? 443 : 80;
      const url = `${protocol}//${host}${port === defaultPort ? "" : `:${port}`}${this.path}`;
      let fetched;
      try {
        fetched = await fetch(url, {
          method: this.method,
          headers: headerPairs,
          body: this.method === "GET" || this.method === "HEAD" ? undefined : body,
          redirect: "manual",
          signal: this._abort.signal,
        });
      } catch (error) {
        if (this.destroyed) return;
        if (error?.code === "EACCES" || /not permitted to access the internet/.test(String(error?.message))) {
          // The guest's loopback is its own: with no guest server there, nothing listens
          // (the host's own ports are reachable only when the network policy names them).
          if (loopback) throw systemError("ECONNREFUSED", "connect", hostname === "localhost" ? "127.0.0.1" : hostname, port);
          throw systemError("EACCES", "connect", hostname, port, "secure-exec: the run's network permissions do not allow this host");
        }
        const failure = systemError("ECONNREFUSED", "connect", hostname, port, String(error?.message ?? error));
        failure.cause = error;
        throw failure;
      }
      if (this.destroyed) return;
      const response = new ClientIncomingMessage(fetched.status, fetched.statusText, [...fetched.headers]);
      this._deliver(response);
      if (fetched.body) {
        const reader = fetched.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done || response.destroyed) break;
          response.push(Buffer.from(value));
        }
      }
      response.push(null);
    } catch (error) {
      if (!this.destroyed) this.destroy(error);
      else if (this._response && !this._response.destroyed) this._response.destroy(error);
    } finally {
      release();
    }
  }
  _deliver(response) {
    clearTimeout(this._timer);
    this._response = response;
    this.res = response;
    if (!this.emit("response", response)) response.resume();
  }
}

function abortError(signal) {
  const error = new Error("The operation was aborted", { cause: signal.reason });
  error.name = "AbortError";
  error.code = "ABORT_ERR";
  return error;
}

/** `request`/`get` of http (and https, with its default protocol). */
export function clientFor(defaultProtocol) {
  const request = (...args) => new ClientRequest(normaliseRequestArgs(defaultProtocol, args));
  const get = (...args) => {
    const req = request(...args);
    req.end();
    return req;
  };
  return { request, get };
}

export const { request, get } = clientFor("http:");

// `fetch` of the guest's own server (which exists only when this module is loaded) reaches
// it directly, as in Node; anything else is the run's fetch.
const NativeResponse = globalThis.Response;
const NativeRequest = globalThis.Request;
const fetchBeforeHttp = globalThis.fetch;
globalThis.fetch = async function fetch(input, init) {
  let url;
  try {
    url = new URL(typeof input === "string" || input instanceof URL ? String(input) : input?.url);
  } catch {
    return fetchBeforeHttp.call(this, input, init);
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const loopback = LOOPBACK.has(hostname);
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const server = url.protocol === "http:" && loopback ? httpServers.get(port) : undefined;
  if (!server) {
    if (!loopback) return fetchBeforeHttp.call(this, input, init);
    try {
      return await fetchBeforeHttp.call(this, input, init);
    } catch (error) {
      // Nothing of the guest's listens there, and the host's port is not allowed: refused, as Node says it.
      if (error?.code === "EACCES" || /not permitted to access the internet/.test(String(error?.message))) {
        throw new TypeError("fetch failed", { cause: systemError("ECONNREFUSED", "connect", hostname === "localhost" ? "127.0.0.1" : hostname, port) });
      }
      throw error;
    }
  }
  const request = new NativeRequest(input, init);
  const release = bridge.hold();
  try {
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : Buffer.alloc(0);
    const reply = await server({
      method: request.method,
      path: `${url.pathname}${url.search}`,
      headers: Object.fromEntries(request.headers),
      body: body.toString("base64"),
    });
    const status = reply.status ?? 200;
    const bytes = Buffer.from(reply.body ?? "", "base64");
    const nullBody = status === 204 || status === 304 || request.method === "HEAD";
    return new NativeResponse(nullBody ? null : bytes, { status, statusText: reply.statusText ?? "", headers: reply.headerList ?? reply.headers ?? {} });
  } finally {
    release();
  }
};

export * from "node:http";
export { Server, IncomingMessage, ServerResponse };
const httpModule = { ...realHttp, createServer, Server, IncomingMessage, ServerResponse, ClientRequest, request, get };
for (const name of ["http", "node:http"]) sandboxBuiltins.set(name, httpModule);
export default httpModule;
