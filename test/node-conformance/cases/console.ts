import type { ConformanceCase } from "../types.js";

export const title = "console";
export default [
  { name: "console: log format specifiers", code: `console.log("%s=%d %i %f %j %o %%", "a", 4.5, 4.5, 1.5, {x:1}, [1]);` },
  { name: "console: objects nested", code: `console.log({ a: { b: { c: { d: 1 } } }, arr: [1, [2, [3, [4]]]] });` },
  { name: "console: error and warn to stderr", code: `console.error("e"); console.warn("w"); console.log("o");` },
  { name: "console: table", code: `console.table([{ a: 1, b: "x" }, { a: 2, b: "y" }]);` },
  { name: "console: count", code: `console.count(); console.count(); console.count("x"); console.countReset(); console.count();` },
  { name: "console: group indents", code: `console.group("g"); console.log("inner"); console.group(); console.log("deeper"); console.groupEnd(); console.groupEnd(); console.log("outer");` },
  { name: "console: dir with depth", code: `console.dir({ a: { b: { c: { d: {} } } } }, { depth: 0 });` },
  { name: "console: assert prints to stderr", code: `console.assert(1 === 2, "not equal"); console.assert(true, "fine"); console.log("done");` },
  { name: "console: timeEnd prints label", code: `const write = process.stdout.write.bind(process.stdout); let seen = "";\nprocess.stdout.write = (chunk) => { seen += chunk; return true; };\nconsole.time("t"); console.timeEnd("t"); console.timeLog("missing");\nprocess.stdout.write = write;\nconsole.log(JSON.stringify(seen.replace(/[0-9.]+ms/, "Nms")));`, note: "the timing is replaced by N" },
  { name: "console: Console class", code: `import { Console } from "node:console";\nconst c = new Console({ stdout: process.stdout, stderr: process.stderr });\nc.log("from Console");` },
  { name: "console: log of class instance and Map", code: `class P { constructor() { this.x = 1 } }\nconsole.log(new P(), new Map([["k", 1]]), new Set([1, 2]));` },
  { name: "console: log symbols and bigints", code: `console.log(Symbol("s"), 10n, [undefined, null], -0);` },
  { name: "console: log errors inside objects", code: `const e = new Error("inner"); e.stack = "Error: inner"; console.log({ e });` },
] satisfies ConformanceCase[];
