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

/** Relative imports of a module, as repo paths (".js" specifiers name ".ts" sources). */
function importsOf(file: string): string[] {
  const source = readFileSync(join(root, file), "utf8");
  const specifiers = [...source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)]
    .map((match) => match[1] ?? match[2])
    .filter((specifier): specifier is string => specifier !== undefined);
  return specifiers
    .map((specifier) => relative(root, resolve(root, dirname(file), specifier)))
    .map((target) => (known.has(target) ? target : target.replace(/\.js$/, ".ts")))
    .filter((target) => known.has(target));
}

const graph = new Map(files.map((file) => [file, importsOf(file)]));

describe("layout", () => {
  it("has no import cycle", () => {
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
    const upward = [...graph]
      .filter(([file]) => file.startsWith("host/") && !applications.test(file))
      .flatMap(([file, targets]) => targets.filter((target) => target.startsWith("runtime/")).map((target) => `${file} → ${target}`));
    expect(upward).toEqual([]);
  });

  it("keeps code that runs inside workerd free of Node host modules", () => {
    const guestSide = [...graph]
      .filter(([file]) => file.startsWith("worker-templates/") && !file.startsWith("worker-templates/edge/"))
      .flatMap(([file, targets]) => targets.filter((target) => !target.startsWith("worker-templates/")).map((target) => `${file} → ${target}`));
    expect(guestSide).toEqual([]);
  });
});
