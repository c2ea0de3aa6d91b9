// Turns guest source (an ES module) into the module the prelude runs: static imports are
// hoisted to load time and the body becomes `export default async function`, so the body
// runs inside a request (where timers and I/O are allowed) and line numbers stay the same.
import type { Node, Program } from "acorn";
import { acorn, acornWalk } from "./parser.js";
import { isKnownNodeBuiltin, isRefusedSpecifier, ModuleNotFoundError, PackageLoadError, UnknownBuiltinError, UnsupportedSchemeError } from "./specifiers.js";

export const GUEST_MODULE_NAME = "guest.js";
const MAIN_FUNCTION = "__secureExecGuestMain";
/** Module-level object of guest.js holding the guest's default export. */
const EXPORTS_OBJECT = "__secureExecExports";
/** Parameters of the main function: the guest's `import()`, `import.meta`, and the prelude's builtins. */
const IMPORT_FUNCTION = "__secureExecImport";
const IMPORT_META = "__secureExecImportMeta";
const PROVIDED_FUNCTION = "__secureExecProvided";

/**
 * Builtins the prelude itself implements (worker-templates/guest-prelude.js): imports of them
 * bind to the prelude's objects when the body starts, so lazy parts (process.stdout) stay lazy.
 */
const PROVIDED_BUILTINS = new Set(["process", "timers", "timers/promises", "os", "module", "path", "path/posix", "console", "url"]);

function providedBuiltin(specifier: unknown): string | undefined {
  if (typeof specifier !== "string") return undefined;
  const bare = specifier.startsWith("node:") ? specifier.slice(5) : specifier;
  return PROVIDED_BUILTINS.has(bare) ? `node:${bare}` : undefined;
}

/**
 * Builtins whose sandbox versions replace workerd's (see worker-templates/); os, path and
 * module are the prelude's (PROVIDED_BUILTINS).
 */
const SHIMMED_SPECIFIERS: Record<string, string> = {
  child_process: "./secure-exec-child-process.js",
  "node:child_process": "./secure-exec-child-process.js",
  http: "./secure-exec-http.js",
  "node:http": "./secure-exec-http.js",
  https: "./secure-exec-https.js",
  "node:https": "./secure-exec-https.js",
  fs: "./secure-exec-fs.js",
  "node:fs": "./secure-exec-fs.js",
  "fs/promises": "./secure-exec-fs-promises.js",
  "node:fs/promises": "./secure-exec-fs-promises.js",
  util: "./secure-exec-util.js",
  "node:util": "./secure-exec-util.js",
  v8: "./secure-exec-v8.js",
  "node:v8": "./secure-exec-v8.js",
  sys: "./secure-exec-sys.js",
  "node:sys": "./secure-exec-sys.js",
  "node:sqlite": "./secure-exec-sqlite.js",
  zlib: "./secure-exec-zlib.js",
  "node:zlib": "./secure-exec-zlib.js",
  "node:test": "./secure-exec-test.js",
  dgram: "./secure-exec-dgram.js",
  "node:dgram": "./secure-exec-dgram.js",
  vm: "./secure-exec-vm.js",
  "node:vm": "./secure-exec-vm.js",
  worker_threads: "./secure-exec-worker-threads.js",
  "node:worker_threads": "./secure-exec-worker-threads.js",
  crypto: "./secure-exec-crypto.js",
  "node:crypto": "./secure-exec-crypto.js",
  assert: "./secure-exec-assert.js",
  "node:assert": "./secure-exec-assert.js",
  diagnostics_channel: "./secure-exec-diagnostics-channel.js",
  "node:diagnostics_channel": "./secure-exec-diagnostics-channel.js",
  net: "./secure-exec-net.js",
  "node:net": "./secure-exec-net.js",
  dns: "./secure-exec-dns.js",
  "node:dns": "./secure-exec-dns.js",
  "dns/promises": "./secure-exec-dns-promises.js",
  "node:dns/promises": "./secure-exec-dns-promises.js",
  perf_hooks: "./secure-exec-perf-hooks.js",
  "node:perf_hooks": "./secure-exec-perf-hooks.js",
  readline: "./secure-exec-readline.js",
  "node:readline": "./secure-exec-readline.js",
  "readline/promises": "./secure-exec-readline-promises.js",
  "node:readline/promises": "./secure-exec-readline-promises.js",
};

/**
 * node:path is the prelude's; its matchesGlob is this module's (worker-templates/node/guest-path.js),
 * loaded for guests that name it.
 */
const PATH_MODULE = "./secure-exec-path.js";

/** Sandbox modules that warn when loaded (node:sys is deprecated, node:sqlite experimental). */
const WARN_ON_LOAD = new Set(["./secure-exec-sys.js", "./secure-exec-sqlite.js"]);

/** The modules guest-fs.js is made of (worker-templates/fs/), handed over with it. */
const FS_PARTS = ["errors", "paths", "store", "ops", "stats", "fd", "sync", "callbacks", "streams", "handle"].map((part) => `secure-exec-fs-${part}.js`);

/**
 * Sandbox modules that import others, with all they import, directly or not (which must then
 * be handed to the isolate too; test/architecture.test.ts checks the lists are complete).
 */
export const SANDBOX_MODULE_DEPENDENCIES: Record<string, string[]> = {
  "secure-exec-fs.js": [...FS_PARTS, "secure-exec-path.js"],
  "secure-exec-fs-promises.js": ["secure-exec-fs.js", ...FS_PARTS, "secure-exec-path.js"],
  "secure-exec-readline-promises.js": ["secure-exec-readline.js"],
  "secure-exec-sys.js": ["secure-exec-util.js"],
  "secure-exec-sqlite.js": ["secure-exec-unsupported.js"],
  "secure-exec-https.js": ["secure-exec-http.js"],
  "secure-exec-dns-promises.js": ["secure-exec-dns.js"],
  "secure-exec-test.js": ["secure-exec-unsupported.js"],
  "secure-exec-dgram.js": ["secure-exec-unsupported.js"],
  "secure-exec-vm.js": ["secure-exec-unsupported.js"],
  "secure-exec-worker-threads.js": ["secure-exec-unsupported.js"],
};

let moduleLiterals: [quoted: string, name: string][] | undefined;

/** Each sandbox builtin's specifier as a compiled guest quotes it, with its module name. */
function sandboxModuleLiterals(): [quoted: string, name: string][] {
  moduleLiterals ??= [...new Set([...Object.values(SHIMMED_SPECIFIERS), PATH_MODULE])].map((specifier) => [JSON.stringify(specifier), specifier.slice(2)]);
  return moduleLiterals;
}

/**
 * Module names of the sandbox builtins a compiled guest imports (they are handed to its
 * isolate only then), with the ones they import.
 */
export function sandboxModulesOf(compiledModule: string): string[] {
  const names = new Set<string>();
  for (const [quoted, name] of sandboxModuleLiterals()) {
    if (compiledModule.includes(quoted)) names.add(name);
  }
  for (const name of [...names]) for (const dependency of SANDBOX_MODULE_DEPENDENCIES[name] ?? []) names.add(dependency);
  return [...names];
}

/** Whether an isolate with these sandbox modules reaches the virtual filesystem (its snapshot must ship). */
export function usesVirtualFs(sandboxModules: Iterable<string>): boolean {
  return [...sandboxModules].includes("secure-exec-fs.js");
}

function shimmedSpecifier(literal: Node & { value?: unknown }): string | undefined {
  return typeof literal.value === "string" ? SHIMMED_SPECIFIERS[literal.value] : undefined;
}

export class GuestSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
    this.name = "SyntaxError";
  }
}

/** What Node prints on stderr for a module that does not parse. */
export function syntaxErrorReport(code: string, error: GuestSyntaxError): string {
  const sourceLine = code.split("\n")[error.line - 1] ?? "";
  return `file:///workspace/${GUEST_MODULE_NAME}:${error.line}\n${sourceLine}\n${" ".repeat(error.column)}^\n\nSyntaxError: ${error.message}\n`;
}

/** Replaces a span with spaces, keeping newlines so later lines keep their numbers. */
function blank(source: string, start: number, end: number): string {
  return source.slice(start, end).replace(/[^\n]/g, " ");
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

export interface CompileOptions {
  /**
   * Module name to import instead of `specifier` (e.g. a package the host bundled), or
   * undefined to leave it; throws when a package cannot be found.
   */
  resolveBare?: (specifier: string, how: { dynamic: boolean }) => string | undefined;
}

export function compileGuestModule(source: string, options: CompileOptions = {}): string {
  let program: Program;
  try {
    program = acorn().parse(source, {
      ecmaVersion: "latest",
      sourceType: "module",
      allowHashBang: true,
      locations: true,
    });
  } catch (error) {
    const location = (error as { loc?: { line: number; column: number } }).loc;
    const message = (error as Error).message.replace(/ \(\d+:\d+\)$/, "");
    throw new GuestSyntaxError(message, location?.line ?? 1, location?.column ?? 0);
  }

  const edits: Edit[] = [];
  // Point imports of shimmed builtins at the sandbox's versions (static and dynamic), keyed by
  // the literal's start, so each import finds its own in constant time (the rewrite stays
  // linear in the number of imports).
  const specifierEdits = new Map<number, Edit>();
  const redirect = (literal: Node | null | undefined, dynamic = false) => {
    if (!literal || literal.type !== "Literal") return;
    const value = (literal as Node & { value?: unknown }).value;
    if (providedBuiltin(value)) return;
    if (typeof value === "string" && value.startsWith("node:") && !isKnownNodeBuiltin(value)) throw new UnknownBuiltinError(value);
    const target =
      shimmedSpecifier(literal as Node & { value?: unknown }) ??
      (typeof value === "string" ? options.resolveBare?.(value, { dynamic }) : undefined);
    if (target) specifierEdits.set(literal.start, { start: literal.start, end: literal.end, text: JSON.stringify(target) });
  };
  // Static imports of workerd's own modules are refused as Node refuses them: `cloudflare:workers`
  // (`waitUntil`, `env`) would let a guest reach past its run.
  const refuseStatic = (literal: Node | null | undefined) => {
    const value = (literal as (Node & { value?: unknown }) | null | undefined)?.value;
    if (typeof value === "string" && isRefusedSpecifier(value)) throw new UnsupportedSchemeError(value);
  };
  let computedImport = false;
  let fileImport = false;
  acornWalk().simple(program, {
    ImportDeclaration: (node) => {
      refuseStatic((node as Node & { source: Node }).source);
      redirect((node as Node & { source: Node }).source);
    },
    ExportNamedDeclaration: (node) => {
      refuseStatic((node as Node & { source?: Node | null }).source);
      redirect((node as Node & { source?: Node | null }).source);
    },
    ExportAllDeclaration: (node) => {
      refuseStatic((node as Node & { source: Node }).source);
      redirect((node as Node & { source: Node }).source);
    },
    // Every `import(x)` calls the prelude's resolver instead (the sandbox's builtins, the
    // virtual filesystem, and workerd's own modules refused whatever `x` computes to); no
    // native `import()` is left in guest code. `import.meta` is the guest's file URL.
    ImportExpression: (node) => {
      const literal = (node as Node & { source: Node & { value?: unknown } }).source;
      // Computed specifiers and files (JSON from the virtual filesystem) resolve in the guest.
      if (literal.type !== "Literal") computedImport = true;
      else if (typeof literal.value === "string" && /^(\.|\/|file:)/.test(literal.value)) fileImport = true;
      try {
        redirect(literal, true);
      } catch (error) {
        // A package that is not there (or does not load) fails inside the guest's import(),
        // where it can be caught.
        if (!(error instanceof ModuleNotFoundError)) throw error;
        if (error instanceof PackageLoadError) {
          const failure = JSON.stringify({ __secureExecLoadError: { name: error.name, message: error.message } });
          specifierEdits.set(literal.start, { start: literal.start, end: literal.end, text: failure });
        }
      }
      edits.push({ start: node.start, end: node.start + "import".length, text: IMPORT_FUNCTION });
    },
    MetaProperty: (node) => {
      const meta = node as Node & { meta: Node & { name: string } };
      if (meta.meta.name === "import") edits.push({ start: node.start, end: node.end, text: IMPORT_META });
    },
  });
  /** The import's specifier as written, or its redirect. */
  const rewrite = (literal: Node): string => specifierEdits.get(literal.start)?.text ?? source.slice(literal.start, literal.end);
  const hoisted: string[] = [];
  /** Statements at the start of the body (on line 1): bindings of provided builtins. */
  const prefix: string[] = [];
  // Specifiers of hoisted statements travel with them; the rest are rewritten in place.
  const hoistedSpecifiers = new Set<number>();
  const hoist = (literal: Node): string => {
    hoistedSpecifiers.add(literal.start);
    return rewrite(literal);
  };
  if (source.startsWith("#!")) {
    const end = source.indexOf("\n") === -1 ? source.length : source.indexOf("\n");
    edits.push({ start: 0, end, text: blank(source, 0, end) });
  }
  for (const node of program.body as Node[]) {
    const statement = node as Node & {
      type: string;
      source?: Node | null;
      declaration?: (Node & { type: string; id?: Node | null }) | null;
    };
    if (statement.type === "ImportDeclaration") {
      const provided = providedBuiltin((statement.source as Node & { value?: unknown }).value);
      if (provided) prefix.push(...providedBindings(statement, provided));
      else hoisted.push(regenerateImport(statement, hoist));
      edits.push({ start: statement.start, end: statement.end, text: blank(source, statement.start, statement.end) });
    } else if (statement.type === "ExportNamedDeclaration") {
      if (statement.declaration) {
        // `export const x = 1` → `       const x = 1`
        const declStart = statement.declaration.start;
        edits.push({ start: statement.start, end: declStart, text: blank(source, statement.start, declStart) });
      } else {
        if (statement.source) hoisted.push(`import ${hoist(statement.source)};`);
        edits.push({ start: statement.start, end: statement.end, text: blank(source, statement.start, statement.end) });
      }
    } else if (statement.type === "ExportAllDeclaration") {
      if (statement.source) hoisted.push(`import ${hoist(statement.source)};`);
      edits.push({ start: statement.start, end: statement.end, text: blank(source, statement.start, statement.end) });
    } else if (statement.type === "ExportDefaultDeclaration" && statement.declaration) {
      // The default export is kept for the prelude: an object with `fetch` is served the
      // Workers way (see worker-templates/guest-prelude.js).
      const declaration = statement.declaration;
      const id = (declaration as Node & { id?: (Node & { name: string }) | null }).id;
      const named = (declaration.type === "FunctionDeclaration" || declaration.type === "ClassDeclaration") && id;
      if (named) {
        edits.push({ start: statement.start, end: declaration.start, text: blank(source, statement.start, declaration.start) });
        edits.push({ start: declaration.end, end: declaration.end, text: `;${EXPORTS_OBJECT}.default = ${id.name};` });
      } else {
        edits.push({ start: statement.start, end: declaration.start, text: `${EXPORTS_OBJECT}.default = (` });
        const end = source[statement.end - 1] === ";" ? statement.end - 1 : statement.end;
        edits.push({ start: end, end, text: ")" });
      }
    }
  }

  // Specifiers inside the body (dynamic imports) are rewritten in place.
  for (const edit of specifierEdits.values()) {
    if (!hoistedSpecifiers.has(edit.start)) edits.push(edit);
  }
  // Insertions at the same place keep their order (the sort is stable).
  edits.sort((a, b) => a.start - b.start);
  const parts: string[] = [];
  let cursor = 0;
  for (const edit of edits) {
    parts.push(source.slice(cursor, edit.start), edit.text);
    cursor = edit.end;
  }
  parts.push(source.slice(cursor));
  const body = parts.join("");
  // `process.getBuiltinModule("fs")`, `createRequire` and a computed `import()` must find the
  // sandbox's modules: load them up front. `process.chdir` checks the path in the filesystem.
  if (source.includes("getBuiltinModule") || source.includes("createRequire") || computedImport) {
    // Not the modules whose loading warns, as Node's do (node:sys's builtin is util's).
    const upFront = new Set(Object.values(SHIMMED_SPECIFIERS).filter((module) => !WARN_ON_LOAD.has(module)));
    hoisted.push(...[...upFront].map((module) => `import ${JSON.stringify(module)};`));
  } else if (source.includes("chdir") || fileImport) {
    hoisted.push(`import ${JSON.stringify(SHIMMED_SPECIFIERS.fs)};`);
  }
  if (source.includes("matchesGlob")) hoisted.push(`import ${JSON.stringify(PATH_MODULE)};`);
  // Everything added sits on line 1 ahead of the guest's own first line.
  const parameters = `${IMPORT_FUNCTION}, ${IMPORT_META}, ${PROVIDED_FUNCTION}`;
  return `${hoisted.join(" ")} export const ${EXPORTS_OBJECT} = {}; export default async function ${MAIN_FUNCTION}(${parameters}) {${prefix.join(" ")}${body}\n}\n`;
}

/** `import a, { b as c } from "node:process"` → `const a = …default; const { b: c } = …;` */
function providedBindings(statement: Node, specifier: string): string[] {
  const node = statement as ImportNode;
  const namespace = `${PROVIDED_FUNCTION}(${JSON.stringify(specifier)})`;
  const bindings: string[] = [];
  const named: string[] = [];
  for (const part of node.specifiers) {
    if (part.type === "ImportDefaultSpecifier") bindings.push(`const ${part.local.name} = ${namespace}.default;`);
    else if (part.type === "ImportNamespaceSpecifier") bindings.push(`const ${part.local.name} = ${namespace};`);
    else {
      const imported = part.imported!;
      const key = imported.name !== undefined ? imported.name : JSON.stringify(imported.value);
      named.push(`${key}: ${part.local.name}`);
    }
  }
  if (named.length > 0) bindings.push(`const { ${named.join(", ")} } = ${namespace};`);
  return bindings;
}

type ImportNode = Node & {
  specifiers: (Node & { type: string; local: Node & { name: string }; imported?: Node & { name?: string; value?: unknown } })[];
  source: Node;
  attributes?: (Node & { key: Node & { name?: string; value?: unknown }; value: Node & { value?: unknown } })[];
};

/**
 * An import statement rebuilt from its syntax tree, on one line and without the guest's
 * comments: a `//` comment kept from a multi-line import would swallow the wrapper after it.
 */
function regenerateImport(statement: Node, rewrite: (literal: Node) => string): string {
  const node = statement as ImportNode;
  const name = (part: Node & { name?: string; value?: unknown }) => (part.name !== undefined ? part.name : JSON.stringify(part.value));
  const defaults: string[] = [];
  const named: string[] = [];
  for (const specifier of node.specifiers) {
    if (specifier.type === "ImportDefaultSpecifier") defaults.push(specifier.local.name);
    else if (specifier.type === "ImportNamespaceSpecifier") defaults.push(`* as ${specifier.local.name}`);
    else named.push(`${name(specifier.imported!)} as ${specifier.local.name}`);
  }
  const clauses = [...defaults, ...(named.length > 0 ? [`{ ${named.join(", ")} }`] : [])];
  const attributes =
    node.attributes && node.attributes.length > 0
      ? ` with { ${node.attributes.map((a) => `${name(a.key)}: ${JSON.stringify(a.value.value)}`).join(", ")} }`
      : "";
  const from = rewrite(node.source);
  return clauses.length > 0 ? `import ${clauses.join(", ")} from ${from}${attributes};` : `import ${from}${attributes};`;
}
