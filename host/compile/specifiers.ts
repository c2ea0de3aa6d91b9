// What a guest's import specifier names: a Node builtin, a sandbox module, a relative path,
// or a package ("bare"). Shared by the Node host and the edge Worker.
import { builtinModules } from "node:module";

const BUILTINS = new Set(builtinModules);

export class ModuleNotFoundError extends Error {
  constructor(specifier: string, importer: string) {
    super(`Cannot find package '${specifier}' imported from ${importer}`);
    this.name = "Error [ERR_MODULE_NOT_FOUND]";
  }
}

/** A package that is there but cannot be loaded (it does not parse, or is too large). */
export class PackageLoadError extends ModuleNotFoundError {
  constructor(specifier: string, cause: Error) {
    super(specifier, "");
    this.message = cause.message;
    this.name = cause.message.includes("cannot parse") ? "SyntaxError" : "Error";
  }
}

/** `node:` modules that exist only with the prefix (absent from `builtinModules`). */
const PREFIX_ONLY_BUILTINS = new Set(["test", "test/reporters", "sqlite", "sea"]);

/** A `node:` specifier naming no Node builtin: Node's loader refuses it before any code runs. */
export class UnknownBuiltinError extends ModuleNotFoundError {
  constructor(specifier: string) {
    super(specifier, "");
    this.message = `No such built-in module: ${specifier}`;
    this.name = "Error [ERR_UNKNOWN_BUILTIN_MODULE]";
  }
}

export function isKnownNodeBuiltin(specifier: string): boolean {
  const bare = specifier.startsWith("node:") ? specifier.slice(5) : specifier;
  return BUILTINS.has(bare) || PREFIX_ONLY_BUILTINS.has(bare);
}

export function isBuiltinSpecifier(specifier: string): boolean {
  return specifier.startsWith("node:") || specifier.startsWith("cloudflare:") || specifier.startsWith("workerd:") || BUILTINS.has(specifier);
}

export function isBareSpecifier(specifier: string): boolean {
  return !specifier.startsWith(".") && !specifier.startsWith("/") && !isBuiltinSpecifier(specifier) && !specifier.startsWith("secure-exec-");
}

/**
 * workerd's own modules (`cloudflare:workers` has `waitUntil`, which outlives the run). Node
 * refuses these schemes, and so does the sandbox, however the guest spells the import.
 */
export function isRefusedSpecifier(specifier: string): boolean {
  return specifier.startsWith("cloudflare:") || specifier.startsWith("workerd:");
}

/** What Node reports for an import of a scheme it does not load. */
export class UnsupportedSchemeError extends Error {
  readonly code = "ERR_UNSUPPORTED_ESM_URL_SCHEME";
  constructor(readonly specifier: string) {
    super(
      `Only URLs with a scheme in: file, data, and node are supported by the default ESM loader. Received protocol '${specifier.slice(0, specifier.indexOf(":") + 1)}'`,
    );
    this.name = "Error [ERR_UNSUPPORTED_ESM_URL_SCHEME]";
  }
}
