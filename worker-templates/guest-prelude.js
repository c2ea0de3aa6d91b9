// Main module of every guest isolate. The host generates `guest.js` (the guest's code with
// its static imports hoisted and its body wrapped in an async function); this prelude gives
// that function a Node-like world and reports what it does as NDJSON events on the response
// body: {o} stdout, {e} stderr, {x, r} exit + return.
//
// The `process` a guest sees is built here; workerd's own is never touched (even its small v1
// `process` costs ~2.5 ms of CPU per isolate to load). Builtins come from a CommonJS
// module's `require` (secure-exec-require.cjs), loaded only when a run uses one.
// guest.js is imported inside the run's request, after that `process` exists, so package
// code that reads `process.env` at load time sees the run's env, and may use timers.
import { consoleKit, warningOf, warningText } from "./secure-exec-console.js";
import { makeEnv, makeStdioWritable } from "./secure-exec-process-io.js";
import nativeRequire from "./secure-exec-require.cjs";
import { bridge as runBridge, deliveryHandlers, hasPrefix, httpServers, isPlainBuiltinName, isRefusedSpecifier, sandboxBuiltins, unsupportedSchemeError } from "./secure-exec-bridge.js";

// Everything the run's own channel needs is captured before any guest code runs: a guest
// that replaces `Response`, `JSON` or `TextEncoder` must not lose its output.
const NativeResponse = Response;
const NativeRequest = Request;
const NativeHeaders = Headers;
const NativeTransformStream = TransformStream;
const NativeIdentityTransformStream = IdentityTransformStream;
const NativeTextEncoder = TextEncoder;
const NativeTextDecoder = TextDecoder;
const NativeURL = URL;
const NativeError = Error;
const NativeTypeError = TypeError;
const NativeRangeError = RangeError;
const NativePromise = Promise;
const NativeMap = Map;
const stringify = JSON.stringify;
const parseJson = JSON.parse;
const nativeQueueMicrotask = queueMicrotask;
const nativeSetTimeout = globalThis.setTimeout;
const nativeClearTimeout = globalThis.clearTimeout;
const nativeSetInterval = globalThis.setInterval;
const nativeClearInterval = globalThis.clearInterval;
const nativeSetImmediate = globalThis.setImmediate;
const nativeClearImmediate = globalThis.clearImmediate;
const nativeReaderRead = ReadableStreamDefaultReader.prototype.read;
const nativeRequestText = Request.prototype.text;
const nativeDateNow = Date.now;
const nativePerformanceNow = performance.now.bind(performance);
const encoder = new NativeTextEncoder();
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

// Builtins load on first use: most runs never touch util or streams, and every isolate is new.
const builtin = (name) => nativeGetBuiltinModule(name);

/** A Node builtin ("util" or "node:util"), undefined if there is none, as `process.getBuiltinModule`. */
function nativeGetBuiltinModule(name) {
  const bare = hasPrefix(name, "node:") ? name.slice(5) : name;
  // Always `node:`-prefixed and plain: require() of a bare or relative name would reach the
  // isolate's own modules.
  if (!isPlainBuiltinName(bare)) return undefined;
  try {
    return nativeRequire(`node:${bare}`);
  } catch {
    return undefined;
  }
}

/** node:buffer's Buffer, resolved on first use: loading node:buffer costs ~3 ms of CPU per isolate. */
const nativeBuffer = () => builtin("node:buffer").Buffer;
/** node:util, with Node's inspection of what workerd formats its own way (installed on first use). */
const nodeUtil = () => {
  installInspection();
  return builtin("node:util");
};
const inspect = (value, options) => nodeUtil().inspect(value, options);

const { format, makeConsole } = consoleKit({ util: nodeUtil, emitWarning, cleanStack, invalidArgType });

class ExitSignal extends NativeError {
  constructor(code) {
    super(`process.exit(${code})`);
    this.name = "ExitSignal";
  }
}

/** An error shaped like Node's internal ones (`code`, `name [code]` in the stack). */
function nodeError(Type, code, message) {
  const error = new Type(message);
  Object.defineProperty(error, "code", { value: code, enumerable: true, writable: true, configurable: true });
  // Node prints `TypeError [ERR_X]: message` as the first stack line.
  if (typeof error.stack === "string") error.stack = error.stack.replace(/^[^:\n]*/, `${error.name} [${code}]`);
  return error;
}

/** Node's description of a wrong argument ("Received type number (42)" and friends). */
function received(value) {
  if (value === undefined || value === null) return ` Received ${value}`;
  if (typeof value === "function") return ` Received function ${value.name || "<anonymous>"}`;
  if (typeof value === "object") {
    const name = value.constructor?.name;
    return name ? ` Received an instance of ${name}` : ` Received ${inspect(value, { depth: -1 })}`;
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return ` Received type ${typeof value} (${shown})`;
}

function invalidArgType(name, expected, value) {
  return nodeError(NativeTypeError, "ERR_INVALID_ARG_TYPE", `The "${name}" argument must be ${expected}.${received(value)}`);
}

let activeRun = null;

// ----------------------------- events -----------------------------

/** Enough of EventEmitter for `process` (node:events loads only if a guest uses it). */
class Emitter {
  #events = new NativeMap();
  #maxListeners = 10;
  #warned = new Set();

  #add(name, listener, prepend, once) {
    if (typeof listener !== "function") throw invalidArgType("listener", "of type function", listener);
    let list = this.#events.get(name);
    if (!list) this.#events.set(name, (list = []));
    const entry = { listener, once };
    if (prepend) list.unshift(entry);
    else list.push(entry);
    if (list.length > this.#maxListeners && this.#maxListeners > 0 && !this.#warned.has(name)) {
      this.#warned.add(name);
      const warning = new NativeError(
        `Possible EventEmitter memory leak detected. ${list.length} ${String(name)} listeners added to [process]. MaxListeners is ${this.#maxListeners}. Use emitter.setMaxListeners() to increase limit`,
      );
      warning.name = "MaxListenersExceededWarning";
      guestProcess.emitWarning(warning);
    }
    if (name !== "newListener") this.emit("newListener", name, listener);
    return this;
  }

  on(name, listener) {
    return this.#add(name, listener, false, false);
  }
  addListener(name, listener) {
    return this.#add(name, listener, false, false);
  }
  prependListener(name, listener) {
    return this.#add(name, listener, true, false);
  }
  once(name, listener) {
    return this.#add(name, listener, false, true);
  }
  prependOnceListener(name, listener) {
    return this.#add(name, listener, true, true);
  }
  off(name, listener) {
    return this.removeListener(name, listener);
  }
  removeListener(name, listener) {
    const list = this.#events.get(name);
    if (!list) return this;
    for (let index = list.length - 1; index >= 0; index -= 1) {
      if (list[index].listener === listener) {
        list.splice(index, 1);
        if (list.length === 0) this.#events.delete(name);
        this.emit("removeListener", name, listener);
        break;
      }
    }
    return this;
  }
  removeAllListeners(name) {
    if (name === undefined) this.#events.clear();
    else this.#events.delete(name);
    return this;
  }
  emit(name, ...args) {
    const list = this.#events.get(name);
    if (!list || list.length === 0) {
      if (name === "error") throw args[0] instanceof NativeError ? args[0] : new NativeError(`Unhandled error. (${format(args[0])})`);
      return false;
    }
    for (const entry of [...list]) {
      if (entry.once) this.removeListener(name, entry.listener);
      entry.listener.apply(this, args);
    }
    return true;
  }
  listeners(name) {
    return (this.#events.get(name) ?? []).map((entry) => entry.listener);
  }
  rawListeners(name) {
    return this.listeners(name);
  }
  listenerCount(name) {
    return this.#events.get(name)?.length ?? 0;
  }
  eventNames() {
    return [...this.#events.keys()];
  }
  setMaxListeners(count) {
    this.#maxListeners = count;
    return this;
  }
  getMaxListeners() {
    return this.#maxListeners;
  }
}

// ----------------------------- timers -----------------------------

const TIMEOUT_MAX = 2 ** 31 - 1;
let nextTimerId = 1;
/** Every live timer and immediate of the run, by id: what keeps the run alive. */
const liveTimers = new NativeMap();

function timerDelay(delay) {
  let after = delay * 1;
  if (!(after >= 1 && after <= TIMEOUT_MAX)) {
    if (after > TIMEOUT_MAX) {
      guestProcess.emitWarning(`${after} does not fit into a 32-bit signed integer.\nTimeout duration was set to 1.`, "TimeoutOverflowWarning");
    }
    after = 1;
  }
  return after;
}

class Timeout {
  #native;
  #callback;
  #args;
  #repeat;
  #ref = true;
  constructor(callback, delay, args, repeat) {
    this._idleTimeout = timerDelay(delay);
    this._onTimeout = callback;
    this._repeat = repeat ? this._idleTimeout : null;
    this._destroyed = false;
    this.#callback = callback;
    this.#args = args;
    this.#repeat = repeat;
    this.id = nextTimerId++;
    liveTimers.set(this.id, this);
    this.#schedule();
  }
  #schedule() {
    const fire = () => {
      if (!this.#repeat) this.#drop();
      activeRun?.invokeGuest(this.#callback, this, this.#args);
    };
    this.#native = this.#repeat ? nativeSetInterval(fire, this._idleTimeout) : nativeSetTimeout(fire, this._idleTimeout);
  }
  #drop() {
    this._destroyed = true;
    liveTimers.delete(this.id);
  }
  clear() {
    if (this._destroyed) return;
    if (this.#repeat) nativeClearInterval(this.#native);
    else nativeClearTimeout(this.#native);
    this.#drop();
    activeRun?.checkIdle();
  }
  ref() {
    this.#ref = true;
    return this;
  }
  unref() {
    this.#ref = false;
    activeRun?.checkIdle();
    return this;
  }
  hasRef() {
    return this.#ref;
  }
  get keepsAlive() {
    return this.#ref;
  }
  refresh() {
    if (this._destroyed) return this;
    if (this.#repeat) nativeClearInterval(this.#native);
    else nativeClearTimeout(this.#native);
    this.#schedule();
    return this;
  }
  close() {
    this.clear();
    return this;
  }
  [Symbol.toPrimitive]() {
    return this.id;
  }
  [Symbol.dispose]() {
    this.clear();
  }
}

class Immediate {
  #native;
  #ref = true;
  constructor(callback, args) {
    this._onImmediate = callback;
    this._destroyed = false;
    this.id = nextTimerId++;
    liveTimers.set(this.id, this);
    const fire = () => {
      this.#drop();
      activeRun?.invokeGuest(callback, this, args);
    };
    this.#native = typeof nativeSetImmediate === "function" ? nativeSetImmediate(fire) : nativeSetTimeout(fire, 0);
  }
  #drop() {
    this._destroyed = true;
    liveTimers.delete(this.id);
  }
  clear() {
    if (this._destroyed) return;
    if (typeof nativeClearImmediate === "function") nativeClearImmediate(this.#native);
    else nativeClearTimeout(this.#native);
    this.#drop();
    activeRun?.checkIdle();
  }
  ref() {
    this.#ref = true;
    return this;
  }
  unref() {
    this.#ref = false;
    activeRun?.checkIdle();
    return this;
  }
  hasRef() {
    return this.#ref;
  }
  get keepsAlive() {
    return this.#ref;
  }
  [Symbol.dispose]() {
    this.clear();
  }
}

function checkCallback(callback) {
  if (typeof callback !== "function") throw invalidArgType("callback", "of type function", callback);
}

function setTimeout(callback, delay, ...args) {
  checkCallback(callback);
  return new Timeout(callback, delay, args, false);
}
function setInterval(callback, delay, ...args) {
  checkCallback(callback);
  return new Timeout(callback, delay, args, true);
}
function setImmediate(callback, ...args) {
  checkCallback(callback);
  return new Immediate(callback, args);
}
/** Clears a Timeout, or a timer by its numeric id (`+timeout`), as Node does. */
function clearTimeout(timer) {
  if (timer instanceof Timeout) return timer.clear();
  if (typeof timer === "number" || typeof timer === "string") {
    const found = liveTimers.get(Number(timer));
    if (found instanceof Timeout) found.clear();
  }
}
function clearImmediate(immediate) {
  if (immediate instanceof Immediate) immediate.clear();
}

function abortError(signal) {
  const error = new NativeError("The operation was aborted", { cause: signal?.reason });
  error.name = "AbortError";
  error.code = "ABORT_ERR";
  return error;
}

function checkTimerOptions(options) {
  if (options === null || typeof options !== "object") throw invalidArgType("options", "of type object", options);
  const { signal, ref } = options;
  if (signal !== undefined && (signal === null || typeof signal !== "object" || !("aborted" in signal))) {
    throw invalidArgType("options.signal", "an instance of AbortSignal", signal);
  }
  if (ref !== undefined && typeof ref !== "boolean") throw invalidArgType("options.ref", "of type boolean", ref);
  return { signal, ref: ref !== false };
}

/** A promise settled by a tracked timer: it keeps the run alive like any timer. */
function timerPromise(make, value, options = {}) {
  let settings;
  try {
    settings = checkTimerOptions(options);
  } catch (error) {
    return NativePromise.reject(error);
  }
  const { signal, ref } = settings;
  if (signal?.aborted) return NativePromise.reject(abortError(signal));
  return new NativePromise((resolve, reject) => {
    const onAbort = () => {
      timer.clear();
      reject(abortError(signal));
    };
    const timer = make(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(value);
    });
    if (!ref) timer.unref();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const timersPromises = {
  setTimeout: (delay, value, options) => timerPromise((done) => setTimeout(done, delay), value, options),
  setImmediate: (value, options) => timerPromise((done) => setImmediate(done), value, options),
  async *setInterval(delay, value, options = {}) {
    const { signal, ref } = checkTimerOptions(options);
    if (signal?.aborted) throw abortError(signal);
    let pending = 0;
    let wake = null;
    const timer = setInterval(() => {
      pending += 1;
      wake?.();
    }, delay);
    if (!ref) timer.unref();
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      for (;;) {
        if (signal?.aborted) throw abortError(signal);
        if (pending === 0) await new NativePromise((resolve) => (wake = resolve));
        wake = null;
        if (signal?.aborted) throw abortError(signal);
        if (pending > 0) {
          pending -= 1;
          yield value;
        }
      }
    } finally {
      timer.clear();
      signal?.removeEventListener("abort", onAbort);
    }
  },
  scheduler: {
    wait: (delay, options) => timerPromise((done) => setTimeout(done, delay), undefined, options),
    yield: () => timerPromise((done) => setImmediate(done), undefined),
  },
};

const promisifyCustom = Symbol.for("nodejs.util.promisify.custom");
Object.defineProperty(setTimeout, promisifyCustom, { value: timersPromises.setTimeout, configurable: true });
Object.defineProperty(setImmediate, promisifyCustom, { value: timersPromises.setImmediate, configurable: true });

const timersModule = {
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval: clearTimeout,
  setImmediate,
  clearImmediate,
  promises: timersPromises,
};

// ----------------------------- process -----------------------------

const SIGNALS = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGIOT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGCHLD: 17, SIGSTKFLT: 16,
  SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25,
  SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPOLL: 29, SIGPWR: 30, SIGSYS: 31,
};
/** Signals whose default action is to do nothing. */
const IGNORED_SIGNALS = new Set(["SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH"]);

const NODE_VERSION = "22.19.0";
const startedAt = nativePerformanceNow();
const hrtimeBase = BigInt(nativeDateNow()) * 1_000_000n;

function hrtimeNs() {
  return hrtimeBase + BigInt(Math.round(nativePerformanceNow() * 1e6));
}

function hrtime(previous) {
  const now = hrtimeNs();
  let seconds = Number(now / 1_000_000_000n);
  let nanos = Number(now % 1_000_000_000n);
  if (previous !== undefined) {
    if (!Array.isArray(previous)) throw invalidArgType("time", "an instance of Array", previous);
    if (previous.length !== 2) {
      throw nodeError(NativeRangeError, "ERR_OUT_OF_RANGE", `The value of "time" is out of range. It must be 2. Received ${previous.length}`);
    }
    seconds -= previous[0];
    nanos -= previous[1];
    if (nanos < 0) {
      seconds -= 1;
      nanos += 1e9;
    }
  }
  return [seconds, nanos];
}
hrtime.bigint = hrtimeNs;

/** workerd gives no per-isolate heap figures: fixed, plausible estimates (see docs/architecture.md). */
function memoryUsage() {
  return { rss: 50_331_648, heapTotal: 8_388_608, heapUsed: 5_242_880, external: 1_048_576, arrayBuffers: 16_384 };
}
memoryUsage.rss = () => 50_331_648;

function normalizePath(path) {
  const parts = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function systemError(code, errno, syscall, message, extra) {
  const error = new NativeError(`${code}: ${message}, ${syscall}${extra.detail ?? ""}`);
  error.errno = errno;
  error.code = code;
  error.syscall = syscall;
  for (const [key, value] of Object.entries(extra.fields ?? {})) error[key] = value;
  return error;
}

function makeWritable(channel) {
  const stream = makeStdioWritable(channel, (text) => activeRun?.writeChannel(channel, text), { Writable: builtin("node:stream").Writable, Buffer: nativeBuffer(), invalidArgType });
  stdio[channel] = stream;
  return stream;
}

function makeStdin() {
  const run = activeRun;
  const { Readable } = builtin("node:stream");
  const stdin = new Readable({
    read() {
      // No run yet (a preload's packages loading): no input. The preload declines its start.
      if (!run || run.input === undefined) return this.push(null);
      if (run.input.stdinMode !== "stream") {
        const bytes = nativeBuffer().from(run.input.stdin ?? "", "base64");
        if (bytes.length > 0) this.push(bytes);
        this.push(null);
        return;
      }
      // A read waiting for the host keeps the run alive, as an open stdin does in Node.
      if (!run.stdinEnded) run.stdinWanted = true;
    },
  });
  stdin.fd = 0;
  stdin.setRawMode = () => stdin;
  if (run) {
    run.stdinStream = stdin;
    for (const chunk of run.stdinBacklog.splice(0)) stdin.push(chunk);
  }
  return stdin;
}

class Process extends Emitter {}
const guestProcess = new Process();
let firstWarning = true;

function defineValue(name, value) {
  Object.defineProperty(guestProcess, name, { value, configurable: true, writable: true, enumerable: true });
}
function defineLazy(name, create, replaced) {
  let value;
  Object.defineProperty(guestProcess, name, {
    configurable: true,
    enumerable: true,
    get: () => (value ??= create()),
    set: (replacement) => {
      value = replacement;
      replaced?.(replacement);
    },
  });
}

defineValue("version", `v${NODE_VERSION}`);
defineValue(
  "versions",
  Object.freeze({
    node: NODE_VERSION,
    acorn: "8.15.0",
    ada: "2.9.2",
    ares: "1.34.5",
    brotli: "1.1.0",
    cjs_module_lexer: "2.1.0",
    cldr: "47.0",
    icu: "77.1",
    llhttp: "9.3.0",
    modules: "127",
    napi: "10",
    nghttp2: "1.64.0",
    openssl: "3.0.15+quic",
    simdjson: "3.13.0",
    simdutf: "6.4.2",
    tz: "2025b",
    undici: "6.21.2",
    unicode: "16.0",
    uv: "1.51.0",
    uvwasi: "0.0.21",
    v8: "12.4.254.21-node.29",
    zlib: "1.3.1-470d3a2",
  }),
);
defineValue("release", Object.freeze({ name: "node", lts: "Jod" }));
defineValue("platform", "linux");
defineValue("arch", "x64");
defineValue("title", "node");
defineValue("argv0", "node");
defineValue("execPath", "/usr/local/bin/node");
defineValue("execArgv", []);
// Not 1: `process.kill(1, ...)` must not read as the guest killing itself.
defineValue("pid", 1000);
defineValue("ppid", 1);
// workerd's figures for its own build: no inspector, BoringSSL, no require(esm).
defineValue(
  "features",
  Object.freeze({ cached_builtins: true, debug: false, inspector: false, ipv6: true, openssl_is_boringssl: true, require_module: false, tls: true, tls_alpn: true, tls_ocsp: true, tls_sni: true, typescript: false, uv: true }),
);
defineValue("config", Object.freeze({ target_defaults: {}, variables: {} }));
defineValue("env", makeEnv({}));
defineValue("argv", ["/usr/local/bin/node", "/workspace/guest.js"]);
defineValue("exitCode", undefined);
defineValue("hrtime", hrtime);
defineValue("memoryUsage", memoryUsage);
defineValue("uptime", () => (nativePerformanceNow() - startedAt) / 1000);
defineValue("cpuUsage", () => ({ user: 0, system: 0 }));
defineValue("resourceUsage", () => ({ userCPUTime: 0, systemCPUTime: 0, maxRSS: 49_152 }));
defineValue("umask", () => 0o22);
defineValue("getuid", () => 0);
defineValue("getgid", () => 0);
defineValue("geteuid", () => 0);
defineValue("getegid", () => 0);
defineValue("getgroups", () => [0]);
defineValue("emitWarning", emitWarning);
defineValue("nextTick", (callback, ...args) => {
  checkCallback(callback);
  nativeQueueMicrotask(() => activeRun?.invokeGuest(callback, undefined, args));
});
defineValue("cwd", () => activeRun?.cwd ?? "/");
defineValue("chdir", chdir);
defineValue("exit", exit);
defineValue("reallyExit", exit);
defineValue("abort", () => exit(134));
defineValue("kill", kill);
defineValue("binding", (name) => {
  throw new NativeError(`No such module: ${name}`);
});
defineValue("getBuiltinModule", getBuiltinModule);
defineValue("setUncaughtExceptionCaptureCallback", (callback) => (uncaughtCapture = callback));
defineValue("hasUncaughtExceptionCaptureCallback", () => uncaughtCapture !== null);
defineLazy("stdout", () => makeWritable("o"), (value) => (stdio.o = value));
defineLazy("stderr", () => makeWritable("e"), (value) => (stdio.e = value));
defineLazy("stdin", makeStdin);
Object.defineProperty(guestProcess, Symbol.toStringTag, { value: "process" });
let uncaughtCapture = null;

function emitWarning(message, type, code) {
  const warning = warningOf(message, type, code);
  if (!warning) throw invalidArgType("warning", "of type string or an instance of Error", message);
  if (warning.name === "DeprecationWarning" && guestProcess.noDeprecation) return;
  nativeQueueMicrotask(() => {
    guestProcess.emit("warning", warning);
    const text = warningText(warning, guestProcess.pid, firstWarning);
    firstWarning = false;
    activeRun?.writeChannel("e", text);
  });
}

function chdir(directory) {
  if (typeof directory !== "string") throw invalidArgType("directory", "of type string", directory);
  const run = activeRun;
  const current = run?.cwd ?? "/";
  const target = normalizePath(directory.startsWith("/") ? directory : `${current}/${directory}`);
  const fs = sandboxBuiltins.get("fs");
  let kind;
  if (fs) {
    try {
      kind = fs.statSync(target).isDirectory() ? "dir" : "file";
    } catch {
      kind = undefined;
    }
  } else {
    // Without the filesystem only the directories every run has are known to exist.
    const known = new Set(["/", "/tmp", "/workspace"]);
    for (let path = run?.initialCwd ?? "/"; path !== "/"; path = path.slice(0, path.lastIndexOf("/")) || "/") known.add(path);
    kind = known.has(target) ? "dir" : undefined;
  }
  if (kind !== "dir") {
    const [code, errno, message] = kind === "file" ? ["ENOTDIR", -20, "not a directory"] : ["ENOENT", -2, "no such file or directory"];
    throw systemError(code, errno, "chdir", message, {
      detail: ` '${current}' -> '${directory}'`,
      fields: { path: current, dest: directory },
    });
  }
  if (run) run.cwd = target;
}

function exitCodeOf(code) {
  if (code === undefined || code === null) {
    const current = guestProcess.exitCode;
    return current === undefined || current === null ? 0 : Number(current) & 0xff;
  }
  const number = Number(code);
  if (!Number.isInteger(number)) throw invalidArgType("code", "of type number", code);
  return number & 0xff;
}

function exit(code) {
  const exitCode = exitCodeOf(code);
  if (code !== undefined && code !== null) guestProcess.exitCode = exitCode;
  activeRun?.exit(exitCode);
  throw new ExitSignal(exitCode);
}

function kill(pid, signal = "SIGTERM") {
  if (typeof pid !== "number" || !Number.isInteger(pid)) throw invalidArgType("pid", "of type number", pid);
  let name;
  if (typeof signal === "number") {
    name = Object.keys(SIGNALS).find((key) => SIGNALS[key] === signal);
    if (signal !== 0 && !name) throw nodeError(NativeTypeError, "ERR_UNKNOWN_SIGNAL", `Unknown signal: ${signal}`);
  } else {
    name = String(signal).toUpperCase();
    if (!(name in SIGNALS)) throw nodeError(NativeTypeError, "ERR_UNKNOWN_SIGNAL", `Unknown signal: ${signal}`);
  }
  if (pid !== guestProcess.pid && pid !== 0 && pid !== -guestProcess.pid) {
    throw systemError("ESRCH", -3, "kill", "no such process", { detail: "" });
  }
  if (signal === 0) return true;
  // Delivered like a real signal: after the current turn.
  nativeSetTimeout(() => {
    const run = activeRun;
    if (!run || run.finished) return;
    if (name !== "SIGKILL" && name !== "SIGSTOP" && guestProcess.listenerCount(name) > 0) {
      run.invokeGuest(() => guestProcess.emit(name, name, SIGNALS[name]), undefined, []);
      return;
    }
    if (IGNORED_SIGNALS.has(name)) return;
    run.finish(128 + SIGNALS[name], { runExitHandlers: false });
  }, 0);
  return true;
}

// ------------------------ modules the prelude provides ------------------------

function osModule() {
  const native = builtin("node:os");
  const totalmem = () => {
    // A package asking as a preloaded run loads would get the preload's answer.
    if (activeRun && activeRun.input === undefined) activeRun.readRunStateEarly = true;
    return (activeRun?.input?.memoryMb ?? 128) * 1024 * 1024;
  };
  const cpu = { model: "Virtual CPU (secure-exec isolate)", speed: 2400, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
  const overrides = {
    cpus: () => [structuredClone(cpu)],
    availableParallelism: () => 1,
    totalmem,
    freemem: () => Math.max(0, totalmem() - memoryUsage.rss()),
    uptime: () => Math.max(1, Math.round(guestProcess.uptime())),
    loadavg: () => [0, 0, 0],
    homedir: () => guestProcess.env.HOME ?? "/root",
    tmpdir: () => {
      const dir = guestProcess.env.TMPDIR ?? guestProcess.env.TMP ?? guestProcess.env.TEMP ?? "/tmp";
      return dir.length > 1 && dir.endsWith("/") ? dir.slice(0, -1) : dir;
    },
    userInfo: (options) => {
      const name = guestProcess.env.USER ?? "root";
      const info = { uid: 0, gid: 0, username: name, homedir: guestProcess.env.HOME ?? "/root", shell: "/bin/sh" };
      return options?.encoding === "buffer" ? { ...info, username: nativeBuffer().from(name), homedir: nativeBuffer().from(info.homedir), shell: nativeBuffer().from(info.shell) } : info;
    },
    release: () => "6.8.0",
    version: () => "#1 SMP",
    machine: () => "x86_64",
  };
  const merged = {};
  for (const key of Object.keys(native)) if (key !== "default") merged[key] = native[key];
  Object.assign(merged, overrides);
  return merged;
}

let osCache;
let moduleModule;

/** `createRequire`: builtins (the sandbox's where it has them); files are not loadable synchronously. */
function createRequire(from) {
  const base = from instanceof NativeURL ? from.href : String(from);
  const require = (specifier) => {
    if (typeof specifier !== "string") throw invalidArgType("id", "of type string", specifier);
    const found = getBuiltinModule(specifier);
    if (found !== undefined) return found;
    const error = new NativeError(`Cannot find module '${specifier}'\nRequire stack:\n- ${base.replace(/^file:\/\//, "")}`);
    error.code = "MODULE_NOT_FOUND";
    error.requireStack = [base.replace(/^file:\/\//, "")];
    throw error;
  };
  require.resolve = (specifier) => {
    if (getBuiltinModule(specifier) !== undefined) return specifier;
    return require(specifier);
  };
  require.cache = {};
  require.main = undefined;
  return require;
}

/** A builtin's exports (its default aside) with some replaced. */
function builtinWith(name, replaced) {
  const native = builtin(name);
  const merged = {};
  for (const key of Object.keys(native)) if (key !== "default") merged[key] = native[key];
  return Object.assign(merged, replaced);
}

/** node:path with `resolve` (and what uses it) relative to the guest's `process.cwd()`. */
function pathModule() {
  const native = builtin("node:path");
  const posix = native.posix ?? native;
  const merged = {};
  for (const key of Object.keys(posix)) if (key !== "default") merged[key] = posix[key];
  merged.resolve = (...paths) => posix.resolve(guestProcess.cwd(), ...paths);
  merged.relative = (from, to) => {
    if (typeof from !== "string") throw invalidArgType("from", "of type string", from);
    if (typeof to !== "string") throw invalidArgType("to", "of type string", to);
    return posix.relative(merged.resolve(from), merged.resolve(to));
  };
  // The sandbox's matchesGlob (workerd's throws) is node/guest-path.js's, loaded when the
  // guest's code names it (host/compile/guest-module.ts) or imports fs.
  merged.matchesGlob = (path, pattern) => {
    const loaded = sandboxBuiltins.get("path");
    if (!loaded) throw nodeError(NativeError, "ERR_NOT_SUPPORTED", "secure-exec: path.matchesGlob is loaded only for guest code that names it (this code reached it by a computed name)");
    return loaded.matchesGlob(path, pattern);
  };
  merged.posix = merged;
  merged.win32 = native.win32;
  return merged;
}

let pathCache;
let urlModule;

/** Builtins whose sandbox version lives in this prelude, by bare name. */
function providedModule(name) {
  switch (name) {
    case "path":
    case "path/posix":
      return (pathCache ??= pathModule());
    case "console":
      return console;
    case "process":
      return guestProcess;
    case "timers":
      return timersModule;
    case "timers/promises":
      return timersPromises;
    case "os":
      return (osCache ??= osModule());
    case "module":
      return (moduleModule ??= builtinWith("node:module", { createRequire }));
    case "url":
      // The guest's URL (Node's errors).
      return (urlModule ??= builtinWith("node:url", { URL: GuestURL }));
    default:
      return undefined;
  }
}

function getBuiltinModule(name) {
  if (typeof name !== "string") throw invalidArgType("id", "of type string", name);
  // workerd's own modules (`cloudflare:workers` has `waitUntil`) are not Node builtins.
  if (isRefusedSpecifier(name)) return undefined;
  const bare = name.startsWith("node:") ? name.slice(5) : name;
  const provided = providedModule(bare);
  if (provided !== undefined) return provided;
  const sandbox = sandboxBuiltins.get(bare);
  if (sandbox !== undefined) return sandbox;
  // workerd's util (node/guest-util.js starts from it) inspects URLs as Node does.
  if (bare === "util") installInspection();
  return nativeGetBuiltinModule(name);
}

/** What `import ... from "node:process"` (and the other provided builtins) binds to. */
function providedNamespace(specifier) {
  const bare = specifier.startsWith("node:") ? specifier.slice(5) : specifier;
  const value = providedModule(bare);
  if (value === undefined) return undefined;
  const namespace = { default: value };
  // Named imports read the object when the guest's body starts (lazy getters stay lazy).
  return new Proxy(namespace, {
    get: (target, key) => (key === "default" ? value : key === Symbol.toStringTag ? "Module" : value[key]),
    has: (target, key) => key === "default" || key in value,
    ownKeys: () => ["default", ...Object.keys(value)],
    getOwnPropertyDescriptor: (target, key) =>
      key === "default" || key in value ? { value: key === "default" ? value : value[key], enumerable: true, configurable: true, writable: true } : undefined,
  });
}

/** The sandbox's own builtins (host/compile/guest-module.ts lists the same), by bare name. */
const SANDBOX_MODULE_FILES = {
  // No prototype: a name the guest added to Object.prototype must not read as a file here.
  __proto__: null,
  fs: "./secure-exec-fs.js",
  "fs/promises": "./secure-exec-fs-promises.js",
  child_process: "./secure-exec-child-process.js",
  http: "./secure-exec-http.js",
  https: "./secure-exec-https.js",
  util: "./secure-exec-util.js",
  v8: "./secure-exec-v8.js",
  sys: "./secure-exec-sys.js",
  sqlite: "./secure-exec-sqlite.js",
  zlib: "./secure-exec-zlib.js",
  test: "./secure-exec-test.js",
  dgram: "./secure-exec-dgram.js",
  vm: "./secure-exec-vm.js",
  worker_threads: "./secure-exec-worker-threads.js",
  crypto: "./secure-exec-crypto.js",
  assert: "./secure-exec-assert.js",
  diagnostics_channel: "./secure-exec-diagnostics-channel.js",
  net: "./secure-exec-net.js",
  dns: "./secure-exec-dns.js",
  "dns/promises": "./secure-exec-dns-promises.js",
  perf_hooks: "./secure-exec-perf-hooks.js",
  readline: "./secure-exec-readline.js",
  "readline/promises": "./secure-exec-readline-promises.js",
};

function moduleNotFound(specifier, importer) {
  const bare = !specifier.startsWith(".") && !specifier.startsWith("/") && !specifier.startsWith("file:");
  const error = new NativeError(
    bare ? `Cannot find package '${specifier}' imported from ${importer}` : `Cannot find module '${specifier}' imported from ${importer}`,
  );
  error.code = "ERR_MODULE_NOT_FOUND";
  if (typeof error.stack === "string") error.stack = error.stack.replace(/^Error/, "Error [ERR_MODULE_NOT_FOUND]");
  return error;
}

const SANDBOX_FILES = Object.values(SANDBOX_MODULE_FILES);

/**
 * What the host's rewrite of an `import()` names: a sandbox builtin's file or a bundled
 * package's. Never the prelude's own modules (its bridge, its `require`), also not through
 * `.`/`..` segments. Indexed loops: a guest may have replaced the array and string methods.
 */
function isBundledModule(name) {
  for (let index = 0; index < SANDBOX_FILES.length; index += 1) if (SANDBOX_FILES[index] === name) return true;
  if (!hasPrefix(name, "./node_modules/")) return false;
  let segmentStart = 2;
  for (let index = 2; index <= name.length; index += 1) {
    if (index < name.length && name[index] !== "/") continue;
    const length = index - segmentStart;
    if (length === 0 || (length === 1 && name[segmentStart] === ".") || (length === 2 && name[segmentStart] === "." && name[segmentStart + 1] === ".")) return false;
    segmentStart = index + 1;
  }
  return true;
}

/**
 * The guest's `import()`: the sandbox's builtins where it has them, workerd's otherwise, the
 * modules the host bundled; anything else rejects inside the guest like Node's loader.
 */
async function guestImport(specifier, options) {
  const failure = specifier?.__secureExecLoadError;
  if (failure) {
    // The host could not load this package (e.g. it does not parse).
    const error = failure.name === "SyntaxError" ? new SyntaxError(failure.message) : new NativeError(failure.message);
    throw error;
  }
  const name = String(specifier);
  // workerd's own modules are refused as Node refuses them: `waitUntil` would outlive the run.
  if (isRefusedSpecifier(name)) throw unsupportedSchemeError(name);
  const bare = hasPrefix(name, "node:") ? name.slice(5) : name;
  const provided = providedNamespace(name);
  if (provided) return provided;
  if (SANDBOX_MODULE_FILES[bare]) {
    if (hasPrefix(name, "node:") || nativeIsBuiltin(bare)) {
      try {
        const namespace = await tracked(import(SANDBOX_MODULE_FILES[bare]));
        afterLoad();
        return namespace;
      } catch {
        // Not shipped to this isolate: the guest never named it where the host could see.
      }
    }
  }
  if (isBundledModule(name)) {
    const namespace = await tracked(import(name, options));
    afterLoad();
    return namespace;
  }
  if (hasPrefix(name, "node:") || nativeIsBuiltin(name)) {
    if (isPlainBuiltinName(bare)) {
      try {
        return await import(`node:${bare}`);
      } catch {
        // workerd has no such builtin: Node's error below.
      }
    }
    const error = new NativeError(`No such built-in module: ${name}`);
    error.code = "ERR_UNKNOWN_BUILTIN_MODULE";
    throw error;
  }
  const mainPath = activeRun?.mainPath ?? "/workspace/guest.js";
  if (hasPrefix(name, ".") || hasPrefix(name, "/") || hasPrefix(name, "file:")) return importFile(name, options, mainPath);
  throw moduleNotFound(name, mainPath);
}

/** Whether this code runs inside a request: workerd refuses timers in its global scope. */
function inRequestScope() {
  try {
    nativeClearTimeout(nativeSetTimeout(noop, 0));
    return true;
  } catch {
    return false;
  }
}

function noop() {}

/** An import in a run: its modules' top-level output goes out once it settles (GuestRun.loading). */
function tracked(importing) {
  return activeRun ? activeRun.loading(NativePromise.resolve(importing)) : importing;
}

// A package's own `import()` is wrapped in this by the host (host/compile/node-modules.ts).
Object.defineProperty(globalThis, "__secureExecImported", {
  value: tracked,
  writable: false,
  enumerable: false,
  configurable: false,
});

/** Runs what sandbox modules asked to do once loaded (runBridge.afterLoad). */
function afterLoad() {
  for (const task of runBridge.afterLoad.splice(0)) task();
}

/** `import("./data.json", { with: { type: "json" } })` reads the virtual filesystem. */
function importFile(name, options, mainPath) {
  const url = new NativeURL(name, `file://${mainPath}`);
  const path = decodeURIComponent(url.pathname);
  const fs = sandboxBuiltins.get("fs");
  const type = options?.with?.type ?? options?.assert?.type;
  if (!fs || !fs.existsSync(path)) throw moduleNotFound(path, mainPath);
  if (type === "json") return { default: parseJson(fs.readFileSync(path, "utf8")) };
  if (path.endsWith(".json")) {
    throw nodeError(NativeTypeError, "ERR_IMPORT_ATTRIBUTE_MISSING", `Module "${url.href}" needs an import attribute of "type: json"`);
  }
  throw nodeError(
    NativeError,
    "ERR_SANDBOX_UNSUPPORTED",
    `secure-exec: cannot import ${path}: JavaScript modules load from nodeModules, not from the virtual filesystem (the sandbox compiles no code at run time)`,
  );
}

let builtinNames;
function nativeIsBuiltin(name) {
  // A lookup with no prototype: what the guest did to Set or Object.prototype has no say.
  if (!builtinNames) {
    builtinNames = Object.create(null);
    const known = builtin("node:module").builtinModules ?? [];
    for (let index = 0; index < known.length; index += 1) builtinNames[known[index]] = true;
  }
  return builtinNames[name] === true;
}

function makeImportMeta(mainPath) {
  const url = `file://${mainPath}`;
  const slash = mainPath.lastIndexOf("/");
  return {
    url,
    filename: mainPath,
    dirname: slash <= 0 ? "/" : mainPath.slice(0, slash),
    resolve(specifier) {
      const name = String(specifier);
      if (name.startsWith("node:") || nativeIsBuiltin(name)) return name.startsWith("node:") || !nativeIsBuiltin(name) ? name : `node:${name}`;
      if (name.startsWith(".") || name.startsWith("/") || name.startsWith("file:")) return new NativeURL(name, url).href;
      throw moduleNotFound(name, mainPath);
    },
  };
}

// ----------------------------- console -----------------------------


/** process.stdout/stderr once the guest has touched them (they are made on first use). */
const stdio = { o: undefined, e: undefined };

/** workerd's node:events reports too many listeners through console.log, without Node's form. */
const WORKERD_LEAK_WARNING = /^Possible EventEmitter memory leak detected\. (\d+) (.+) listeners added to an EventEmitter\. Use emitter\.setMaxListeners\(\) to increase limit\n$/;

const guestConsole = makeConsole((channel, text) => {
  if (channel === "o" && text.startsWith("Possible EventEmitter memory leak")) {
    const leak = WORKERD_LEAK_WARNING.exec(text);
    if (leak) {
      const warning = new NativeError(
        `Possible EventEmitter memory leak detected. ${leak[1]} ${leak[2]} listeners added to [EventEmitter]. MaxListeners is ${Number(leak[1]) - 1}. Use emitter.setMaxListeners() to increase limit`,
      );
      warning.name = "MaxListenersExceededWarning";
      return emitWarning(warning);
    }
  }
  const stream = stdio[channel];
  // A guest that replaced process.stdout.write (or process.stdout) sees console output there.
  if (stream !== undefined && stream.write !== stream.__secureExecWrite) stream.write(text);
  else activeRun?.writeChannel(channel, text);
});

/** node:console's Console: writes to the streams it is given, as Node's does. */
function Console(options, stderrArgument, ignoreErrors) {
  if (!new.target) return new Console(options, stderrArgument, ignoreErrors);
  const settings = options !== null && typeof options === "object" && typeof options.write !== "function" ? options : { stdout: options, stderr: stderrArgument };
  const { stdout } = settings;
  const stderr = settings.stderr ?? stdout;
  if (!stdout || typeof stdout.write !== "function") throw invalidArgType("stdout", "an instance of Writable", stdout);
  if (typeof stderr.write !== "function") throw invalidArgType("stderr", "an instance of Writable", stderr);
  Object.assign(this, makeConsole((channel, text) => (channel === "o" ? stdout : stderr).write(text)));
}

/**
 * A refused fetch rejects as Node's does, `TypeError: fetch failed`, with the refusal (what
 * denied it, `EACCES`) as its `cause`; `code` is on the error too, for code that reads it.
 */
function fetchFailed(reason) {
  const cause = new NativeError(reason);
  cause.code = "EACCES";
  const error = new NativeTypeError("fetch failed", { cause });
  error.code = "EACCES";
  return error;
}

/** Frames of the sandbox's own prelude say nothing about the guest's code. */
function cleanStack(text) {
  return text
    .split("\n")
    .filter((line) => !/^\s+at .*secure-exec-(?:prelude|console)\.js/.test(line))
    .join("\n");
}

// ----------------------------- URL -----------------------------

/** Node's URL error: `TypeError: Invalid URL` with `code`, `input` (and `base`). */
function invalidUrl(args) {
  const error = new NativeTypeError("Invalid URL");
  error.code = "ERR_INVALID_URL";
  error.input = String(args[0]);
  if (args.length > 1 && args[1] !== undefined) error.base = String(args[1]);
  return error;
}

/** workerd's URL, throwing Node's error for what does not parse (instanceof and statics are its own). */
const GuestURL = new Proxy(NativeURL, {
  construct: function construct(target, args, newTarget) {
    try {
      return Reflect.construct(target, args, newTarget === GuestURL ? target : newTarget);
    } catch (error) {
      if (!(error instanceof NativeTypeError)) throw error;
      const invalid = invalidUrl(args);
      // The stack starts at the guest's `new URL`.
      NativeError.captureStackTrace(invalid, construct);
      throw invalid;
    }
  },
});

const inspectCustom = Symbol.for("nodejs.util.inspect.custom");

/**
 * workerd's inspect formats its API objects (and what extends them) by the kResourceTypeInspect
 * symbol of their prototype chain, ahead of any custom inspect: shadowed on `prototype`, the
 * custom inspect of its objects is used.
 */
function useCustomInspect(prototype) {
  for (let link = prototype; link !== null && link !== Object.prototype; link = Object.getPrototypeOf(link)) {
    const symbol = Object.getOwnPropertySymbols(link).find((own) => own.description === "kResourceTypeInspect");
    if (symbol) return Object.defineProperty(prototype, symbol, { value: undefined, configurable: true });
  }
}

let inspectionInstalled = false;

/**
 * URLs and their search params inspect as in Node (workerd lists other fields, in another
 * order). Installed when node:util is first used, not in every run.
 */
function installInspection() {
  if (inspectionInstalled) return;
  inspectionInstalled = true;
  useCustomInspect(NativeURL.prototype);
  useCustomInspect(URLSearchParams.prototype);
  Object.defineProperty(NativeURL.prototype, inspectCustom, {
    configurable: true,
    writable: true,
    value: function (depth, options, show = inspect) {
      if (typeof depth === "number" && depth < 0) return this;
      const { href, origin, protocol, username, password, host, hostname, port, pathname, search, searchParams, hash } = this;
      const fields = { href, origin, protocol, username, password, host, hostname, port, pathname, search, searchParams, hash };
      return `${this.constructor?.name ?? "URL"} ${show(fields, options)}`;
    },
  });
  Object.defineProperty(URLSearchParams.prototype, inspectCustom, {
    configurable: true,
    writable: true,
    value: function (depth, options, show = inspect) {
      if (typeof depth === "number" && depth < 0) return options.stylize("[Object]", "special");
      const inner = { ...options };
      if (depth !== null) inner.depth = depth - 1;
      const output = [];
      for (const [key, value] of this) output.push(`${show(key, inner)} => ${show(value, inner)}`);
      const name = this.constructor?.name ?? "URLSearchParams";
      // eslint-disable-next-line no-control-regex
      const length = output.reduce((sum, entry) => sum + entry.replace(/\u001b\[\d\d?m/g, "").length + 2, -2);
      if (length > (options.breakLength ?? 80)) return `${name} {\n  ${output.join(",\n  ")} }`;
      return output.length > 0 ? `${name} { ${output.join(", ")} }` : `${name} {}`;
    },
  });
}

// ----------------------------- BroadcastChannel -----------------------------

let BroadcastChannelClass;

/**
 * Node's BroadcastChannel reaches the channels of its name in every thread of the process; a
 * guest has one isolate, so: the other open channels of this run. Built on first use. An open
 * channel keeps the run alive until closed or unref'd, as in Node.
 */
function broadcastChannelClass() {
  if (BroadcastChannelClass) return BroadcastChannelClass;
  const openChannels = new NativeMap();
  BroadcastChannelClass = class BroadcastChannel extends EventTarget {
    #name;
    #closed = false;
    #release = null;
    #handlers = { message: null, messageerror: null };

    constructor(name) {
      if (arguments.length === 0) throw nodeError(NativeTypeError, "ERR_MISSING_ARGS", 'The "name" argument must be specified');
      super();
      this.#name = `${name}`;
      let peers = openChannels.get(this.#name);
      if (!peers) openChannels.set(this.#name, (peers = new Set()));
      peers.add(this);
      this.ref();
    }

    get name() {
      return this.#name;
    }

    postMessage(message) {
      if (this.#closed) throw new DOMException("BroadcastChannel is closed.", "InvalidStateError");
      const data = structuredClone(message);
      for (const peer of openChannels.get(this.#name) ?? []) {
        if (peer === this) continue;
        const copy = structuredClone(data);
        setImmediate(() => {
          if (!peer.#closed) peer.dispatchEvent(new MessageEvent("message", { data: copy }));
        });
      }
    }

    close() {
      if (this.#closed) return;
      this.#closed = true;
      openChannels.get(this.#name)?.delete(this);
      this.unref();
    }

    ref() {
      if (!this.#closed && !this.#release) this.#release = activeRun?.hold() ?? null;
      return this;
    }

    unref() {
      this.#release?.();
      this.#release = null;
      return this;
    }

    // workerd's EventTarget calls the `on<type>` property itself when it dispatches.
    #setHandler(type, handler) {
      this.#handlers[type] = typeof handler === "function" ? handler : null;
    }

    get onmessage() {
      return this.#handlers.message;
    }
    set onmessage(handler) {
      this.#setHandler("message", handler);
    }
    get onmessageerror() {
      return this.#handlers.messageerror;
    }
    set onmessageerror(handler) {
      this.#setHandler("messageerror", handler);
    }

    [inspectCustom](depth, options, show = inspect) {
      return `BroadcastChannel ${show({ name: this.#name, active: !this.#closed }, options)}`;
    }
  };
  useCustomInspect(BroadcastChannelClass.prototype);
  return BroadcastChannelClass;
}

function installGlobals() {
  // A lazy global, as Node's is: a plain value once read or set.
  const settle = (value) => Object.defineProperty(globalThis, "BroadcastChannel", { value, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(globalThis, "BroadcastChannel", {
    configurable: true,
    enumerable: false,
    get() {
      const value = broadcastChannelClass();
      settle(value);
      return value;
    },
    set: settle,
  });
  globalThis.URL = GuestURL;
  // `url.constructor === URL`, as in Node.
  Object.defineProperty(NativeURL.prototype, "constructor", { value: GuestURL, writable: true, configurable: true, enumerable: false });
  for (const [name, method] of Object.entries(guestConsole)) console[name] = method;
  console.Console = Console;
  globalThis.setTimeout = setTimeout;
  globalThis.setInterval = setInterval;
  globalThis.setImmediate = setImmediate;
  globalThis.clearTimeout = clearTimeout;
  globalThis.clearInterval = clearTimeout;
  globalThis.clearImmediate = clearImmediate;
  // Deleted first: redefining workerd's own `process` in place would read (and so load) it.
  delete globalThis.process;
  Object.defineProperty(globalThis, "process", { value: guestProcess, configurable: true, writable: true, enumerable: false });
  // Node has no `self` (browser detection in packages reads it).
  delete globalThis.self;
}
installGlobals();

// ----------------------------- the run -----------------------------

export default {
  async fetch(request, env) {
    const { pathname } = new NativeURL(request.url);
    if (pathname === "/__deliver") {
      if (!activeRun || activeRun.finished) return NativeResponse.json({ ok: false, error: "the run has ended" }, { status: 410 });
      // The reply comes from the run's own request; until then this one must not look hung.
      const keepAlive = nativeSetInterval(() => {}, 30_000);
      try {
        const reply = await activeRun.deliver(await request.json());
        return NativeResponse.json(reply.body, { status: reply.status });
      } finally {
        nativeClearInterval(keepAlive);
      }
    }
    // Each isolate serves exactly one run: nothing of one run can reach the next.
    if (activeRun) return new NativeResponse("isolate already used", { status: 409 });
    const preloaded = request.headers.get("x-secure-exec-preload") === "1";
    const input = preloaded ? null : await request.json();
    // A byte stream of workerd's own: the events flow out without JavaScript per chunk.
    const { readable, writable } = new NativeIdentityTransformStream();
    const run = (activeRun = new GuestRun(writable.getWriter(), env));
    run.listen();
    if (preloaded) {
      // Preloaded: the imports are evaluated now, in the globals a fresh run's imports see,
      // and the run's start is the rest of the request's body. A failed import declines the
      // start (a fresh isolate reports it); an uncaught error as they load ends this isolate first.
      run.prepare();
      const stopWatching = watchPreloadReads(run);
      // An import that fails here would fail the run differently than in a fresh isolate (a
      // module whose top-level await did not settle is left half-evaluated): decline it.
      await import("./guest.js").catch(() => {
        run.readRunStateEarly = true;
      });
      // Read past the guest's tracking of body reads: waiting for the start holds no run.
      nativeRequestText.call(request).then(
        (text) => {
          // Watched until the start: anything the packages left to run later is covered too.
          stopWatching();
          if (run.finished || run.input !== undefined) return;
          let start;
          try {
            start = parseJson(text);
          } catch {
            start = undefined;
          }
          // An isolate that cannot serve its run ends without an event: the host loads a fresh one.
          if (run.readRunStateEarly || start?.kind !== "start") run.end();
          else run.start(start.input);
        },
        () => {},
      );
    } else {
      run.start(input);
    }
    return new NativeResponse(readable, { headers: { "content-type": "application/x-ndjson" } });
  },
};

/**
 * A preloaded run's packages load before its input exists: what they read then of the run's
 * process (env, argv, cwd, pid) or files would be the preload's, not the run's. Such a read
 * marks the run, which then declines its start: the run goes to a fresh isolate.
 */
function watchPreloadReads(run) {
  const restores = [];
  const watch = (object, key) => {
    const descriptor = Object.getOwnPropertyDescriptor(object, key);
    // An accessor is made on first read (process.stdin): a read now would bind it to the preload.
    const accessor = descriptor !== undefined && !("value" in descriptor);
    let value = descriptor?.value;
    Object.defineProperty(object, key, {
      configurable: true,
      enumerable: descriptor?.enumerable ?? true,
      get() {
        run.readRunStateEarly = true;
        return accessor ? descriptor.get?.call(object) : value;
      },
      set(next) {
        run.readRunStateEarly = true;
        if (accessor) descriptor.set?.call(object, next);
        else value = next;
      },
    });
    restores.push(() =>
      Object.defineProperty(object, key, accessor ? descriptor : { configurable: true, enumerable: descriptor?.enumerable ?? true, writable: descriptor?.writable ?? true, value }),
    );
  };
  for (const key of ["env", "argv", "execArgv", "cwd", "pid", "stdin"]) watch(guestProcess, key);
  watch(runBridge, "fsSnapshot");
  watch(run, "cwd");
  return () => {
    for (const restore of restores.splice(0)) restore();
  };
}

class GuestRun {
  constructor(writer, env) {
    this.writer = writer;
    this.input = undefined;
    this.prepared = false;
    this.readRunStateEarly = false;
    this.env = env;
    this.finished = false;
    this.exiting = false;
    this.mainState = "running";
    this.pendingCalls = 0;
    this.returnJson = undefined;
    this.decoders = { o: new NativeTextDecoder(), e: new NativeTextDecoder() };
    this.idleCheckScheduled = false;
    this.stdinWanted = false;
    this.stdinEnded = false;
    this.stdinStream = undefined;
    this.stdinBacklog = [];
    this.mailbox = [];
    this.mailboxWaiter = null;
    this.pendingOutput = [];
    this.pendingLines = "";
    this.outputFlushScheduled = false;
    /** Imports under way: modules evaluate outside the run's request (see `loading`). */
    this.modulesLoading = 0;
    /** Ended while an import was under way outside the request: its stream closes once that settles. */
    this.closeWhenLoaded = false;
  }

  /**
   * Messages from the host while the run lives (stdin, child process events, HTTP requests).
   * They arrive as requests of their own, but guest work must happen in the run's request
   * (its output stream and timers belong to it), so they queue here for `pumpMailbox`.
   */
  deliver(message) {
    return new NativePromise((resolve) => {
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
        await new NativePromise((resolve) => (this.mailboxWaiter = resolve));
        continue;
      }
      try {
        item.resolve(await this.handleDelivery(item.message));
      } catch (error) {
        item.resolve({ status: 500, body: { ok: false, error: error instanceof NativeError ? error.message : String(error) } });
      }
    }
    for (const item of this.mailbox.splice(0)) item.resolve({ status: 410, body: { ok: false, error: "the run has ended" } });
  }

  async handleDelivery(message) {
    if (message.kind === "stdin" || message.kind === "stdin-end") {
      if (this.stdinEnded) return { status: 200, body: { ok: false, error: "stdin is closed" } };
      const chunk = message.kind === "stdin" ? nativeBuffer().from(message.data, "base64") : null;
      if (chunk === null) this.stdinEnded = true;
      if (this.stdinStream) this.stdinStream.push(chunk);
      else this.stdinBacklog.push(chunk);
      this.stdinWanted = false;
      nativeSetTimeout(() => this.checkIdle(), 0);
      return { status: 200, body: { ok: true } };
    }
    if (message.kind === "terminate") {
      // The host gave up on this run (deadline, kill, abort): stop its timers and callbacks.
      this.finish(137, { runExitHandlers: false });
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
      hold: () => run.hold(),
      writeChannel: (channel, text) => run.writeChannel(channel, text),
      get finished() {
        return run.finished;
      },
      get env() {
        return guestProcess.env;
      },
      get cwd() {
        return run.cwd;
      },
    };
  }

  hold() {
    this.pendingCalls += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.pendingCalls -= 1;
      nativeSetTimeout(() => this.checkIdle(), 0);
    };
  }

  async hostCall(message) {
    // A package calling as a preloaded run loads: the isolate declines its run, which a
    // fresh isolate serves (where the call goes out with the run's token).
    if (this.input === undefined) {
      this.readRunStateEarly = true;
      return { ok: false, error: "the run has not started" };
    }
    const body = stringify(message);
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

  /** Events of one turn go out in one write (each write is a chunk through the supervisor). */
  emit(event) {
    if (this.finished) return;
    this.collectOutput();
    this.pendingLines += stringify(event) + "\n";
    this.scheduleFlush();
  }

  scheduleFlush() {
    if (this.outputFlushScheduled) return;
    this.outputFlushScheduled = true;
    nativeQueueMicrotask(() => this.flushOutput());
  }

  collectOutput() {
    for (const { channel, parts } of this.pendingOutput.splice(0)) {
      for (const piece of piecesOf(parts.join(""))) this.pendingLines += stringify({ [channel]: piece }) + "\n";
    }
  }

  writeChannel(channel, chunk) {
    if (this.finished) return;
    // A preloaded run's packages printing as they load: that output is the run's, which has
    // not started. The preload declines it; a fresh isolate prints it in the run.
    if (this.outputBudget === undefined) {
      this.readRunStateEarly = true;
      return;
    }
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
    this.scheduleFlush();
  }

  flushOutput() {
    this.outputFlushScheduled = false;
    if (this.modulesLoading > 0 && !inRequestScope()) return;
    this.collectOutput();
    if (this.pendingLines.length === 0) return;
    const lines = this.pendingLines;
    this.pendingLines = "";
    this.writer.write(encoder.encode(lines)).catch(() => {});
  }

  /**
   * workerd evaluates imported modules outside the request that imports them (its global
   * scope), where the run's stream cannot be written: what a module's top level prints waits
   * until its import settles.
   */
  loading(importing) {
    this.modulesLoading += 1;
    const settled = () => {
      if (--this.modulesLoading > 0) return;
      this.flushOutput();
      if (this.closeWhenLoaded) this.writer.close().catch(() => {});
    };
    return importing.then(
      (namespace) => {
        settled();
        return namespace;
      },
      (error) => {
        settled();
        // workerd rejects the import of a module whose top-level await cannot settle; in Node
        // it stays pending (the run then ends with 13 if it waits on it, as for its own await).
        if (error instanceof NativeError && error.message === "Top-level await in module is unsettled.") return new NativePromise(noop);
        throw error;
      },
    );
  }

  /** process.exit(): 'exit' listeners run, then the run ends with the (possibly updated) code. */
  exit(code) {
    if (this.finished) return;
    this.finish(code);
  }

  finish(code, { runExitHandlers = true } = {}) {
    if (this.finished) return;
    if (runExitHandlers && !this.exiting) {
      this.exiting = true;
      guestProcess.exitCode = code;
      let threw = false;
      try {
        guestProcess.emit("exit", code);
      } catch (error) {
        if (!(error instanceof ExitSignal)) {
          this.writeChannel("e", `${describeError(error)}\n`);
          threw = true;
        }
      }
      if (this.finished) return;
      const updated = guestProcess.exitCode;
      if (threw) code = 1;
      else if (updated !== undefined && updated !== null && Number.isInteger(Number(updated))) code = Number(updated) & 0xff;
    }
    this.flushOutput();
    // Files the guest wrote go back before the exit, so the next run can read them.
    const fsChanges = runBridge.fsChanges?.();
    if (fsChanges) {
      const json = stringify(fsChanges);
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
    this.flushOutput();
    this.end();
  }

  /** An error nothing caught: 'uncaughtException' listeners get it, else the run ends with 1. */
  fail(error, origin = "uncaughtException") {
    if (this.finished || error instanceof ExitSignal) return;
    if (uncaughtCapture) {
      this.invokeGuest(uncaughtCapture, undefined, [error]);
      return;
    }
    if (guestProcess.listenerCount("uncaughtException") > 0 && !this.inUncaughtHandler) {
      this.inUncaughtHandler = true;
      try {
        guestProcess.emit("uncaughtException", error, origin);
      } catch (thrown) {
        this.inUncaughtHandler = false;
        if (thrown instanceof ExitSignal) return;
        this.writeChannel("e", `${describeError(thrown)}\n`);
        this.finish(7, { runExitHandlers: true });
        return;
      }
      this.inUncaughtHandler = false;
      this.checkIdle();
      return;
    }
    this.writeChannel("e", `${describeError(error, origin)}\n`);
    this.finish(1);
  }

  unhandledRejection(reason, promise) {
    if (this.finished) return;
    if (guestProcess.listenerCount("unhandledRejection") > 0) {
      this.invokeGuest(() => guestProcess.emit("unhandledRejection", reason, promise), undefined, []);
      return;
    }
    this.fail(reason, "unhandledRejection");
  }

  hasLiveWork() {
    if (this.pendingCalls > 0) return true;
    if (this.stdinWanted) return true;
    for (const timer of liveTimers.values()) if (timer.keepsAlive) return true;
    return false;
  }

  // Node semantics: the run ends once the module settled and nothing keeps it alive;
  // a module left awaiting a promise nothing can resolve ends like Node's exit 13.
  checkIdle() {
    // A preloaded run's packages may do I/O as they load: its end is judged once it started.
    if (this.finished || this.input === undefined || this.idleCheckScheduled || this.hasLiveWork()) return;
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
        // 'beforeExit' may schedule more work; the run goes on while it does.
        if (guestProcess.listenerCount("beforeExit") > 0) {
          const code = exitCodeOf(undefined);
          this.invokeGuest(() => guestProcess.emit("beforeExit", code), undefined, [], false);
          if (this.finished) return;
          if (this.hasLiveWork()) return;
          this.afterBeforeExit();
          return;
        }
        this.finish(exitCodeOf(undefined));
      }, 0);
    }, 0);
  }

  /** After 'beforeExit': microtasks it queued may still add work; look once more. */
  afterBeforeExit() {
    nativeSetTimeout(() => {
      if (this.finished) return;
      if (this.hasLiveWork()) return;
      this.finish(exitCodeOf(undefined));
    }, 0);
  }

  invokeGuest(callback, self, args, recheck = true) {
    if (this.finished) return;
    try {
      callback.apply(self, args);
    } catch (error) {
      this.fail(error);
    }
    if (recheck) this.checkIdle();
  }

  installHostBridge() {
    const run = this;
    globalThis.__return = (value) => {
      const json = value === undefined ? "null" : stringify(value);
      if (json === undefined) throw new NativeTypeError("__return: value is not JSON-serialisable");
      // Before a preloaded run's start the host's own cap still applies to what is sent.
      const limit = run.input?.returnBytes ?? Infinity;
      const bytes = json.length * 3 > limit ? encoder.encode(json).byteLength : json.length;
      if (bytes > limit) {
        // Over limits.returnBytes: the host ends the run (137) and says why.
        run.emit({ rl: bytes });
        run.finish(137);
        throw new ExitSignal(137);
      }
      run.returnJson = json;
    };
    globalThis.callHostTool = async (name, toolInput) => {
      if (typeof name !== "string") throw new NativeTypeError("callHostTool: tool name must be a string");
      const release = run.hold();
      try {
        const reply = await run.hostCall({ kind: "tool", name, input: toolInput === undefined ? null : toolInput });
        if (reply.ok) return reply.result;
        const error = new NativeError(reply.error);
        error.name = reply.name ?? "HostToolError";
        if (reply.code) error.code = reply.code;
        throw error;
      } finally {
        release();
      }
    };
    runBridge.current = this.bridge();
  }

  trackFetch() {
    const run = this;
    const nativeFetch = globalThis.fetch;
    globalThis.fetch = async function (input, init) {
      // Read at the call: a preloaded run's fetch is in place before its input arrives (one
      // made before then would go without the run's token: that isolate declines its run).
      if (run.input === undefined) run.readRunStateEarly = true;
      const egressToken = run.input?.egressToken;
      const release = run.hold();
      try {
        if (!egressToken) {
          try {
            return await nativeFetch.call(this, input, init);
          } catch (error) {
            if (!/not permitted to access the internet/.test(String(error?.message))) throw error;
            throw fetchFailed("secure-exec: this runtime has no network permission (permissions.network)");
          }
        }
        // The host's egress proxy knows the run (and its network policy) by this header.
        const request = new NativeRequest(input, init);
        const headers = new NativeHeaders(request.headers);
        headers.set("x-secure-exec-egress", egressToken);
        const response = await nativeFetch.call(this, new NativeRequest(request, { headers }));
        if (response.headers.get("x-secure-exec-denied")) throw fetchFailed((await response.text()).trim());
        return response;
      } finally {
        release();
      }
    };
  }

  /**
   * The Workers way: a guest whose default export has `fetch` (e.g. a Hono app) is served on
   * `process.env.PORT` (default 8787) until it is killed, like a listening server.
   */
  serveDefaultExport(guestExports) {
    const served = guestExports.default;
    if (!served || typeof served.fetch !== "function" || this.finished) return;
    const port = Number(guestProcess.env.PORT) || 8787;
    if (httpServers.has(port)) return;
    httpServers.set(port, async (message) => {
      const init = { method: message.method, headers: message.headers };
      if (message.body && message.method !== "GET" && message.method !== "HEAD") init.body = nativeBuffer().from(message.body, "base64");
      const response = await served.fetch(new NativeRequest(`http://localhost:${port}${message.path}`, init), this.env, {
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
        body: nativeBuffer().from(await response.arrayBuffer()).toString("base64"),
      };
    });
    this.pendingCalls += 1;
    this.emit({ l: port });
  }

  /** Body reads and stream reads are I/O the run waits on: they keep it alive, as in Node. */
  trackStreams() {
    const run = this;
    const hold = (promise) => {
      const release = run.hold();
      promise.then(release, release);
      return promise;
    };
    for (const Body of [NativeResponse, NativeRequest]) {
      for (const method of ["text", "json", "arrayBuffer", "blob", "formData", "bytes"]) {
        const original = Body.prototype[method];
        if (typeof original !== "function") continue;
        Body.prototype[method] = function (...args) {
          return hold(original.apply(this, args));
        };
      }
    }
    ReadableStreamDefaultReader.prototype.read = function (...args) {
      return hold(nativeReaderRead.apply(this, args));
    };
  }

  /** In the run's request: messages from the host, and a timer so waiting never looks hung. */
  listen() {
    // Work that waits on other requests (stdin, child processes, HTTP, a preloaded run's
    // input) leaves this request with no I/O of its own, which workerd would cancel as hung.
    this.keepAlive = nativeSetInterval(() => {}, 30_000);
    this.pumpMailbox();
  }

  /** The run is over: its timers stop, its mailbox closes and its event stream ends. */
  end() {
    this.finished = true;
    nativeClearInterval(this.keepAlive);
    const wake = this.mailboxWaiter;
    this.mailboxWaiter = null;
    wake?.();
    for (const timer of [...liveTimers.values()]) timer.clear();
    // Ended by a module's top level (process.exit() as it loads): the stream closes, after
    // the output held for it, once the import settles.
    if (this.modulesLoading > 0 && !inRequestScope()) this.closeWhenLoaded = true;
    else this.writer.close().catch(() => {});
  }

  /** What the guest's globals hold before any of its code runs: none of it needs the input. */
  prepare() {
    if (this.prepared) return;
    this.prepared = true;
    addEventListener("unhandledrejection", (event) => {
      event.preventDefault?.();
      this.unhandledRejection(event.reason, event.promise);
    });
    addEventListener("error", (event) => {
      event.preventDefault?.();
      this.fail(event.error ?? event.message);
    });
    this.installHostBridge();
    this.trackFetch();
    this.trackStreams();
  }

  start(input) {
    this.input = input;
    this.outputBudget = { o: input.outputBytes, e: input.outputBytes };
    this.cwd = input.cwd;
    this.initialCwd = input.cwd;
    this.mainPath = `${input.cwd === "/" ? "" : input.cwd}/guest.js`;
    this.prepare();
    runBridge.fsSnapshot = input.fs;
    const env = guestProcess.env;
    for (const [key, value] of Object.entries(this.input.env ?? {})) env[key] = value;
    // `node -e` code has no script path in argv.
    guestProcess.argv = ["/usr/local/bin/node", ...(this.input.eval ? [] : [this.mainPath]), ...(this.input.argv ?? [])];
    if (Number.isInteger(this.input.pid)) guestProcess.pid = this.input.pid;
    this.emit({ s: 1 });
    this.mainState = "running";
    const meta = makeImportMeta(this.mainPath);
    this.loading(import("./guest.js"))
      .then(({ default: guestMain, __secureExecExports: guestExports }) => {
        afterLoad();
        return guestMain(guestImport, meta, providedNamespace).then(() => {
          this.mainState = "settled";
          this.serveDefaultExport(guestExports);
          this.checkIdle();
        });
      })
      .catch((error) => {
        this.mainState = "settled";
        this.fail(error);
      });
    this.checkIdle();
  }
}

function describeError(error, origin) {
  if (error instanceof NativeError || (error !== null && typeof error === "object" && typeof error.stack === "string")) {
    const text = typeof error.stack === "string" && error.stack.includes(error.message) ? error.stack : inspect(error);
    const extra = ownExtras(error);
    // Cleaned first: the extras' brace goes on the last frame, which may be the prelude's.
    return extra ? `${cleanStack(text)} ${extra}` : cleanStack(text);
  }
  if (origin === "unhandledRejection") {
    const reason = inspect(error);
    return `[UnhandledPromiseRejection: This error originated either by throwing inside of an async function without a catch block, or by rejecting a promise which was not handled with .catch(). The promise rejected with the reason "${reason}".] {\n  code: 'ERR_UNHANDLED_REJECTION'\n}`;
  }
  return `Uncaught ${inspect(error)}`;
}

/** Node prints an error's own extra properties (e.g. `code`) after its stack. */
function ownExtras(error) {
  const keys = Object.keys(error).filter((key) => key !== "stack" && key !== "message");
  if (keys.length === 0) return "";
  try {
    const shown = inspect(error, { colors: false });
    const brace = shown.lastIndexOf(" {\n");
    return brace === -1 ? "" : shown.slice(brace + 1);
  } catch {
    return "";
  }
}
