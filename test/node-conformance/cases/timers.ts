import type { ConformanceCase } from "../types.js";

export const title = "timers";
export default [
  { name: "timers: setTimeout order", code: `setTimeout(() => console.log("b"), 20); setTimeout(() => console.log("a"), 5);` },
  { name: "timers: setTimeout args", code: `setTimeout((x, y) => console.log(x, y), 1, "p", 2);` },
  { name: "timers: clearTimeout", code: `const t = setTimeout(() => console.log("never"), 10); clearTimeout(t); console.log("cleared");` },
  { name: "timers: clearTimeout by numeric id", code: `const t = setTimeout(() => console.log("never"), 10); clearTimeout(+t); console.log("cleared", typeof +t);` },
  { name: "timers: setInterval cleared after three", code: `let n = 0; const t = setInterval(() => { console.log(++n); if (n === 3) clearInterval(t); }, 2);` },
  { name: "timers: setInterval 0 is held to 1ms", code: `let n = 0; const t = setInterval(() => n++, 0); setTimeout(() => { clearInterval(t); console.log(n < 200); }, 50);` },
  { name: "timers: setImmediate before timeout in I/O free run", code: `setImmediate(() => console.log("immediate")); process.nextTick(() => console.log("tick"));` },
  { name: "timers: unref timer does not hold", code: `setTimeout(() => console.log("never"), 5000).unref(); console.log("done");` },
  { name: "timers: ref hasRef refresh", code: `const t = setTimeout(() => console.log("fired"), 5); console.log(t.hasRef(), t.unref().hasRef(), t.ref().hasRef(), typeof t.refresh);` },
  { name: "timers: node:timers setTimeout keeps run alive", code: `import { setTimeout as st } from "node:timers";\nst(() => console.log("late"), 20);` },
  { name: "timers: node:timers setInterval", code: `import { setInterval as si, clearInterval as ci } from "node:timers";\nlet n = 0; const t = si(() => { if (++n === 2) { ci(t); console.log("two"); } }, 2);` },
  { name: "timers/promises: setTimeout value", code: `import { setTimeout as sleep } from "node:timers/promises";\nconsole.log(await sleep(20, "v"));` },
  { name: "timers/promises: setImmediate", code: `import { setImmediate } from "node:timers/promises";\nconsole.log(await setImmediate("imm"));` },
  { name: "timers/promises: setInterval iterator", code: `import { setInterval } from "node:timers/promises";\nlet n = 0; for await (const v of setInterval(2, "x")) { if (++n === 3) break; }\nconsole.log(n);` },
  { name: "timers/promises: abort", code: `import { setTimeout as sleep } from "node:timers/promises";\nconst ac = new AbortController(); const p = sleep(1000, null, { signal: ac.signal }); ac.abort();\ntry { await p } catch (e) { console.log(e.name, e.code) }` },
  { name: "timers/promises: scheduler.wait", code: `import { scheduler } from "node:timers/promises";\nawait scheduler.wait(5); console.log("waited");` },
  { name: "timers: promisify setTimeout", code: `import { promisify } from "node:util";\nconst sleep = promisify(setTimeout); console.log(await sleep(5, "ok"));` },
  { name: "timers: promisify setImmediate", code: `import { promisify } from "node:util";\nconsole.log(await promisify(setImmediate)("imm"));` },
  { name: "timers: thrown in timer exits 1", code: `setTimeout(() => { throw new RangeError("late") }, 1);` },
  { name: "timers: timeout object to primitive", code: `const t = setTimeout(() => {}, 1); console.log(typeof t[Symbol.toPrimitive], Number.isInteger(+t)); clearTimeout(t);` },
  { name: "timers: queueMicrotask order", code: `setTimeout(() => console.log("timeout"), 0); queueMicrotask(() => console.log("micro")); console.log("sync");` },
] satisfies ConformanceCase[];
