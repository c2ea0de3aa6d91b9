import type { ConformanceCase } from "../types.js";

export const title = "async_hooks";
export default [
  { name: "async_hooks: AsyncLocalStorage across await", code: `import { AsyncLocalStorage } from "node:async_hooks";\nconst als = new AsyncLocalStorage(); await als.run({ id: 7 }, async () => { await new Promise((r) => setTimeout(r, 1)); console.log(als.getStore().id); }); console.log(als.getStore());` },
  { name: "async_hooks: AsyncLocalStorage in callbacks", code: `import { AsyncLocalStorage } from "node:async_hooks";\nconst als = new AsyncLocalStorage(); als.run("ctx", () => { setTimeout(() => console.log("timeout", als.getStore()), 1); queueMicrotask(() => console.log("micro", als.getStore())); });` },
  { name: "async_hooks: AsyncResource runInAsyncScope", code: `import { AsyncResource } from "node:async_hooks";\nconst r = new AsyncResource("X"); console.log(r.runInAsyncScope((a, b) => a + b, null, 1, 2), typeof r.asyncId());` },
  { name: "async_hooks: enterWith and exit", code: `import { AsyncLocalStorage } from "node:async_hooks";\nconst als = new AsyncLocalStorage(); als.run(1, () => als.exit(() => console.log(als.getStore())));` },
  { name: "async_hooks: AsyncLocalStorage.bind and snapshot", code: `import { AsyncLocalStorage } from "node:async_hooks";\nconst als = new AsyncLocalStorage(); const f = als.run("bound", () => AsyncLocalStorage.bind(() => als.getStore())); console.log(f());` },
  { name: "async_hooks: createHook and executionAsyncId", code: `import { createHook, executionAsyncId } from "node:async_hooks";\nconsole.log(typeof createHook, typeof executionAsyncId());` },
] satisfies ConformanceCase[];
