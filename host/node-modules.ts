// Guest `import "pkg"`: packages are resolved from a host node_modules directory and handed
// to the guest isolate as modules of its own (ES modules, CommonJS and JSON), with every
// specifier rewritten to the exact module name so workerd needs no resolution of its own.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, relative, resolve, sep } from "node:path";
import type { Node } from "acorn";
import { acorn, acornWalk } from "./parser.js";
import { isBuiltinSpecifier, ModuleNotFoundError } from "./specifiers.js";

export type BundledModule = { js: string } | { cjs: string } | { json: unknown };

const MAX_FILES = 5_000;
const PROCESS_MODULE = "node_modules/.secure-exec/process.cjs";
const SANDBOX_BUILTINS: Record<string, string> = {
  fs: "secure-exec-fs.js",
  "fs/promises": "secure-exec-fs-promises.js",
  child_process: "secure-exec-child-process.js",
  http: "secure-exec-http.js",
};
const MAX_BYTES = 64 * 1024 * 1024;


type ModuleKind = "esm" | "cjs" | "json";

interface ResolvedFile {
  path: string;
  kind: ModuleKind;
}

export class NodeModulesBundler {
  private readonly root: string;

  constructor(nodeModulesDir: string) {
    this.root = resolve(nodeModulesDir);
    if (!existsSync(this.root) || !statSync(this.root).isDirectory()) {
      throw new Error(`secure-exec: nodeModules "${nodeModulesDir}" is not a directory`);
    }
  }

  /** Module name of a bundled file, as the guest isolate knows it. */
  private moduleName(path: string): string {
    return `node_modules/${relative(this.root, path).split(sep).join("/")}`;
  }

  /**
   * Resolves the guest's bare specifiers and everything they import. Returns the modules to
   * hand to the isolate and, per guest specifier, the module name to import instead.
   */
  bundle(
    specifiers: string[],
    importer: string,
  ): { modules: Record<string, BundledModule>; entries: Map<string, string>; sandboxModules: Set<string> } {
    const modules: Record<string, BundledModule> = {};
    const sandboxModules = new Set<string>();
    const entries = new Map<string, string>();
    const pending: ResolvedFile[] = [];
    const seen = new Set<string>();
    let bytes = 0;
    const enqueue = (file: ResolvedFile) => {
      if (seen.has(file.path)) return;
      seen.add(file.path);
      pending.push(file);
    };
    for (const specifier of specifiers) {
      const file = this.resolvePackage(specifier, this.root, "esm");
      if (!file) throw new ModuleNotFoundError(specifier, importer);
      entries.set(specifier, `./${this.moduleName(file.path)}`);
      enqueue(file);
    }
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (seen.size > MAX_FILES) throw new Error(`secure-exec: the packages imported need more than ${MAX_FILES} files`);
      const source = readFileSync(file.path, "utf8");
      bytes += source.length;
      if (bytes > MAX_BYTES) throw new Error(`secure-exec: the packages imported exceed ${MAX_BYTES} bytes`);
      const name = this.moduleName(file.path);
      if (file.kind === "json") {
        modules[name] = { json: JSON.parse(source) as unknown };
        continue;
      }
      const rewritten = this.rewriteSpecifiers(source, file, (specifier) => {
        if (specifier === "process" || specifier === "node:process") {
          // workerd has no loadable `node:process` module; the global is the same object.
          modules[PROCESS_MODULE] = { cjs: "module.exports = globalThis.process;" };
          let path = posix.relative(posix.dirname(name), PROCESS_MODULE);
          if (!path.startsWith(".")) path = `./${path}`;
          return path;
        }
        // ES modules of packages use the sandbox's fs, child_process and http as the guest does.
        const sandboxModule = file.kind === "esm" ? SANDBOX_BUILTINS[specifier.replace(/^node:/, "")] : undefined;
        if (sandboxModule) {
          sandboxModules.add(sandboxModule);
          if (sandboxModule === "secure-exec-fs-promises.js") sandboxModules.add("secure-exec-fs.js");
          return `${"../".repeat(name.split("/").length - 1)}${sandboxModule}`;
        }
        if (isBuiltinSpecifier(specifier)) return specifier.includes(":") ? undefined : `node:${specifier}`;
        const target = specifier.startsWith(".") || specifier.startsWith("/")
          ? this.resolveFile(resolve(dirname(file.path), specifier), file.kind)
          : this.resolvePackage(specifier, dirname(file.path), file.kind);
        if (!target) return undefined;
        enqueue(target);
        let path = posix.relative(posix.dirname(name), this.moduleName(target.path));
        if (!path.startsWith(".")) path = `./${path}`;
        return path;
      });
      modules[name] = file.kind === "esm" ? { js: rewritten } : { cjs: rewritten };
    }
    return { modules, entries, sandboxModules };
  }

  private rewriteSpecifiers(source: string, file: ResolvedFile, map: (specifier: string) => string | undefined): string {
    let program: Node;
    try {
      program = acorn().parse(source, {
        ecmaVersion: "latest",
        sourceType: file.kind === "esm" ? "module" : "script",
        allowHashBang: true,
        allowReturnOutsideFunction: true,
        allowAwaitOutsideFunction: true,
      });
    } catch (error) {
      throw new Error(`secure-exec: cannot parse ${this.moduleName(file.path)}: ${(error as Error).message}`);
    }
    const edits: { start: number; end: number; text: string }[] = [];
    const visit = (literal: Node | null | undefined) => {
      if (!literal || literal.type !== "Literal") return;
      const value = (literal as Node & { value?: unknown }).value;
      if (typeof value !== "string") return;
      const replacement = map(value);
      if (replacement !== undefined) edits.push({ start: literal.start, end: literal.end, text: JSON.stringify(replacement) });
    };
    acornWalk().simple(program, {
      ImportDeclaration: (node) => visit((node as Node & { source: Node }).source),
      ExportNamedDeclaration: (node) => visit((node as Node & { source?: Node | null }).source),
      ExportAllDeclaration: (node) => visit((node as Node & { source: Node }).source),
      ImportExpression: (node) => visit((node as Node & { source: Node }).source),
      CallExpression: (node) => {
        const call = node as Node & { callee: Node & { name?: string }; arguments: Node[] };
        if (call.callee.type === "Identifier" && call.callee.name === "require" && call.arguments.length === 1) {
          visit(call.arguments[0]);
        }
      },
    });
    edits.sort((a, b) => b.start - a.start);
    let output = source;
    for (const edit of edits) output = output.slice(0, edit.start) + edit.text + output.slice(edit.end);
    return output;
  }

  private resolvePackage(specifier: string, fromDir: string, importerKind: ModuleKind): ResolvedFile | undefined {
    const parts = specifier.split("/");
    const packageName = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
    const subpath = parts.slice(specifier.startsWith("@") ? 2 : 1).join("/");
    for (let dir = fromDir; ; dir = dirname(dir)) {
      const candidate = dir === this.root || dir.endsWith(`${sep}node_modules`) ? join(dir, packageName) : join(dir, "node_modules", packageName);
      if (candidate.startsWith(this.root) && existsSync(join(candidate, "package.json"))) {
        return this.resolveInPackage(candidate, subpath, importerKind);
      }
      if (dir === this.root || !dir.startsWith(this.root)) return undefined;
    }
  }

  private resolveInPackage(packageDir: string, subpath: string, importerKind: ModuleKind): ResolvedFile | undefined {
    const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
      exports?: unknown;
      main?: string;
      module?: string;
    };
    const conditions = importerKind === "esm" ? ["workerd", "worker", "import", "node", "module", "default"] : ["workerd", "worker", "require", "node", "default"];
    if (manifest.exports !== undefined) {
      const exportsMap = manifest.exports;
      let target: unknown;
      const key = subpath ? `./${subpath}` : ".";
      if (typeof exportsMap === "string" || Array.isArray(exportsMap)) target = key === "." ? exportsMap : undefined;
      else if (exportsMap && typeof exportsMap === "object") {
        const entries = exportsMap as Record<string, unknown>;
        target = Object.keys(entries).some((k) => k.startsWith(".")) ? entries[key] : key === "." ? entries : undefined;
      }
      const chosen = pickCondition(target, conditions);
      if (chosen) return this.resolveFile(resolve(packageDir, chosen), importerKind);
      if (target !== undefined) return undefined;
    }
    if (subpath) return this.resolveFile(join(packageDir, subpath), importerKind);
    const entry = (importerKind === "esm" && manifest.module) || manifest.main || "index.js";
    return this.resolveFile(resolve(packageDir, entry), importerKind);
  }

  private resolveFile(path: string, importerKind: ModuleKind): ResolvedFile | undefined {
    if (!path.startsWith(this.root)) return undefined;
    for (const candidate of [path, `${path}.js`, `${path}.mjs`, `${path}.cjs`, `${path}.json`, join(path, "index.js"), join(path, "index.mjs")]) {
      if (existsSync(candidate) && statSync(candidate).isFile()) return { path: candidate, kind: this.kindOf(candidate) };
    }
    if (existsSync(join(path, "package.json"))) return this.resolveInPackage(path, "", importerKind);
    return undefined;
  }

  private kindOf(path: string): ModuleKind {
    if (path.endsWith(".json")) return "json";
    if (path.endsWith(".mjs")) return "esm";
    if (path.endsWith(".cjs")) return "cjs";
    for (let dir = dirname(path); dir.startsWith(this.root); dir = dirname(dir)) {
      const manifest = join(dir, "package.json");
      if (existsSync(manifest)) {
        const type = (JSON.parse(readFileSync(manifest, "utf8")) as { type?: string }).type;
        return type === "module" ? "esm" : "cjs";
      }
      if (dir === this.root) break;
    }
    return "cjs";
  }
}

function pickCondition(target: unknown, conditions: string[]): string | undefined {
  if (typeof target === "string") return target;
  if (Array.isArray(target)) {
    for (const item of target) {
      const chosen = pickCondition(item, conditions);
      if (chosen) return chosen;
    }
    return undefined;
  }
  if (target && typeof target === "object") {
    for (const [condition, value] of Object.entries(target as Record<string, unknown>)) {
      if (conditions.includes(condition)) {
        const chosen = pickCondition(value, conditions);
        if (chosen) return chosen;
      }
    }
  }
  return undefined;
}
