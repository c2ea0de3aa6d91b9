// Guest `import "pkg"`: packages are resolved from a host node_modules directory and handed
// to the guest isolate as modules of its own (ES modules, CommonJS and JSON), with every
// specifier rewritten to the exact module name so workerd needs no resolution of its own.
import { readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join, posix, relative, resolve, sep } from "node:path";
import type { Node } from "acorn";
import { acorn, acornWalk } from "./parser.js";
import { isBuiltinSpecifier, ModuleNotFoundError } from "./specifiers.js";
import { SANDBOX_MODULE_DEPENDENCIES } from "./guest-module.js";

export type BundledModule = { js: string } | { cjs: string } | { json: unknown };

const MAX_FILES = 5_000;
/** The prelude's global that a package's own `import()` is wrapped in (worker-templates/guest-prelude.js). */
const IMPORT_TRACKER = "__secureExecImported";
const PROCESS_MODULE = "node_modules/.secure-exec/process.cjs";
const SANDBOX_BUILTINS: Record<string, string> = {
  fs: "secure-exec-fs.js",
  "fs/promises": "secure-exec-fs-promises.js",
  child_process: "secure-exec-child-process.js",
  http: "secure-exec-http.js",
  https: "secure-exec-https.js",
  path: "secure-exec-path.js",
  "path/posix": "secure-exec-path.js",
  util: "secure-exec-util.js",
  v8: "secure-exec-v8.js",
  sys: "secure-exec-sys.js",
  zlib: "secure-exec-zlib.js",
  dgram: "secure-exec-dgram.js",
  vm: "secure-exec-vm.js",
  worker_threads: "secure-exec-worker-threads.js",
  crypto: "secure-exec-crypto.js",
  assert: "secure-exec-assert.js",
  diagnostics_channel: "secure-exec-diagnostics-channel.js",
  os: "secure-exec-os.js",
  net: "secure-exec-net.js",
  dns: "secure-exec-dns.js",
  "dns/promises": "secure-exec-dns-promises.js",
  perf_hooks: "secure-exec-perf-hooks.js",
  readline: "secure-exec-readline.js",
  "readline/promises": "secure-exec-readline-promises.js",
};
const MAX_BYTES = 64 * 1024 * 1024;


type ModuleKind = "esm" | "cjs" | "json";

export interface ResolvedFile {
  /** Real path (links resolved), always inside the real `nodeModules` directory. */
  path: string;
  kind: ModuleKind;
}

/** One package graph as the isolate gets it. */
export interface PackageBundle {
  modules: Record<string, BundledModule>;
  /** Module name the guest imports instead of the specifier. */
  entry: string;
  sandboxModules: string[];
  /** Source bytes read for it (what a cache of bundles is bounded by). */
  bytes: number;
}

export class NodeModulesBundler {
  /** `realpath(nodeModules)`: nothing whose real path lies outside it is ever read. */
  private readonly root: string;
  /** `root` with a trailing separator: what every contained path starts with. */
  private readonly rootPrefix: string;

  constructor(nodeModulesDir: string) {
    let root: string | undefined;
    try {
      root = realpathSync(resolve(nodeModulesDir));
    } catch {
      root = undefined;
    }
    if (root === undefined || !statSync(root).isDirectory()) {
      throw new Error(`secure-exec: nodeModules "${nodeModulesDir}" is not a directory`);
    }
    this.root = root;
    this.rootPrefix = root.endsWith(sep) ? root : `${root}${sep}`;
  }

  /** The real `nodeModules` directory (what bundles are keyed under). */
  get realRoot(): string {
    return this.root;
  }

  /**
   * Real path of `path` when it exists and lies inside the root (compared with a separator,
   * so a sibling such as `node_modules.bak` is outside); undefined otherwise.
   */
  private contained(path: string): string | undefined {
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return undefined;
    }
    return real === this.root || real.startsWith(this.rootPrefix) ? real : undefined;
  }

  private isFile(path: string): string | undefined {
    const real = this.contained(path);
    return real !== undefined && statSync(real).isFile() ? real : undefined;
  }

  /** Reads a file only through its contained real path. */
  private readContained(path: string): string | undefined {
    const real = this.isFile(path);
    return real === undefined ? undefined : readFileSync(real, "utf8");
  }

  /** The entry file a guest's bare specifier names, or undefined when it is not found. */
  resolveSpecifier(specifier: string): ResolvedFile | undefined {
    return this.resolvePackage(specifier, this.root, "esm");
  }

  /** The package graph reachable from an entry file (from `resolveSpecifier`). */
  bundleFrom(entry: ResolvedFile): PackageBundle {
    const specifier = "(entry)";
    const bundle = this.bundleFiles(new Map([[specifier, entry]]));
    return { modules: bundle.modules, entry: bundle.entries.get(specifier)!, sandboxModules: [...bundle.sandboxModules], bytes: bundle.bytes };
  }

  /** Module name of a bundled file, as the guest isolate knows it. */
  private moduleName(path: string): string {
    return `node_modules/${relative(this.root, path).split(sep).join("/")}`;
  }

  private bundleFiles(
    files: Map<string, ResolvedFile>,
  ): { modules: Record<string, BundledModule>; entries: Map<string, string>; sandboxModules: Set<string>; bytes: number } {
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
    for (const [specifier, file] of files) {
      entries.set(specifier, `./${this.moduleName(file.path)}`);
      enqueue(file);
    }
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (seen.size > MAX_FILES) throw new Error(`secure-exec: the packages imported need more than ${MAX_FILES} files`);
      const source = this.readContained(file.path);
      if (source === undefined) throw new Error(`secure-exec: ${this.moduleName(file.path)} is no longer readable`);
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
          for (const dependency of SANDBOX_MODULE_DEPENDENCIES[sandboxModule] ?? []) sandboxModules.add(dependency);
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
    return { modules, entries, sandboxModules, bytes };
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
      ImportExpression: (node) => {
        visit((node as Node & { source: Node }).source);
        // Modules a package imports later are evaluated outside the run's request: the
        // prelude's tracker holds what they print until the import settles.
        edits.push({ start: node.start, end: node.start, text: `${IMPORT_TRACKER}(` }, { start: node.end, end: node.end, text: ")" });
      },
      CallExpression: (node) => {
        const call = node as Node & { callee: Node & { name?: string }; arguments: Node[] };
        if (call.callee.type === "Identifier" && call.callee.name === "require" && call.arguments.length === 1) {
          visit(call.arguments[0]);
        }
      },
    });
    // From the end back; at one position a closing ")" goes after what ends there and an
    // opening one before what starts there, so the later edit (by start, then end) goes first.
    edits.sort((a, b) => b.start - a.start || b.end - a.end);
    let output = source;
    for (const edit of edits) output = output.slice(0, edit.start) + edit.text + output.slice(edit.end);
    return output;
  }

  private resolvePackage(specifier: string, fromDir: string, importerKind: ModuleKind): ResolvedFile | undefined {
    const parts = specifier.split("/");
    const nameParts = specifier.startsWith("@") ? parts.slice(0, 2) : parts.slice(0, 1);
    // A package name is one segment (two when scoped), never `.` or `..` or empty.
    if (nameParts.length !== (specifier.startsWith("@") ? 2 : 1) || nameParts.some((part) => part === "" || part === "." || part === ".." || part === "@")) {
      return undefined;
    }
    const packageName = nameParts.join("/");
    const subpath = parts.slice(nameParts.length).join("/");
    for (let dir = fromDir; ; dir = dirname(dir)) {
      const candidate = dir === this.root || dir.endsWith(`${sep}node_modules`) ? join(dir, packageName) : join(dir, "node_modules", packageName);
      const packageDir = this.contained(candidate);
      if (packageDir !== undefined && this.isFile(join(packageDir, "package.json")) !== undefined) {
        return this.resolveInPackage(packageDir, subpath, importerKind);
      }
      if (dir === this.root || !dir.startsWith(this.rootPrefix)) return undefined;
    }
  }

  private resolveInPackage(packageDir: string, subpath: string, importerKind: ModuleKind): ResolvedFile | undefined {
    const manifestSource = this.readContained(join(packageDir, "package.json"));
    if (manifestSource === undefined) return undefined;
    const manifest = JSON.parse(manifestSource) as {
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

  /** Every candidate is compared by real path: `pkg/../../elsewhere` and links out are not found. */
  private resolveFile(path: string, importerKind: ModuleKind): ResolvedFile | undefined {
    for (const candidate of [path, `${path}.js`, `${path}.mjs`, `${path}.cjs`, `${path}.json`, join(path, "index.js"), join(path, "index.mjs")]) {
      const real = this.isFile(candidate);
      if (real !== undefined) return { path: real, kind: this.kindOf(real) };
    }
    const packageDir = this.contained(path);
    if (packageDir !== undefined && this.isFile(join(packageDir, "package.json")) !== undefined) return this.resolveInPackage(packageDir, "", importerKind);
    return undefined;
  }

  private kindOf(path: string): ModuleKind {
    if (path.endsWith(".json")) return "json";
    if (path.endsWith(".mjs")) return "esm";
    if (path.endsWith(".cjs")) return "cjs";
    for (let dir = dirname(path); dir === this.root || dir.startsWith(this.rootPrefix); dir = dirname(dir)) {
      const manifest = this.readContained(join(dir, "package.json"));
      if (manifest !== undefined) {
        const type = (JSON.parse(manifest) as { type?: string }).type;
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

export type BundleJob =
  | { id: number; root: string; kind: "resolve"; specifiers: string[] }
  | { id: number; root: string; kind: "bundle"; entry: ResolvedFile };

export type BundleReply =
  | { id: number; ok: true; resolved: (ResolvedFile | null)[] }
  | { id: number; ok: true; bundle: PackageBundle }
  | { id: number; ok: false; error: string };

/** One job of host/compile/package-bundles.ts (on its worker thread, or inline without a build). */
export function runBundleJob(job: BundleJob): BundleReply {
  try {
    const bundler = new NodeModulesBundler(job.root);
    if (job.kind === "resolve") {
      // In order, stopping at the first that is not found (the run fails on it anyway).
      const resolved: (ResolvedFile | null)[] = [];
      for (const specifier of job.specifiers) {
        const file = bundler.resolveSpecifier(specifier) ?? null;
        resolved.push(file);
        if (file === null) break;
      }
      return { id: job.id, ok: true, resolved };
    }
    return { id: job.id, ok: true, bundle: bundler.bundleFrom(job.entry) };
  } catch (error) {
    return { id: job.id, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}
