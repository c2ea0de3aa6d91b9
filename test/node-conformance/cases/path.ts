import type { ConformanceCase } from "../types.js";

export const title = "path";
export default [
  { name: "path: join and normalize", code: `import path from "node:path";\nconsole.log(path.join("/a/b", "../c", "./d"), path.normalize("/x//y/../z/"));` },
  { name: "path: resolve of absolute parts", code: `import path from "node:path";\nconsole.log(path.resolve("/a", "b", "../c"));` },
  { name: "path: resolve relative uses cwd", code: `import path from "node:path";\nconsole.log(path.resolve("x") === path.join(process.cwd(), "x"));` },
  { name: "path: parse and format", code: `import path from "node:path";\nconst p = path.parse("/home/u/file.tar.gz");\nconsole.log(JSON.stringify(p), path.format(p));` },
  { name: "path: basename extname dirname", code: `import { basename, extname, dirname } from "node:path";\nconsole.log(basename("/a/b.txt", ".txt"), extname("x.y.z"), extname(".bashrc"), dirname("/a/b/c"));` },
  { name: "path: relative", code: `import path from "node:path";\nconsole.log(path.relative("/data/a/b", "/data/c/d"), path.relative("/a", "/a"));` },
  { name: "path: isAbsolute and sep", code: `import path from "node:path";\nconsole.log(path.isAbsolute("/x"), path.isAbsolute("x"), path.sep, path.delimiter);` },
  { name: "path: win32 join", code: `import path from "node:path";\nconsole.log(path.win32.join("C:\\\\a", "b", "..", "c"), path.win32.basename("C:\\\\x\\\\y.txt"));` },
  { name: "path: posix namespace", code: `import path from "node:path";\nconsole.log(path.posix === path, typeof path.posix.join);` },
  { name: "path: join with non-string throws", code: `import path from "node:path";\ntry { path.join("a", 1) } catch (e) { console.log(e.name, e.code) }` },
  { name: "path: toNamespacedPath on posix", code: `import path from "node:path";\nconsole.log(path.toNamespacedPath("/a/b"));` },
  { name: "path: matchesGlob", code: `import path from "node:path";\nconsole.log(["src/a.js", "src/x/b.ts", ".hidden/c.js", "a.js"].map((p) => path.matchesGlob(p, "**/*.{js,ts}")), path.matchesGlob("a/b", "a/?"), path.matchesGlob("x.md", "[!a]*.md"));`, node22: { stdout: "[ true, true, false, true ] true true\n", reason: "path.matchesGlob arrived in Node 22.5" } },
  { name: "path: relative of relative paths uses cwd", code: `import path from "node:path";\nconsole.log(path.relative("a/b", "a/c"), path.relative(process.cwd(), "x"), path.relative("x", process.cwd()));` },
  { name: "path: path/posix module", code: `import posix from "node:path/posix"; import path from "node:path";\nconsole.log(posix.join("a", "b"), posix === path.posix);` },
  { name: "path: matchesGlob exists", code: `import path from "node:path";\nconsole.log(typeof path.matchesGlob);`, node22: { stdout: "function\n", reason: "path.matchesGlob was added in Node 22.5" } },
] satisfies ConformanceCase[];
