// Loads every case file of cases/: `cases/<builtin>.ts` default-exports its cases and may
// export a `title` (the builtin's name in the compatibility doc).
import { readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join } from "node:path";
import type { ConformanceCase } from "./types.js";

const casesDir = fileURLToPath(new URL("./cases/", import.meta.url));

export interface CaseFile {
  builtin: string;
  title: string;
  cases: ConformanceCase[];
}

export async function loadCorpus(): Promise<CaseFile[]> {
  const files = readdirSync(casesDir).filter((name) => name.endsWith(".ts")).sort();
  const loaded: CaseFile[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(casesDir, file)).href)) as { default: ConformanceCase[]; title?: string };
    const builtin = file.replace(/\.ts$/, "");
    loaded.push({ builtin, title: module.title ?? builtin, cases: module.default });
  }
  const seen = new Set<string>();
  for (const file of loaded) {
    for (const testCase of file.cases) {
      if (seen.has(testCase.name)) throw new Error(`conformance case name used twice: ${testCase.name}`);
      seen.add(testCase.name);
    }
  }
  return loaded;
}
