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
