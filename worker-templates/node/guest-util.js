// `node:util` for guests: workerd's, with what it lacks done as Node does: parseArgs,
// getSystemErrorName/Map from the errno table, debuglog that honours NODE_DEBUG and
// writes to stderr, and deprecate that warns once through process.emitWarning.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:util");
const { errno: ERRNO } = process.getBuiltinModule("node:os").constants;

// libuv's messages for the common errno values (the rest fall back to the name).
const MESSAGES = {
  E2BIG: "argument list too long", EACCES: "permission denied", EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "address not available", EAGAIN: "resource temporarily unavailable", EBADF: "bad file descriptor",
  EBUSY: "resource busy or locked", ECANCELED: "operation canceled", ECONNABORTED: "software caused connection abort",
  ECONNREFUSED: "connection refused", ECONNRESET: "connection reset by peer", EEXIST: "file already exists",
  EFAULT: "bad address in system call argument", EFBIG: "file too large", EHOSTUNREACH: "host is unreachable",
  EINTR: "interrupted system call", EINVAL: "invalid argument", EIO: "i/o error", EISDIR: "illegal operation on a directory",
  ELOOP: "too many symbolic links encountered", EMFILE: "too many open files", ENAMETOOLONG: "name too long",
  ENETUNREACH: "network is unreachable", ENFILE: "file table overflow", ENOBUFS: "no buffer space available",
  ENODEV: "no such device", ENOENT: "no such file or directory", ENOMEM: "not enough memory", ENOSPC: "no space left on device",
  ENOSYS: "function not implemented", ENOTCONN: "socket is not connected", ENOTDIR: "not a directory",
  ENOTEMPTY: "directory not empty", ENOTSOCK: "socket operation on non-socket", ENOTSUP: "operation not supported on socket",
  EPERM: "operation not permitted", EPIPE: "broken pipe", ERANGE: "result too large", EROFS: "read-only file system",
  ESPIPE: "invalid seek", ESRCH: "no such process", ETIMEDOUT: "connection timed out", EXDEV: "cross-device link not permitted",
};

let errorMap;

export function getSystemErrorMap() {
  if (!errorMap) {
    errorMap = new Map();
    for (const [name, number] of Object.entries(ERRNO)) errorMap.set(-number, [name, MESSAGES[name] ?? name.toLowerCase()]);
  }
  return errorMap;
}

function invalidArgType(name, expected, value) {
  const error = new TypeError(`The "${name}" argument must be of type ${expected}. Received ${value === null ? "null" : typeof value === "object" ? "an instance of Object" : `type ${typeof value} (${String(value)})`}`);
  error.code = "ERR_INVALID_ARG_TYPE";
  return error;
}

function outOfRange(name, condition, value) {
  const error = new RangeError(`The value of "${name}" is out of range. It must be ${condition}. Received ${value}`);
  error.code = "ERR_OUT_OF_RANGE";
  return error;
}

export function getSystemErrorName(err) {
  if (typeof err !== "number") throw invalidArgType("err", "number", err);
  if (err >= 0 || !Number.isSafeInteger(err)) throw outOfRange("err", "a negative integer", err);
  return getSystemErrorMap().get(err)?.[0] ?? `Unknown system error ${err}`;
}

export function getSystemErrorMessage(err) {
  if (typeof err !== "number") throw invalidArgType("err", "number", err);
  if (err >= 0 || !Number.isSafeInteger(err)) throw outOfRange("err", "a negative integer", err);
  return getSystemErrorMap().get(err)?.[1] ?? `Unknown system error ${err}`;
}

// debuglog: NODE_DEBUG is a comma-separated list of sections (`*` matches any run).
let debugPatterns;

function debugEnabled(section) {
  if (debugPatterns === undefined) {
    const value = process.env.NODE_DEBUG ?? "";
    debugPatterns = value
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((part) => new RegExp(`^${part.replace(/[|\\{}()[\]^$+?.]/g, "\\$&").replace(/\*/g, ".*")}$`, "i"));
  }
  return debugPatterns.some((pattern) => pattern.test(section));
}

export function debuglog(section, callback) {
  const name = String(section).toUpperCase();
  let enabled;
  const isEnabled = () => (enabled ??= debugEnabled(name));
  const logger = (...args) => {
    if (!isEnabled()) return;
    process.stderr.write(`${name} ${process.pid}: ${real.format(...args)}\n`);
  };
  Object.defineProperty(logger, "enabled", { get: isEnabled, enumerable: true, configurable: true });
  if (typeof callback === "function") queueMicrotask(() => callback(logger));
  return logger;
}

export const debug = debuglog;

const warnedCodes = new Set();

export function deprecate(fn, message, code) {
  if (typeof fn !== "function") throw invalidArgType("fn", "function", fn);
  let warned = false;
  function deprecated(...args) {
    if (!warned && !process.noDeprecation) {
      warned = true;
      if (code === undefined || !warnedCodes.has(code)) {
        if (code !== undefined) warnedCodes.add(code);
        process.emitWarning(message, "DeprecationWarning", code);
      }
    }
    return new.target ? Reflect.construct(fn, args, new.target) : fn.apply(this, args);
  }
  Object.setPrototypeOf(deprecated, fn);
  if (fn.prototype) deprecated.prototype = fn.prototype;
  return deprecated;
}

// parseArgs, as Node's: options of type "string" or "boolean", short aliases, multiple,
// defaults, strict mode, positionals, negative (--no-x) options and tokens.
function parseArgsError(code, message) {
  const error = new TypeError(message);
  error.code = code;
  return error;
}

export function parseArgs(config = {}) {
  if (config === null || typeof config !== "object") throw invalidArgType("config", "object", config);
  const args = config.args ?? process.argv.slice(process.execArgv?.some((arg) => arg === "-e" || arg === "--eval") ? 1 : 2);
  const strict = config.strict ?? true;
  const allowPositionals = config.allowPositionals ?? !strict;
  const allowNegative = config.allowNegative ?? false;
  const returnTokens = config.tokens ?? false;
  const options = config.options ?? {};
  if (!Array.isArray(args)) throw invalidArgType("args", "Array", args);
  const shortToLong = new Map();
  for (const [longName, option] of Object.entries(options)) {
    if (option === null || typeof option !== "object") throw invalidArgType(`options.${longName}`, "object", option);
    if (option.type !== "string" && option.type !== "boolean") {
      const error = new TypeError(`The property 'options.${longName}.type' must be one of: 'string', 'boolean'. Received ${JSON.stringify(option.type)}`);
      error.code = "ERR_INVALID_ARG_VALUE";
      throw error;
    }
    if (option.short !== undefined) {
      if (typeof option.short !== "string" || option.short.length !== 1) {
        const error = new TypeError(`The property 'options.${longName}.short' must be a single character. Received ${JSON.stringify(option.short)}`);
        error.code = "ERR_INVALID_ARG_VALUE";
        throw error;
      }
      shortToLong.set(option.short, longName);
    }
  }

  const tokens = [];
  for (let index = 0; index < args.length; index++) {
    const arg = String(args[index]);
    if (arg === "--") {
      tokens.push({ kind: "option-terminator", index });
      for (let rest = index + 1; rest < args.length; rest++) tokens.push({ kind: "positional", index: rest, value: String(args[rest]) });
      break;
    }
    const next = args[index + 1];
    const nextIsValue = next !== undefined && !String(next).startsWith("-");
    if (arg.length > 1 && arg[0] === "-" && arg[1] !== "-") {
      // -f, -fbar, -abc
      const letters = arg.slice(1);
      for (let at = 0; at < letters.length; at++) {
        const letter = letters[at];
        const longName = shortToLong.get(letter) ?? letter;
        const option = options[longName];
        const rawName = `-${letter}`;
        if (option?.type === "string") {
          const inline = letters.slice(at + 1);
          if (inline.length > 0) tokens.push({ kind: "option", name: longName, rawName, index, value: inline, inlineValue: true });
          else if (next !== undefined && (nextIsValue || !strict)) {
            tokens.push({ kind: "option", name: longName, rawName, index, value: String(next), inlineValue: false });
            index++;
          } else tokens.push({ kind: "option", name: longName, rawName, index, value: undefined, inlineValue: undefined });
          break;
        }
        tokens.push({ kind: "option", name: longName, rawName, index, value: undefined, inlineValue: undefined });
      }
      continue;
    }
    if (arg.startsWith("--")) {
      const equals = arg.indexOf("=");
      const rawName = equals === -1 ? arg : arg.slice(0, equals);
      const longName = rawName.slice(2);
      if (equals !== -1) {
        tokens.push({ kind: "option", name: longName, rawName, index, value: arg.slice(equals + 1), inlineValue: true });
      } else if (options[longName]?.type === "string" && next !== undefined && (nextIsValue || !strict)) {
        tokens.push({ kind: "option", name: longName, rawName, index, value: String(next), inlineValue: false });
        index++;
      } else {
        tokens.push({ kind: "option", name: longName, rawName, index, value: undefined, inlineValue: undefined });
      }
      continue;
    }
    tokens.push({ kind: "positional", index, value: arg });
  }

  const values = { __proto__: null };
  const positionals = [];
  for (const token of tokens) {
    if (token.kind === "positional") {
      if (!allowPositionals) {
        throw parseArgsError("ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL", `Unexpected argument '${token.value}'. This command does not take positional arguments`);
      }
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== "option") continue;
    let name = token.name;
    let value = token.value;
    let option = options[name];
    if (!option && allowNegative && name.startsWith("no-") && options[name.slice(3)]?.type === "boolean" && value === undefined) {
      name = name.slice(3);
      option = options[name];
      value = false;
    }
    if (strict) {
      if (!option) {
        const suggestion = token.rawName.startsWith("--") ? "" : ` To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- ${JSON.stringify(token.rawName)}`;
        throw parseArgsError(
          "ERR_PARSE_ARGS_UNKNOWN_OPTION",
          `Unknown option '${token.rawName}'.${suggestion ? suggestion + "'" : ""}`,
        );
      }
      if (option.type === "string" && typeof value !== "string") {
        throw parseArgsError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `Option '${option.short ? `-${option.short}, ` : ""}--${name} <value>' argument missing`);
      }
      if (option.type === "boolean" && typeof value === "string") {
        throw parseArgsError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `Option '${option.short ? `-${option.short}, ` : ""}--${name}' does not take an argument`);
      }
    }
    const stored = value === undefined ? true : value;
    if (option?.multiple) (values[name] ??= []).push(stored);
    else values[name] = stored;
  }
  for (const [name, option] of Object.entries(options)) {
    if (option.default !== undefined && values[name] === undefined) values[name] = option.default;
  }
  const result = { values, positionals };
  if (returnTokens) result.tokens = tokens;
  return result;
}

// promisify(setTimeout) and promisify(setImmediate) are timers/promises' forms in Node; here
// they wait on the run's own timers (which keep the run alive) unless the timer brings its own.
const PROMISIFY_CUSTOM = Symbol.for("nodejs.util.promisify.custom");

function abortReason(signal) {
  return signal.reason instanceof Error ? signal.reason : Object.assign(new Error("The operation was aborted", { cause: signal.reason }), { name: "AbortError", code: "ABORT_ERR" });
}

function waiting(schedule, clear) {
  return (value, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const handle = schedule(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(value);
      });
      const onAbort = () => {
        clear(handle);
        reject(abortReason(signal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
}

export function promisify(original) {
  if (typeof original === "function" && original[PROMISIFY_CUSTOM] === undefined) {
    if (original === globalThis.setTimeout) {
      return (ms, value, options) => waiting((done) => globalThis.setTimeout(done, ms), (t) => globalThis.clearTimeout(t))(value, options?.signal);
    }
    if (original === globalThis.setImmediate) {
      return (value, options) => waiting((done) => globalThis.setImmediate(done), (t) => globalThis.clearImmediate(t))(value, options?.signal);
    }
  }
  return real.promisify(original);
}
promisify.custom = real.promisify.custom ?? PROMISIFY_CUSTOM;

const utilModule = { ...real, promisify, parseArgs, getSystemErrorName, getSystemErrorMessage, getSystemErrorMap, debuglog, debug, deprecate };

export * from "node:util";
export default utilModule;
for (const name of ["util", "node:util", "sys", "node:sys"]) sandboxBuiltins.set(name, utilModule);
