import type { ConformanceCase } from "../types.js";

export const title = "v8";
export default [
  { name: "v8: serialize deserialize", code: `import v8 from "node:v8";\nconst b = v8.serialize({ a: [1, 2], m: new Map([[1, 2]]) }); console.log(Buffer.isBuffer(b), v8.deserialize(b));` },
  { name: "v8: getHeapStatistics", code: `import v8 from "node:v8";\nconst h = v8.getHeapStatistics(); console.log(h.total_heap_size > 0, h.heap_size_limit > 0);` },
  { name: "v8: cachedDataVersionTag", code: `import v8 from "node:v8";\nconsole.log(typeof v8.cachedDataVersionTag());` },
  { name: "v8: setFlagsFromString exists", code: `import v8 from "node:v8";\nconsole.log(typeof v8.setFlagsFromString, typeof v8.getHeapSpaceStatistics);` },
] satisfies ConformanceCase[];
