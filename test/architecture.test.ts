// The layout's rules, checked on the import graph of the project's own modules: no import
// cycle, and the engine side of host/ never reaches up into the SDK surface (runtime/).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path);
    return /\.(ts|js)$/.test(entry) && !entry.endsWith(".d.ts") ? [path] : [];
  });
}

const files = ["runtime", "host", "worker-templates"].flatMap(sourceFiles);
const known = new Set(files);

const STATIC_IMPORT = /(?:^|\n)\s*(import|export)\s(type\s)?[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']/g;
const DYNAMIC_IMPORT = /import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

/** Relative imports of a module, as repo paths (".js" specifiers name ".ts" sources). */
function importsOf(file: string, withTypes: boolean): string[] {
  const source = readFileSync(join(root, file), "utf8");
  const specifiers = [
    ...[...source.matchAll(STATIC_IMPORT)].filter((match) => withTypes || match[2] === undefined).map((match) => match[3]!),
    ...[...source.matchAll(DYNAMIC_IMPORT)].map((match) => match[1]!),
  ];
  return specifiers
    .map((specifier) => relative(root, resolve(root, dirname(file), specifier)))
    .map((target) => (known.has(target) ? target : target.replace(/\.js$/, ".ts")))
    .filter((target) => known.has(target));
}

// Type-only imports vanish from the built code: they cannot form a cycle at run time, but
// they still count for which layer may know about which.
const graph = new Map(files.map((file) => [file, importsOf(file, false)]));
const graphWithTypes = new Map(files.map((file) => [file, importsOf(file, true)]));

const PACKAGE_IMPORT = /(?:^|\n)\s*(?:import|export)\s(?!type\s)[^;]*?from\s*["']((?:@[^/"']+\/)?[^./"'][^/"']*)[^"']*["']/g;

/** Packages (not node: builtins) that importing `entry` loads, with a module that imports each. */
function packagesLoadedBy(entry: string): Map<string, string> {
  const loaded = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const match of readFileSync(join(root, file), "utf8").matchAll(PACKAGE_IMPORT)) {
      if (!match[1]!.startsWith("node:") && !loaded.has(match[1]!)) loaded.set(match[1]!, file);
    }
    // Only static imports load with the entry; dynamic ones wait until used.
    for (const target of STATIC_TARGETS.get(file) ?? []) if (known.has(target)) visit(target);
  };
  visit(entry);
  return loaded;
}

const STATIC_TARGETS = new Map(
  files.map((file) => {
    const source = readFileSync(join(root, file), "utf8");
    const targets = [...source.matchAll(STATIC_IMPORT)]
      .filter((match) => match[2] === undefined)
      .map((match) => relative(root, resolve(root, dirname(file), match[3]!)))
      .map((target) => (known.has(target) ? target : target.replace(/\.js$/, ".ts")));
    return [file, new Set(targets)];
  }),
);

describe("layout", () => {
  it("loads no library with the SDK's entry that a first run does not need", () => {
    // Schemas, the HTTP stack, metrics, TypeScript stripping and Miniflare load when used:
    // each costs a fresh host tens of milliseconds or more (zod alone ~170 ms of module loading).
    expect(Object.fromEntries(packagesLoadedBy("runtime/index.ts"))).toEqual({});
  });

  it("has no import cycle at run time", () => {
    const state = new Map<string, "visiting" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].join(" → "));
        return;
      }
      state.set(file, "visiting");
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it("keeps the engine, compiler and capabilities below the SDK surface", () => {
    // Only the applications built on the SDK (the HTTP service and the CLI) import runtime/.
    const applications = /^host\/(service\/|mcp\/|cli\.ts$)/;
    const upward = [...graphWithTypes]
      .filter(([file]) => file.startsWith("host/") && !applications.test(file))
      .flatMap(([file, targets]) => targets.filter((target) => target.startsWith("runtime/")).map((target) => `${file} → ${target}`));
    expect(upward).toEqual([]);
  });

  it("keeps code that runs inside workerd free of Node host modules", () => {
    const guestSide = [...graphWithTypes]
      .filter(([file]) => file.startsWith("worker-templates/") && !file.startsWith("worker-templates/edge/"))
      .flatMap(([file, targets]) => targets.filter((target) => !target.startsWith("worker-templates/")).map((target) => `${file} → ${target}`));
    expect(guestSide).toEqual([]);
  });
});

describe("worker templates", () => {
  // Every run hands workerd its modules as strings; one non-ASCII character makes V8 hold
  // the whole source as UTF-16, which each run then converts back to UTF-8 to compile.
  it("are plain ASCII (non-ASCII text is written as \\u escapes)", () => {
    const nonAscii = files
      .filter((file) => file.startsWith("worker-templates/") && file.endsWith(".js"))
      .flatMap((file) =>
        readFileSync(join(root, file), "utf8")
          .split("\n")
          .flatMap((line, index) => (/[^\x00-\x7f]/.test(line) ? [`${file}:${index + 1}`] : [])),
      );
    expect(nonAscii).toEqual([]);
  });
});
