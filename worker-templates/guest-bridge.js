// Shared by the prelude and the guest's sandbox builtins (child_process, http), which
// load only when a guest imports them. One isolate serves one run, so this is that run's.
export const deliveryHandlers = new Map();

/** Guest HTTP servers by port: (request message) → Promise<reply>, reached by `rt.fetch`. */
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
};

// Captured before any guest code runs: the checks below must not use what a guest can patch.
const nativeString = String;
const nativeApply = Reflect.apply;
const nativeStartsWith = String.prototype.startsWith;
const nativeDefineProperty = Object.defineProperty;

/**
 * workerd's own modules (`cloudflare:workers` has `waitUntil`, which outlives the run) are
 * refused as Node refuses their schemes (host/compile/specifiers.ts refuses static imports).
 */
export function isRefusedSpecifier(specifier) {
  return nativeApply(nativeStartsWith, specifier, ["cloudflare:"]) || nativeApply(nativeStartsWith, specifier, ["workerd:"]);
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
 * Every dynamic `import(x)` of guest code is compiled to this (host/compile/guest-module.ts): `load` is
 * the guest's own `import`, so relative specifiers resolve as before.
 */
export async function guardedImport(load, specifier, options) {
  const name = nativeString(specifier);
  if (isRefusedSpecifier(name)) throw unsupportedSchemeError(name);
  // `module` answers with the sandbox's (its createRequire is guarded too).
  if (name === "module" || name === "node:module") return load("./secure-exec-module.js", options);
  return load(name, options);
}

const guardedModules = new WeakSet();

/** Makes `node:module`'s object hand out guarded `require`s (once; returns it). */
export function guardNodeModule(nodeModule) {
  if (!nodeModule || guardedModules.has(nodeModule)) return nodeModule;
  guardedModules.add(nodeModule);
  const nativeCreateRequire = nodeModule.createRequire;
  nodeModule.createRequire = function createRequire(path) {
    return guardedRequire(nativeApply(nativeCreateRequire, this, [path]));
  };
  return nodeModule;
}

/** A `require` (from `createRequire`) that refuses what the guarded import refuses, as Node's `require` does. */
function guardedRequire(require) {
  const guarded = function require_(id) {
    const name = nativeString(id);
    if (isRefusedSpecifier(name)) {
      const error = new Error(`Cannot find module '${name}'`);
      nativeDefineProperty(error, "code", { value: "MODULE_NOT_FOUND", writable: true, configurable: true, enumerable: true });
      throw error;
    }
    return require(name);
  };
  for (const key of Object.keys(require)) guarded[key] = require[key];
  return guarded;
}
