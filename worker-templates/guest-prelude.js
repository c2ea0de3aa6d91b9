// Main module of every guest isolate. The host generates `guest.mjs` (the guest's
// code with its static imports hoisted and its body wrapped in an async function);
// this prelude gives that function a Node-like world and reports what it does as
// NDJSON events on the response body: {o} stdout, {e} stderr, {x, r} exit + return.
import guestMain, { __secureExecExports as guestExports } from "./guest.js";
import {
  bridge as runBridge,
  deliveryHandlers,
  guardNodeModule,
  httpServers,
  isRefusedSpecifier,
  sandboxBuiltins,
} from "./secure-exec-bridge.js";

// Builtins load on first use: most runs never touch streams, and every isolate is new.
const nativeGetBuiltinModule = process.getBuiltinModule.bind(process);
const builtin = (name) => nativeGetBuiltinModule(name);
const format = (...args) => builtin("node:util").format(...args);
const inspect = (...args) => builtin("node:util").inspect(...args);

const nativeSetTimeout = globalThis.setTimeout;
const nativeClearTimeout = globalThis.clearTimeout;
const nativeSetInterval = globalThis.setInterval;
const nativeClearInterval = globalThis.clearInterval;
const nativeSetImmediate = globalThis.setImmediate;
const nativeClearImmediate = globalThis.clearImmediate;
const encoder = new TextEncoder();
/**
 * Output, return values and filesystem changes go out in events of at most this many
 * characters (at most 6 bytes of JSON each), so the host never parses one giant line.
 */
const EVENT_PIECE_CHARS = 1 << 16;

/** `text` in pieces of at most `EVENT_PIECE_CHARS` characters, never splitting a surrogate pair. */
function* piecesOf(text) {
  for (let offset = 0; offset < text.length; ) {
    let end = Math.min(offset + EVENT_PIECE_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    yield text.slice(offset, end);
    offset = end;
  }
}

class ExitSignal extends Error {
  constructor(code) {
    super(`process.exit(${code})`);
    this.name = "ExitSignal";
  }
}

let activeRun = null;

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__warm") {
      // Preloading: pay now for what almost every run touches first.
      builtin("node:util");
      return new Response("warm");
    }
    if (pathname === "/__deliver") {
      if (!activeRun || activeRun.finished) return Response.json({ ok: false, error: "the run has ended" }, { status: 410 });
      // The reply comes from the run's own request; until then this one must not look hung.
      const keepAlive = nativeSetInterval(() => {}, 30_000);
      try {
        const reply = await activeRun.deliver(await request.json());
        return Response.json(reply.body, { status: reply.status });
      } finally {
        nativeClearInterval(keepAlive);
      }
    }
    // Each isolate serves exactly one run: nothing of one run can reach the next.
    if (activeRun) return new Response("isolate already used", { status: 409 });
    const input = await request.json();
    const { readable, writable } = new TransformStream();
    activeRun = new GuestRun(writable.getWriter(), input, env);
    activeRun.start();
    return new Response(readable, { headers: { "content-type": "application/x-ndjson" } });
  },
};

class GuestRun {
  constructor(writer, input, env) {
    this.writer = writer;
    this.input = input;
    this.env = env;
    this.finished = false;
    this.mainState = "running";
    this.timers = new Set();
    this.pendingCalls = 0;
    this.returnJson = undefined;
    this.outputBudget = { o: input.outputBytes, e: input.outputBytes };
    this.decoders = { o: new TextDecoder(), e: new TextDecoder() };
    this.cwd = input.cwd;
    this.idleCheckScheduled = false;
    this.stdinWanted = false;
    this.stdinEnded = false;
    this.stdinStream = undefined;
    this.stdinBacklog = [];
    this.mailbox = [];
    this.mailboxWaiter = null;
    this.pendingOutput = [];
    this.outputFlushScheduled = false;
  }

  /**
   * Messages from the host while the run lives (stdin, child process events, HTTP requests).
   * They arrive as requests of their own, but guest work must happen in the run's request
   * (its output stream and timers belong to it), so they queue here for `pumpMailbox`.
   */
  deliver(message) {
    return new Promise((resolve) => {
      this.mailbox.push({ message, resolve });
      const wake = this.mailboxWaiter;
      this.mailboxWaiter = null;
      wake?.();
    });
  }

  async pumpMailbox() {
    while (!this.finished) {
      const item = this.mailbox.shift();
      if (!item) {
        await new Promise((resolve) => (this.mailboxWaiter = resolve));
        continue;
      }
      try {
        item.resolve(await this.handleDelivery(item.message));
      } catch (error) {
        item.resolve({ status: 500, body: { ok: false, error: error instanceof Error ? error.message : String(error) } });
      }
    }
    for (const item of this.mailbox.splice(0)) item.resolve({ status: 410, body: { ok: false, error: "the run has ended" } });
  }

  async handleDelivery(message) {
    if (message.kind === "stdin" || message.kind === "stdin-end") {
      if (this.stdinEnded) return { status: 200, body: { ok: false, error: "stdin is closed" } };
      const chunk = message.kind === "stdin" ? Buffer.from(message.data, "base64") : null;
      if (chunk === null) this.stdinEnded = true;
      if (this.stdinStream) this.stdinStream.push(chunk);
      else this.stdinBacklog.push(chunk);
      this.stdinWanted = false;
      nativeSetTimeout(() => this.checkIdle(), 0);
      return { status: 200, body: { ok: true } };
    }
    if (message.kind === "terminate") {
      // The host gave up on this run (deadline, kill, abort): stop its timers and callbacks.
      this.finish(137);
      return { status: 200, body: { ok: true } };
    }
    if (message.kind === "http-request") {
      const server = httpServers.get(message.port);
      if (!server) return { status: 200, body: { ok: false, error: `nothing listens on port ${message.port}` } };
      return { status: 200, body: await server(message) };
    }
    const handler = deliveryHandlers.get(message.kind);
    if (!handler) return { status: 400, body: { ok: false, error: `unknown delivery ${message.kind}` } };
    return { status: 200, body: await handler(message) };
  }

  /** What guest runtime modules (child_process, http) use to reach the host. */
  bridge() {
    const run = this;
    return {
      hostCall: (message) => run.hostCall(message),
      emit: (event) => run.emit(event),
      /** Counts work that keeps the run alive until `release()` is called. */
      hold: () => {
        run.pendingCalls += 1;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          run.pendingCalls -= 1;
          nativeSetTimeout(() => run.checkIdle(), 0);
        };
      },
      writeChannel: (channel, text) => run.writeChannel(channel, text),
      get finished() {
        return run.finished;
      },
      get env() {
        return process.env;
      },
      get cwd() {
        return run.cwd;
      },
    };
  }

  async hostCall(message) {
    const body = JSON.stringify(message);
    // The host refuses larger calls unread; saying so here spares the upload.
    const bytes = body.length * 3 > this.input.hostCallBytes ? encoder.encode(body).byteLength : body.length;
    if (bytes > this.input.hostCallBytes) {
      return { ok: false, code: "ERR_TOOL_LIMIT", error: `host call of ${bytes} bytes exceeds the limit of ${this.input.hostCallBytes} bytes (tool input is capped at 1 MiB)` };
    }
    const response = await this.env.HOST.fetch("http://host/call", {
      method: "POST",
      headers: { "x-secure-exec-run": this.input.token },
      body,
    });
    return response.json();
  }

  emit(event) {
    if (this.finished) return;
    this.writer.write(encoder.encode(JSON.stringify(event) + "\n")).catch(() => {});
  }

  writeChannel(channel, chunk) {
    if (this.finished) return;
    const text = typeof chunk === "string" ? chunk : this.decoders[channel].decode(chunk, { stream: true });
    if (text.length === 0) return;
    const budget = this.outputBudget[channel];
    if (budget <= 0) return;
    // Guest-side cut keeps a flood from filling the pipe; the host applies the exact cap.
    this.outputBudget[channel] = budget - text.length;
    const kept = budget >= text.length ? text : text.slice(0, budget + 1);
    // Writes of one turn go out as one event per channel run, in order.
    const last = this.pendingOutput[this.pendingOutput.length - 1];
    if (last && last.channel === channel) last.parts.push(kept);
    else this.pendingOutput.push({ channel, parts: [kept] });
    if (!this.outputFlushScheduled) {
      this.outputFlushScheduled = true;
      queueMicrotask(() => this.flushOutput());
    }
  }

  flushOutput() {
    this.outputFlushScheduled = false;
    for (const { channel, parts } of this.pendingOutput.splice(0)) {
      for (const piece of piecesOf(parts.join(""))) this.emit({ [channel]: piece });
    }
  }

  finish(code) {
    if (this.finished) return;
    this.flushOutput();
    // Files the guest wrote go back before the exit, so the next run can read them.
    const fsChanges = runBridge.fsChanges?.();
    if (fsChanges) {
      const json = JSON.stringify(fsChanges);
      if (json.length <= EVENT_PIECE_CHARS) this.emit({ fs: fsChanges });
      else {
        for (const piece of piecesOf(json)) this.emit({ fp: piece });
        this.emit({ fe: 1 });
      }
    }
    if (code === 0 && this.returnJson !== undefined) {
      for (const piece of piecesOf(this.returnJson)) this.emit({ rp: piece });
    }
    this.emit({ x: code });
    this.finished = true;
    nativeClearInterval(this.keepAlive);
    const wake = this.mailboxWaiter;
    this.mailboxWaiter = null;
    wake?.();
    for (const timer of this.timers) {
      nativeClearTimeout(timer);
      nativeClearInterval(timer);
    }
    this.timers.clear();
    this.writer.close().catch(() => {});
  }

  fail(error) {
    if (this.finished || error instanceof ExitSignal) return;
    let text;
    if (error instanceof Error) {
      text = error.stack && error.stack.includes(error.message) ? error.stack : inspect(error);
      // Frames of the sandbox's own prelude say nothing about the guest's code.
      text = text
        .split("\n")
        .filter((line) => !/^\s+at .*secure-exec-prelude\.js/.test(line))
        .join("\n");
    } else {
      text = `Uncaught ${inspect(error)}`;
    }
    this.writeChannel("e", `${text}\n`);
    this.finish(1);
  }

  hasLiveWork() {
    if (this.pendingCalls > 0) return true;
    if (this.stdinWanted) return true;
    for (const timer of this.timers) {
      if (typeof timer?.hasRef !== "function" || timer.hasRef()) return true;
    }
    return false;
  }

  // Node semantics: the run ends once the module settled and nothing keeps it alive;
  // a module left awaiting a promise nothing can resolve ends like Node's exit 13.
  checkIdle() {
    if (this.finished || this.idleCheckScheduled || this.hasLiveWork()) return;
    this.idleCheckScheduled = true;
    nativeSetTimeout(() => {
      nativeSetTimeout(() => {
        this.idleCheckScheduled = false;
        if (this.finished || this.hasLiveWork()) return;
        if (this.mainState === "running") {
          this.writeChannel("e", "Warning: Detected unsettled top-level await\n");
          this.finish(13);
          return;
        }
        this.finish(typeof process.exitCode === "number" ? process.exitCode : 0);
      }, 0);
    }, 0);
  }

  invokeGuest(callback, args) {
    if (this.finished) return;
    try {
      callback(...args);
    } catch (error) {
      this.fail(error);
    }
    this.checkIdle();
  }

  installTimers() {
    const run = this;
    const track = (create, clear, repeat) =>
      function (callback, delay, ...args) {
        if (typeof callback !== "function") {
          throw new TypeError('The "callback" argument must be of type function');
        }
        let handle;
        handle = create(() => {
          if (!repeat) run.timers.delete(handle);
          run.invokeGuest(callback, args);
        }, delay);
        run.timers.add(handle);
        return handle;
      };
    const untrack = (clear) => (handle) => {
      run.timers.delete(handle);
      clear(handle);
      run.checkIdle();
    };
    globalThis.setTimeout = track(nativeSetTimeout, nativeClearTimeout, false);
    globalThis.setInterval = track(nativeSetInterval, nativeClearInterval, true);
    globalThis.clearTimeout = untrack(nativeClearTimeout);
    globalThis.clearInterval = untrack(nativeClearInterval);
    if (typeof nativeSetImmediate === "function") {
      globalThis.setImmediate = function (callback, ...args) {
        let handle;
        handle = nativeSetImmediate(() => {
          run.timers.delete(handle);
          run.invokeGuest(callback, args);
        });
        run.timers.add(handle);
        return handle;
      };
      globalThis.clearImmediate = untrack(nativeClearImmediate);
    }
  }

  installConsole() {
    const out = (...args) => this.writeChannel("o", `${format(...args)}\n`);
    const err = (...args) => this.writeChannel("e", `${format(...args)}\n`);
    console.log = out;
    console.info = out;
    console.debug = out;
    console.error = err;
    console.warn = err;
    console.trace = (...args) => {
      const stack = new Error().stack.split("\n").slice(2).join("\n");
      err(`Trace: ${format(...args)}\n${stack}`);
    };
    console.dir = (value, options) => out(inspect(value, { customInspect: false, ...options }));
  }

  installProcess() {
    const run = this;
    const makeWritable = (channel) => {
      const { Writable } = builtin("node:stream");
      const stream = new Writable({
        write(chunk, encoding, callback) {
          run.writeChannel(channel, typeof chunk === "string" ? chunk : new Uint8Array(chunk));
          callback();
        },
      });
      // Synchronous like a pipe-backed stdout in Node.
      stream.write = (chunk, encoding, callback) => {
        if (typeof chunk === "string" && typeof encoding === "string" && encoding !== "utf8" && encoding !== "utf-8") {
          chunk = Buffer.from(chunk, encoding);
        }
        run.writeChannel(
          channel,
          typeof chunk === "string" ? chunk : new Uint8Array(chunk.buffer ?? chunk, chunk.byteOffset ?? 0, chunk.byteLength ?? chunk.length),
        );
        const done = typeof encoding === "function" ? encoding : callback;
        if (typeof done === "function") queueMicrotask(done);
        return true;
      };
      stream.isTTY = false;
      stream.fd = channel === "o" ? 1 : 2;
      return stream;
    };
    const makeStdin = () => {
      const { Readable } = builtin("node:stream");
      const stdin = new Readable({
        read() {
          if (run.input.stdinMode !== "stream") {
            const bytes = Buffer.from(run.input.stdin ?? "", "base64");
            if (bytes.length > 0) this.push(bytes);
            this.push(null);
            return;
          }
          // A read waiting for the host keeps the run alive, as an open stdin does in Node.
          if (!run.stdinEnded) run.stdinWanted = true;
        },
      });
      stdin.isTTY = false;
      stdin.fd = 0;
      stdin.setRawMode = () => stdin;
      run.stdinStream = stdin;
      for (const chunk of run.stdinBacklog.splice(0)) stdin.push(chunk);
      return stdin;
    };
    const define = (name, value) =>
      Object.defineProperty(process, name, { value, configurable: true, writable: true, enumerable: true });
    const defineLazy = (name, create) => {
      let value;
      Object.defineProperty(process, name, {
        configurable: true,
        enumerable: true,
        get: () => (value ??= create()),
        set: (replacement) => (value = replacement),
      });
    };
    defineLazy("stdout", () => makeWritable("o"));
    defineLazy("stderr", () => makeWritable("e"));
    defineLazy("stdin", makeStdin);
    const env = {};
    for (const [key, value] of Object.entries(this.input.env)) env[key] = String(value);
    define("env", env);
    define("argv", ["/usr/local/bin/node", "/workspace/guest.js", ...(this.input.argv ?? [])]);
    define("cwd", () => run.cwd);
    define("chdir", (directory) => {
      const target = String(directory);
      run.cwd = target.startsWith("/") ? target : `${run.cwd.replace(/\/$/, "")}/${target}`;
    });
    define("exit", (code) => {
      const exitCode = code === undefined ? (typeof process.exitCode === "number" ? process.exitCode : 0) : Number(code) | 0;
      run.finish(exitCode);
      throw new ExitSignal(exitCode);
    });
    define("exitCode", undefined);
  }

  installHostBridge() {
    const run = this;
    globalThis.__return = (value) => {
      const json = value === undefined ? "null" : JSON.stringify(value);
      if (json === undefined) throw new TypeError("__return: value is not JSON-serialisable");
      const bytes = json.length * 3 > run.input.returnBytes ? encoder.encode(json).byteLength : json.length;
      if (bytes > run.input.returnBytes) {
        // Over limits.returnBytes: the host ends the run (137) and says why.
        run.emit({ rl: bytes });
        run.finish(137);
        throw new ExitSignal(137);
      }
      run.returnJson = json;
    };
    globalThis.callHostTool = async (name, toolInput) => {
      if (typeof name !== "string") throw new TypeError("callHostTool: tool name must be a string");
      run.pendingCalls += 1;
      try {
        const reply = await run.hostCall({ kind: "tool", name, input: toolInput === undefined ? null : toolInput });
        if (reply.ok) return reply.result;
        const error = new Error(reply.error);
        error.name = reply.name ?? "HostToolError";
        if (reply.code) error.code = reply.code;
        throw error;
      } finally {
        run.pendingCalls -= 1;
        nativeSetTimeout(() => run.checkIdle(), 0);
      }
    };
    runBridge.current = this.bridge();
    // The sandbox's fs, child_process and http answer `process.getBuiltinModule` too (the
    // host loads them into the isolate when the guest's code mentions getBuiltinModule).
    Object.defineProperty(process, "getBuiltinModule", {
      configurable: true,
      writable: true,
      // workerd's own modules are not Node builtins: undefined, as in Node.
      value: (name) => {
        const sandboxed = sandboxBuiltins.get(name);
        if (sandboxed) return sandboxed;
        if (typeof name === "string" && isRefusedSpecifier(name)) return undefined;
        return name === "module" || name === "node:module" ? guardNodeModule(nativeGetBuiltinModule(name)) : nativeGetBuiltinModule(name);
      },
    });
    runBridge.fsSnapshot = this.input.fs;
  }

  trackFetch() {
    const run = this;
    const nativeFetch = globalThis.fetch;
    const egressToken = run.input.egressToken;
    globalThis.fetch = async function (input, init) {
      run.pendingCalls += 1;
      try {
        if (!egressToken) return await nativeFetch.call(this, input, init);
        // The host's egress proxy knows the run (and its network policy) by this header.
        const request = new Request(input, init);
        const headers = new Headers(request.headers);
        headers.set("x-secure-exec-egress", egressToken);
        const response = await nativeFetch.call(this, new Request(request, { headers }));
        if (response.headers.get("x-secure-exec-denied")) {
          const error = new TypeError(`fetch failed: ${(await response.text()).trim()}`);
          error.code = "EACCES";
          throw error;
        }
        return response;
      } finally {
        run.pendingCalls -= 1;
        nativeSetTimeout(() => run.checkIdle(), 0);
      }
    };
  }

  /**
   * The Workers way: a guest whose default export has `fetch` (e.g. a Hono app) is served on
   * `process.env.PORT` (default 8787) until it is killed, like a listening server.
   */
  serveDefaultExport() {
    const served = guestExports.default;
    if (!served || typeof served.fetch !== "function" || this.finished) return;
    const port = Number(process.env.PORT) || 8787;
    if (httpServers.has(port)) return;
    httpServers.set(port, async (message) => {
      const init = { method: message.method, headers: message.headers };
      if (message.body && message.method !== "GET" && message.method !== "HEAD") init.body = Buffer.from(message.body, "base64");
      const response = await served.fetch(new Request(`http://localhost:${port}${message.path}`, init), this.env, {
        waitUntil() {},
        passThroughOnException() {},
      });
      const headers = {};
      response.headers.forEach((value, name) => (headers[name] = value));
      return {
        ok: true,
        status: response.status,
        statusText: response.statusText,
        headers,
        body: Buffer.from(await response.arrayBuffer()).toString("base64"),
      };
    });
    this.pendingCalls += 1;
    this.emit({ l: port });
  }

  /** Body reads and stream reads are I/O the run waits on: they keep it alive, as in Node. */
  trackStreams() {
    const run = this;
    const hold = (promise) => {
      run.pendingCalls += 1;
      const release = () => {
        run.pendingCalls -= 1;
        nativeSetTimeout(() => run.checkIdle(), 0);
      };
      promise.then(release, release);
      return promise;
    };
    for (const Body of [Response, Request]) {
      for (const method of ["text", "json", "arrayBuffer", "blob", "formData", "bytes"]) {
        const original = Body.prototype[method];
        if (typeof original !== "function") continue;
        Body.prototype[method] = function (...args) {
          return hold(original.apply(this, args));
        };
      }
    }
    const read = ReadableStreamDefaultReader.prototype.read;
    ReadableStreamDefaultReader.prototype.read = function (...args) {
      return hold(read.apply(this, args));
    };
  }

  start() {
    addEventListener("unhandledrejection", (event) => {
      event.preventDefault?.();
      this.fail(event.reason);
    });
    addEventListener("error", (event) => {
      event.preventDefault?.();
      this.fail(event.error ?? event.message);
    });
    this.installTimers();
    this.installConsole();
    this.installProcess();
    this.installHostBridge();
    this.trackFetch();
    this.trackStreams();
    // Work that waits on other requests (stdin, child processes, HTTP) leaves this request
    // with no I/O of its own, which workerd would cancel as hung; a pending timer prevents it.
    this.keepAlive = nativeSetInterval(() => {}, 30_000);
    this.pumpMailbox();
    this.emit({ s: 1 });
    this.mainState = "running";
    guestMain().then(
      () => {
        this.mainState = "settled";
        this.serveDefaultExport();
        this.checkIdle();
      },
      (error) => {
        this.mainState = "settled";
        this.fail(error);
      },
    );
    this.checkIdle();
  }
}
