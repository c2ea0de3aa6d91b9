import type { ConformanceCase } from "../types.js";

export const title = "querystring";
export default [
  { name: "querystring: parse", code: `import qs from "node:querystring";\nconsole.log(qs.parse("a=1&b=2&a=3&c=%20x"));` },
  { name: "querystring: stringify", code: `import qs from "node:querystring";\nconsole.log(qs.stringify({ a: [1, 2], b: "x y", c: "" }));` },
  { name: "querystring: custom separators", code: `import qs from "node:querystring";\nconsole.log(qs.parse("a:1;b:2", ";", ":"), qs.stringify({ a: 1, b: 2 }, ";", ":"));` },
  { name: "querystring: escape unescape", code: `import { escape, unescape } from "node:querystring";\nconsole.log(escape("a b&c"), unescape("a%20b"));` },
  { name: "querystring: encode decode aliases", code: `import qs from "node:querystring";\nconsole.log(qs.encode === qs.stringify, qs.decode === qs.parse);` },
  { name: "querystring: parse plus and arrays", code: `import qs from "node:querystring";\nconsole.log(qs.parse("a=1+2&a=3&b"), qs.stringify({ x: [1, 2], y: true, z: null }));` },
] satisfies ConformanceCase[];
