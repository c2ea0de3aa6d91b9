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
