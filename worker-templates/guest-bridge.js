// Shared by the prelude and the guest's sandbox builtins (child_process, http), which
// load only when a guest imports them. One isolate serves one run, so this is that run's.
export const deliveryHandlers = new Map();

/** Guest HTTP servers by port: (request message) -> Promise<reply>, reached by `rt.fetch`. */
export const httpServers = new Map();

/** Sandbox builtins loaded in this isolate, by name, for `process.getBuiltinModule`. */
export const sandboxBuiltins = new Map();

export const bridge = {
  /** Set by the prelude when the run starts: host calls, events, liveness holds. */
  current: undefined,
  /** The run's virtual filesystem snapshot (`input.fs`), when the host shipped one. */
  fsSnapshot: undefined,
  /** Set by the fs module once used: the changes to hand back to the host at the end. */
  fsChanges: undefined,
  /**
   * What sandbox modules ask to do once loaded: workerd evaluates modules in its global scope,
   * where no I/O (output included) is allowed. The prelude runs these after each import.
   */
  afterLoad: [],
};

// Captured before any guest code runs: the checks below must not use what a guest can patch.
const nativeApply = Reflect.apply;
const nativeStartsWith = String.prototype.startsWith;
const nativeDefineProperty = Object.defineProperty;

/**
 * workerd's own modules (`cloudflare:workers` has `waitUntil`, which outlives the run) are
 * refused as Node refuses their schemes (host/compile/specifiers.ts refuses static imports).
 */
export function isRefusedSpecifier(specifier) {
  return hasPrefix(specifier, "cloudflare:") || hasPrefix(specifier, "workerd:");
}

/** `text.startsWith(prefix)`, whatever the guest did to String.prototype. */
export function hasPrefix(text, prefix) {
  return nativeApply(nativeStartsWith, text, [prefix]);
}

export function unsupportedSchemeError(specifier) {
  const scheme = specifier.slice(0, specifier.indexOf(":") + 1);
  const error = new Error(
    `Only URLs with a scheme in: file, data, and node are supported by the default ESM loader. Received protocol '${scheme}'`,
  );
  nativeDefineProperty(error, "code", { value: "ERR_UNSUPPORTED_ESM_URL_SCHEME", writable: true, configurable: true, enumerable: true });
  // As Node does: the code shows in the stack's first line, not in `name`.
  error.name = "Error [ERR_UNSUPPORTED_ESM_URL_SCHEME]";
  void error.stack;
  delete error.name;
  return error;
}

/**
 * A name shaped like a Node builtin's ("fs", "fs/promises", "_http_agent"): lowercase letters,
 * digits, `_` and inner single slashes, so no `.`/`..` segment can climb from `node:` to the
 * isolate's own modules (workerd resolves `node:/../x` as `x`). Indexing and comparisons only:
 * a guest may have replaced the string methods.
 */
export function isPlainBuiltinName(name) {
  if (typeof name !== "string" || name.length === 0 || name[0] === "/" || name[name.length - 1] === "/") return false;
  for (let index = 0; index < name.length; index += 1) {
    const char = name[index];
    const plain = (char >= "a" && char <= "z") || (char >= "0" && char <= "9") || char === "_" || (char === "/" && name[index - 1] !== "/");
    if (!plain) return false;
  }
  return true;
}
