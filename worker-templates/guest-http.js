// `node:http` for guests: the real module, except that `createServer().listen(port)`
// opens no socket: the host reaches the server through `rt.fetch(port, …)`, whose
// requests arrive as deliveries and are answered through a ServerResponse-like object.
const realHttp = process.getBuiltinModule("node:http");
const { EventEmitter } = process.getBuiltinModule("node:events");
const { Readable } = process.getBuiltinModule("node:stream");

import { bridge as runBridge, httpServers, sandboxBuiltins } from "./secure-exec-bridge.js";

const servers = new Map();
const bridge = {
  emit: (event) => runBridge.current.emit(event),
  hold: () => runBridge.current.hold(),
};



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
    this.chunks = [];
    this.resolve = resolve;
  }
  setHeader(name, value) {
    this.headers.set(String(name).toLowerCase(), Array.isArray(value) ? value.join(", ") : String(value));
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
    for (const [name, value] of Object.entries(headers ?? {})) this.setHeader(name, value);
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
    this.resolve({
      ok: true,
      status: this.statusCode,
      statusText: this.statusMessage || realHttp.STATUS_CODES?.[this.statusCode] || "",
      headers: Object.fromEntries(this.headers),
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
        throw error;
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

export * from "node:http";
export { Server, IncomingMessage, ServerResponse };
const httpModule = { ...realHttp, createServer, Server, IncomingMessage, ServerResponse };
for (const name of ["http", "node:http"]) sandboxBuiltins.set(name, httpModule);
export default httpModule;
