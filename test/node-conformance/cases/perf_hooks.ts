import type { ConformanceCase } from "../types.js";

export const title = "perf_hooks";
export default [
  { name: "perf_hooks: mark and measure", code: `import { performance } from "node:perf_hooks";\nperformance.mark("a"); performance.mark("b"); const m = performance.measure("a-b", "a", "b"); console.log(m.name, m.entryType, m.duration >= 0, performance.getEntriesByName("a").length);` },
  { name: "perf_hooks: PerformanceObserver fires", code: `import { PerformanceObserver, performance } from "node:perf_hooks";\nconst obs = new PerformanceObserver((list) => { console.log(list.getEntries().map((e) => e.name)); obs.disconnect(); }); obs.observe({ entryTypes: ["mark"] }); performance.mark("observed");` },
  { name: "perf_hooks: observer of measures with the global performance", code: `import { PerformanceObserver } from "node:perf_hooks";\nconst seen = []; const obs = new PerformanceObserver((list) => { for (const e of list.getEntriesByType("measure")) seen.push(e.name); if (seen.length === 2) { console.log(seen); obs.disconnect(); } });\nobs.observe({ type: "measure" }); performance.mark("s"); performance.measure("one", "s"); performance.measure("two", "s");` },
  { name: "perf_hooks: supportedEntryTypes has mark", code: `import { PerformanceObserver } from "node:perf_hooks";\nconsole.log(PerformanceObserver.supportedEntryTypes.includes("mark"), PerformanceObserver.supportedEntryTypes.includes("measure"));` },
  { name: "perf_hooks: timerify", code: `import { performance } from "node:perf_hooks";\nconst f = performance.timerify(function add(a, b) { return a + b }); console.log(f(1, 2));` },
  { name: "perf_hooks: monitorEventLoopDelay", code: `import { monitorEventLoopDelay } from "node:perf_hooks";\nconst h = monitorEventLoopDelay(); h.enable(); h.disable(); console.log(typeof h.mean);` },
  { name: "perf_hooks: clearMarks", code: `import { performance } from "node:perf_hooks";\nperformance.mark("x"); performance.clearMarks(); console.log(performance.getEntriesByType("mark").length);` },
  { name: "perf_hooks: eventLoopUtilization", code: `import { performance } from "node:perf_hooks";\nconst e = performance.eventLoopUtilization(); console.log(typeof e.utilization, typeof e.idle);` },
] satisfies ConformanceCase[];
