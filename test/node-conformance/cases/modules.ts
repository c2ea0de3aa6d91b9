import type { ConformanceCase } from "../types.js";

export const title = "modules";
export default [
  { name: "modules: import.meta.url is a file URL", code: `console.log(import.meta.url.startsWith("file:///"), import.meta.url.endsWith(".js"));` },
  { name: "modules: import.meta.dirname and filename", code: `console.log(typeof import.meta.dirname, typeof import.meta.filename);`, node22: { stdout: "string string\n", reason: "import.meta.dirname/filename arrived in Node 20.11; pinned for 22" } },
  { name: "modules: new URL relative to import.meta.url", code: `console.log(new URL("./x.txt", import.meta.url).pathname.endsWith("/x.txt"));` },
  { name: "modules: fileURLToPath(import.meta.url)", code: `import { fileURLToPath } from "node:url"; import { dirname } from "node:path";\nconsole.log(dirname(fileURLToPath(import.meta.url)) === process.cwd());` },
  { name: "modules: createRequire loads a builtin", code: `import { createRequire } from "node:module";\nconst require = createRequire(import.meta.url); console.log(require("node:path").join("a", "b"));` },
  { name: "modules: dynamic import of builtin", code: `const { join } = await import("node:path"); console.log(join("x", "y"));` },
  { name: "modules: optional import caught", code: `let found = true; try { await import("optional-pkg-that-is-missing") } catch (e) { found = false; console.log(e.code) }\nconsole.log(found);` },
  { name: "modules: computed specifier of fs", code: `const fs = await import(["node", "fs"].join(":"));\nfs.writeFileSync("c.txt", "ok"); console.log(fs.readFileSync("c.txt", "utf8"));` },
  { name: "modules: missing builtin is an error", code: `import x from "node:does-not-exist";` },
  { name: "modules: builtinModules lists fs", code: `import { builtinModules, isBuiltin } from "node:module";\nconsole.log(builtinModules.includes("fs"), isBuiltin("node:path"), isBuiltin("nope"));` },
  { name: "modules: require is not defined in ESM", code: `console.log(typeof require, typeof module, typeof __filename);` },
  { name: "modules: top-level await", code: `const v = await new Promise((r) => setTimeout(() => r(42), 5)); console.log(v);` },
  { name: "modules: unsettled top-level await exits 13", code: `await new Promise(() => {});`, node22: { stdout: "", stderrClass: "output", exitCode: 13, reason: "Node 22 warns \"Detected unsettled top-level await\" on stderr; Node 20 exits 13 silently" } },
  { name: "modules: syntax error", code: `let x = ;` },
  { name: "modules: export declarations are allowed", code: `export const a = 1; export function f() { return 2 }\nconsole.log(a + f());` },
  { name: "modules: import json with attributes", code: `import fs from "node:fs";\nfs.writeFileSync("d.json", '{"k":3}'); const m = await import("./d.json", { with: { type: "json" } }); console.log(m.default.k);` },
] satisfies ConformanceCase[];
