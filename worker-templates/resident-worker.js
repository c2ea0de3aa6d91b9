// Main module of a resident runner's workerd process (host/engine/resident-runner.ts): one static
// worker that evaluates snippet after snippet in the same isolate, so globals persist.
// Snippets are evaluated through the UNSAFE_EVAL binding (Miniflare's `unsafeEvalBinding`);
// the binding stays in this module's scope and is never handed to guest code.
//
// The host holds one WebSocket to this worker (GET /session, Upgrade: websocket) for the
// runner's whole life, so every snippet runs in that one request's context: I/O objects and
// promises made by one snippet work in the next, and workerd keeps no per-request state per
// snippet (one HTTP request per snippet grows the process by ~2 KB each, never given back).
// A message to the worker is one snippet: "s" (script) or "a" (the host rewrote top-level
// await into an async function, see prepareSnippet), the snippet's name, a newline, the code;
// or "g" and a byte count (see collectGarbage).
// The worker answers with NDJSON events: {o} stdout, {e} stderr, {rp} pieces of the snippet's
// JSON value ({rl: bytes} instead when it is over limits.returnBytes), {x, end?} exit code and
// whether the runner ended (process.exit). The host checks every event against its schema. Events go out in one message when the
// exec ends; an exec still running after FLUSH_AFTER_MS sends what it has so far, so output
// reaches the host while it runs. Every exec follows Node semantics: it ends once the
// snippet settled and no timer it started is pending.
import CONFIG_TEXT from "./resident-config.txt";
import { consoleKit, warningOf, warningText } from "./secure-exec-console.js";
import { makeEnv, makeStdioWritable } from "./secure-exec-process-io.js";
import { hasPrefix, isPlainBuiltinName } from "./secure-exec-bridge.js";

const config = JSON.parse(CONFIG_TEXT);
const FLUSH_AFTER_MS = 10;
/** Pending events are sent once they reach this many characters (messages stay far below workerd's 32 MiB cap). */
const FLUSH_AT_CHARS = 1 << 20;
/** Output and values are cut into events of at most this many characters (at most 6 bytes of JSON each). */
const EVENT_CHARS = 1 << 16;
/** Idle turns granted to a snippet still awaiting with nothing tracked (native I/O settles in a few). */
const UNSETTLED_GRACE_TURNS = 3;
const WORKER_FRAME = /\/(?:resident-worker|secure-exec-console)\.js:/;

// Builtins load on first use.
const builtin = (name) => process.getBuiltinModule(name);
const inspect = (...args) => builtin("node:util").inspect(...args);
const { makeConsole } = consoleKit({
  util: () => builtin("node:util"),
  emitWarning,
  cleanStack: (text) =>
    text
      .split("\n")
      .filter((line) => !WORKER_FRAME.test(line))
      .join("\n"),
  invalidArgType,
});

/**
 * A snippet's `import()` (the host routes each one here): builtins by name, `cloudflare:` and
 * `workerd:` modules as workerd has them, never the runner's own modules. workerd would load
 * those for a relative or bare file name, and resolves `node:/../x` as `x`.
 */
function guestImport(specifier, options) {
  const name = `${specifier}`;
  const prefixed = hasPrefix(name, "node:");
  const bare = prefixed ? name.slice(5) : name;
  if (isPlainBuiltinName(bare) || (!prefixed && (hasPrefix(name, "cloudflare:") || hasPrefix(name, "workerd:")))) {
    // One native import per module: tens of thousands of workerd's own in flight at once take
    // the process down. Each call still gets a promise of its own, as in Node.
    const target = prefixed ? `node:${bare}` : name;
    importing[target] ??= import(target, options);
    return importing[target].then((namespace) => namespace);
  }
  const error = new Error(prefixed ? `No such built-in module: ${name}` : `Cannot find module '${name}' imported from /workspace/snippet.js`);
  error.code = prefixed ? "ERR_UNKNOWN_BUILTIN_MODULE" : "ERR_MODULE_NOT_FOUND";
  return NativePromise.reject(error);
}
/** Native imports by specifier (no prototype: a guest's Object.prototype names are not entries). */
const importing = Object.create(null);
// Fixed on the global: a snippet cannot swap the resolver its own import() calls.
Object.defineProperty(globalThis, "__secureExecImport", { value: guestImport, writable: false, configurable: false, enumerable: false });

// Captured before any guest code runs: a guest replacing them cannot break the channel.
const nativeSetTimeout = globalThis.setTimeout;
const nativeClearTimeout = globalThis.clearTimeout;
const nativeSetInterval = globalThis.setInterval;
const nativeClearInterval = globalThis.clearInterval;
const nativeSetImmediate = globalThis.setImmediate;
const nativeClearImmediate = globalThis.clearImmediate;
const nativeFetch = globalThis.fetch;
const NativeResponse = Response;
const NativeWebSocketPair = WebSocketPair;
const NativePromise = Promise;
const NativeTextDecoder = TextDecoder;
const NativeTextEncoder = TextEncoder;
const stringify = JSON.stringify;

class ExitSignal extends Error {
  constructor(code) {
    super(`process.exit(${code})`);
    this.name = "ExitSignal";
  }
}

/** The UnsafeEval binding; module scope only. */
let evaluator = null;
let installed = false;
/** The exec in flight, if any: console, timers and __return report to it. */
let current = null;
/**
 * The exec whose code is running: every exec runs in an async context of its own, which its
 * promises, timers and callbacks (workerd's own included) carry. Code of an exec that has
 * ended (a native timer it left) reaches no exec: its output, value and timers go nowhere.
 * Code with no context at all (what workerd calls back outside any) belongs to the exec in flight.
 */
let execContext = null;
function ownerExec() {
  const exec = execContext?.getStore();
  if (exec === undefined) return current;
  return exec === current ? exec : null;
}
/** Set once the guest called process.exit: the runner is over. */
let ended = null;
/** The host's WebSocket; there is only ever one. */
let session = null;

export default {
  async fetch(request, env) {
    if (request.headers.get("upgrade") !== "websocket") return new NativeResponse("not found", { status: 404 });
    if (session) return new NativeResponse("the runner already has a session", { status: 409 });
    evaluator = env.UNSAFE_EVAL;
    const [client, server] = Object.values(new NativeWebSocketPair());
    server.accept();
    session = server;
    server.addEventListener("message", (event) => onSnippet(event.data));
    if (!installed) install();
    return new NativeResponse(null, { status: 101, webSocket: client });
  },
};

function send(text) {
  try {
    session.send(text);
  } catch {
    // the host went away; it kills this process
  }
}

function onSnippet(message) {
  if (typeof message !== "string") return;
  if (message[0] === "g") {
    collectGarbage(Number(message.slice(1)));
    return;
  }
  const newline = message.indexOf("\n");
  const name = message.slice(1, newline);
  if (ended || current) {
    const why = ended ? `the runner has ended (process.exit(${ended.code}))` : "a snippet is already running";
    send(`${stringify({ e: `secure-exec: ${why}\n` })}\n${stringify({ x: 1 })}\n`);
    return;
  }
  try {
    new Exec(message.slice(newline + 1), message[0] === "a", name || "snippet").start();
  } catch (error) {
    current?.fail(error);
  }
}

class Exec {
  constructor(code, isAsync, name) {
    this.code = code;
    this.isAsync = isAsync;
    this.name = name;
    this.finished = false;
    this.settled = false;
    this.completion = undefined;
    this.returnJson = undefined;
    /** Pending timers of this exec: handle -> its native clear function. */
    this.timers = new Map();
    this.pendingCalls = 0;
    this.idleCheckScheduled = false;
    this.graceTurns = 0;
    this.budget = { o: config.outputBytes, e: config.outputBytes };
    this.decoders = null;
    this.buffer = "";
    this.flushTimer = undefined;
    /** Output not yet made an event, all of one channel. */
    this.output = "";
    this.outputChannel = "o";
  }

  start() {
    current = this;
    process.exitCode = undefined;
    this.run();
  }

  run() {
    let value;
    try {
      value = execContext ? execContext.run(this, () => evaluator.eval(this.code, this.name)) : evaluator.eval(this.code, this.name);
    } catch (error) {
      this.settled = true;
      this.fail(error);
      return;
    }
    if (this.isAsync) {
      NativePromise.resolve(value).then(
        (result) => {
          this.completion = result;
          this.settled = true;
          this.checkIdle();
        },
        (error) => {
          this.settled = true;
          this.fail(error);
        },
      );
    } else {
      this.completion = value;
      this.settled = true;
    }
    this.checkIdle();
  }

  emit(event) {
    this.buffer += stringify(event) + "\n";
    if (this.buffer.length >= FLUSH_AT_CHARS) this.flush();
    else if (!this.finished && this.flushTimer === undefined) {
      this.flushTimer = nativeSetTimeout(() => this.flush(), FLUSH_AFTER_MS);
    }
  }

  flush() {
    this.flushOutput();
    if (this.flushTimer !== undefined) nativeClearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.buffer.length === 0) return;
    send(this.buffer);
    this.buffer = "";
  }

  writeChannel(channel, chunk) {
    if (this.finished) return;
    let text;
    if (typeof chunk === "string") {
      text = chunk;
    } else {
      this.decoders ??= { o: new NativeTextDecoder(), e: new NativeTextDecoder() };
      text = this.decoders[channel].decode(chunk, { stream: true });
    }
    if (text.length === 0) return;
    const budget = this.budget[channel];
    if (budget <= 0) return;
    // Guest-side cut keeps a flood from filling the pipe; the host applies the exact cap.
    this.budget[channel] = budget - text.length;
    const kept = budget >= text.length ? text : text.slice(0, budget + 1);
    // Writes in a row to one channel make one event: the host parses events, not writes.
    if (this.outputChannel !== channel) this.flushOutput();
    this.outputChannel = channel;
    this.output += kept;
    if (this.output.length >= EVENT_CHARS) this.flushOutput();
    else if (this.flushTimer === undefined) this.flushTimer = nativeSetTimeout(() => this.flush(), FLUSH_AFTER_MS);
  }

  /** The output written since the last event, as events. */
  flushOutput() {
    if (this.output.length === 0) return;
    const text = this.output;
    this.output = "";
    this.emitPieces(this.outputChannel, text);
  }

  /** `text` as events of at most EVENT_CHARS characters, never splitting a surrogate pair. */
  emitPieces(key, text) {
    for (let offset = 0; offset < text.length; ) {
      let end = Math.min(offset + EVENT_CHARS, text.length);
      const last = text.charCodeAt(end - 1);
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
      this.emit({ [key]: text.slice(offset, end) });
      offset = end;
    }
  }

  finish(code, end = false) {
    if (this.finished) return;
    const event = { x: code };
    let json;
    if (code === 0 && !end) {
      json = this.returnJson !== undefined ? this.returnJson : completionJson(this.completion);
      // Serialising the completion runs guest code (toJSON), which may itself have exited.
      if (this.finished) return;
    }
    if (end) event.end = true;
    this.finished = true;
    this.flushOutput();
    if (json !== undefined) {
      const bytes = json.length * 3 > config.returnBytes ? new NativeTextEncoder().encode(json).byteLength : json.length;
      if (bytes > config.returnBytes) this.emit({ rl: bytes });
      else this.emitPieces("rp", json);
    }
    this.emit(event);
    for (const [timer, clear] of this.timers) {
      try {
        clear(timer);
      } catch {
        // already gone
      }
    }
    this.timers.clear();
    if (current === this) current = null;
    this.flush();
  }

  exit(code) {
    ended = { code };
    this.finish(code, true);
  }

  fail(error) {
    if (this.finished || error instanceof ExitSignal) return;
    this.writeChannel("e", `${describeError(error)}\n`);
    this.finish(1);
  }

  hasLiveWork() {
    if (this.pendingCalls > 0) return true;
    for (const timer of this.timers.keys()) {
      if (typeof timer?.hasRef !== "function" || timer.hasRef()) return true;
    }
    return false;
  }

  // The exec ends once the snippet settled and nothing keeps it alive; a snippet left
  // awaiting what nothing can resolve ends like Node's unsettled top-level await (13).
  checkIdle() {
    if (this.finished || this.idleCheckScheduled || this.hasLiveWork()) return;
    this.idleCheckScheduled = true;
    nativeSetTimeout(() => {
      this.idleCheckScheduled = false;
      if (this.finished || this.hasLiveWork()) return;
      if (!this.settled) {
        if (this.graceTurns < UNSETTLED_GRACE_TURNS) {
          this.graceTurns += 1;
          this.checkIdle();
          return;
        }
        this.writeChannel("e", "Warning: Detected unsettled top-level await\n");
        this.finish(13);
        return;
      }
      this.finish(typeof process.exitCode === "number" ? process.exitCode | 0 : 0);
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
}

/**
 * V8 sizes its heap for the machine, not for the process's RLIMIT_DATA cap, so it may not
 * collect until the cap is hit, and a V8 that cannot grow its heap aborts. Compiled snippets
 * are such garbage (~1-3 KB each). When the host sees the process nearing its cap it asks for
 * an allocation larger than the cap allows: V8 answers a failed ArrayBuffer allocation with
 * full garbage collections, then a RangeError. The host sends this only when the cap is set.
 */
function collectGarbage(bytes) {
  if (!(bytes > 0)) return;
  try {
    new ArrayBuffer(bytes);
  } catch {
    // expected: the allocation fails after V8 collected
  }
}

function completionJson(value) {
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return undefined;
  // A promise the snippet did not await is not its value.
  if (value !== null && typeof value === "object" && typeof value.then === "function") return undefined;
  try {
    return stringify(value);
  } catch {
    return undefined;
  }
}

function describeError(error) {
  try {
    if (error instanceof Error) {
      const stack = typeof error.stack === "string" && error.stack.includes(error.message) ? error.stack : inspect(error);
      // Frames of this module are the runner's, not the guest's.
      return stack
        .split("\n")
        .filter((line) => !WORKER_FRAME.test(line))
        .join("\n");
    }
    return `Uncaught ${inspect(error)}`;
  } catch {
    return "Uncaught exception";
  }
}

function install() {
  installed = true;
  execContext = new (builtin("node:async_hooks").AsyncLocalStorage)();
  addEventListener("unhandledrejection", (event) => {
    event.preventDefault?.();
    ownerExec()?.fail(event.reason);
  });
  addEventListener("error", (event) => {
    event.preventDefault?.();
    ownerExec()?.fail(event.error ?? event.message);
  });
  installTimers();
  installConsole();
  installProcess();
  installGlobals();
}

/**
 * Guest code that runs with no exec in flight (called back by a native timer or I/O the
 * runner does not track) must not start work of its own: its timers get a handle, never fire.
 */
function inert(create, clear, ...createArgs) {
  const handle = create(() => {}, ...createArgs);
  clear(handle);
  return handle;
}

function installTimers() {
  const track = (create, clear, repeat) =>
    function (callback, delay, ...args) {
      if (typeof callback !== "function") {
        throw new TypeError('The "callback" argument must be of type function');
      }
      const owner = ownerExec();
      if (!owner) return inert(create, clear, delay);
      let handle;
      handle = create(() => {
        if (!repeat) owner.timers.delete(handle);
        owner.invokeGuest(callback, args);
      }, delay);
      owner.timers.set(handle, clear);
      return handle;
    };
  const untrack = (clear) => (handle) => {
    clear(handle);
    const owner = ownerExec();
    if (owner && owner.timers.delete(handle)) owner.checkIdle();
  };
  globalThis.setTimeout = track(nativeSetTimeout, nativeClearTimeout, false);
  globalThis.setInterval = track(nativeSetInterval, nativeClearInterval, true);
  // util.promisify(setTimeout) as in Node: a promise of the value, on the exec's own timer.
  const promisifyCustom = Symbol.for("nodejs.util.promisify.custom");
  globalThis.setTimeout[promisifyCustom] = (delay, value) => new NativePromise((resolve) => globalThis.setTimeout(resolve, delay, value));
  globalThis.clearTimeout = untrack(nativeClearTimeout);
  globalThis.clearInterval = untrack(nativeClearInterval);
  if (typeof nativeSetImmediate === "function") {
    globalThis.setImmediate = function (callback, ...args) {
      if (typeof callback !== "function") {
        throw new TypeError('The "callback" argument must be of type function');
      }
      const owner = ownerExec();
      if (!owner) return inert(nativeSetImmediate, nativeClearImmediate);
      let handle;
      handle = nativeSetImmediate(() => {
        owner.timers.delete(handle);
        owner.invokeGuest(callback, args);
      });
      owner.timers.set(handle, nativeClearImmediate);
      return handle;
    };
    globalThis.clearImmediate = untrack(nativeClearImmediate);
    globalThis.setImmediate[promisifyCustom] = (value) => new NativePromise((resolve) => globalThis.setImmediate(resolve, value));
  }
}

function installConsole() {
  Object.assign(console, makeConsole((channel, text) => ownerExec()?.writeChannel(channel, text)));
}

function invalidArgType(name, expected, value) {
  const error = new TypeError(`The "${name}" argument must be ${expected}. Received ${value === null ? "null" : typeof value}`);
  error.code = "ERR_INVALID_ARG_TYPE";
  return error;
}

let firstWarning = true;
/** Node's process.emitWarning, written to the exec in flight (workerd's prints nothing). */
function emitWarning(message, type, code) {
  const warning = warningOf(message, type, code);
  const owner = ownerExec();
  if (!owner || !warning) return;
  const text = warningText(warning, process.pid ?? 1000, firstWarning);
  firstWarning = false;
  queueMicrotask(() => owner.writeChannel("e", text));
}

function installProcess() {
  const makeWritable = (channel) =>
    makeStdioWritable(channel, (chunk) => ownerExec()?.writeChannel(channel, chunk), { Writable: builtin("node:stream").Writable, Buffer: builtin("node:buffer").Buffer, invalidArgType });
  const makeStdin = () => {
    const { Readable } = builtin("node:stream");
    // A resident runner has no stdin: reads see end-of-input.
    const stdin = new Readable({
      read() {
        this.push(null);
      },
    });
    stdin.fd = 0;
    stdin.setRawMode = () => stdin;
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
  define("env", makeEnv(config.env));
  define("argv", ["/usr/local/bin/node"]);
  let cwd = config.cwd;
  define("cwd", () => cwd);
  define("chdir", (directory) => {
    const target = String(directory);
    cwd = target.startsWith("/") ? target : `${cwd.replace(/\/$/, "")}/${target}`;
  });
  define("exit", (code) => {
    const exitCode =
      code === undefined ? (typeof process.exitCode === "number" ? process.exitCode | 0 : 0) : Number(code) | 0;
    if (current) current.exit(exitCode);
    else ended = { code: exitCode };
    throw new ExitSignal(exitCode);
  });
  define("exitCode", undefined);
  define("emitWarning", emitWarning);
}

function installGlobals() {
  globalThis.__return = (value) => {
    const json = value === undefined ? "null" : stringify(value);
    if (json === undefined) throw new TypeError("__return: value is not JSON-serialisable");
    const owner = ownerExec();
    if (owner) owner.returnJson = json;
  };
  // The outbound service refuses every request; a pending fetch still keeps the exec alive,
  // and so does workerd's scheduler.wait (a timer of its own).
  const tracked = (native) =>
    async function (...args) {
      const owner = ownerExec();
      // Between execs nothing of the guest's proceeds: the call never settles.
      if (!owner) return new NativePromise(() => {});
      owner.pendingCalls += 1;
      try {
        return await native.apply(this, args);
      } finally {
        owner.pendingCalls -= 1;
        nativeSetTimeout(() => owner.checkIdle(), 0);
      }
    };
  globalThis.fetch = tracked(nativeFetch);
  if (typeof globalThis.scheduler?.wait === "function") {
    const wait = tracked(globalThis.scheduler.wait);
    // On the prototype too, where a guest finds the unwrapped one.
    for (const holder of [globalThis.scheduler, Object.getPrototypeOf(globalThis.scheduler)]) {
      try {
        Object.defineProperty(holder, "wait", { value: wait, writable: true, configurable: true });
      } catch {
        // a read-only scheduler stays as workerd made it
      }
    }
  }
  // An exec's timeout signals are its timers (unref'd, as in Node: they keep nothing alive),
  // cleared when it ends; made between execs, they never abort.
  const nativeTimeoutSignal = AbortSignal.timeout;
  AbortSignal.timeout = function timeout(delay) {
    // Anything but a plain delay is workerd's to refuse; a plain one must not cost a native
    // timer of its own (it would count against the isolate's timers until it fires).
    if (!(Number.isInteger(delay) && delay >= 0 && delay <= 0xffffffff)) nativeTimeoutSignal.call(AbortSignal, delay);
    const controller = new AbortController();
    const owner = ownerExec();
    if (!owner) return controller.signal;
    const handle = nativeSetTimeout(() => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), delay);
    owner.timers.set({ hasRef: () => false }, () => nativeClearTimeout(handle));
    return controller.signal;
  };
}
