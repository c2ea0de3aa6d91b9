import type { ConformanceCase } from "../types.js";

export const title = "events";
export default [
  { name: "events: on emit with args", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter(); e.on("x", (a, b) => console.log(a, b)); console.log(e.emit("x", 1, 2), e.emit("none"));` },
  { name: "events: once", code: `import EventEmitter from "node:events";\nconst e = new EventEmitter(); e.once("x", () => console.log("once")); e.emit("x"); e.emit("x"); console.log(e.listenerCount("x"));` },
  { name: "events: prepend and order", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter(); e.on("x", () => console.log(2)); e.prependListener("x", () => console.log(1)); e.emit("x");` },
  { name: "events: off and removeAllListeners", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter(); const f = () => console.log("f"); e.on("x", f); e.off("x", f); e.emit("x"); e.on("y", f); e.removeAllListeners(); console.log(e.eventNames());` },
  { name: "events: error without listener throws", code: `import { EventEmitter } from "node:events";\ntry { new EventEmitter().emit("error", new Error("unhandled ee")) } catch (e) { console.log(e.message) }` },
  { name: "events: error event uncaught exits 1", code: `import { EventEmitter } from "node:events";\nnew EventEmitter().emit("error", new Error("nobody listens"));` },
  { name: "events: events.once promise", code: `import { EventEmitter, once } from "node:events";\nconst e = new EventEmitter(); setTimeout(() => e.emit("ready", 42), 1); const [v] = await once(e, "ready"); console.log(v);` },
  { name: "events: on async iterator", code: `import { EventEmitter, on } from "node:events";\nconst e = new EventEmitter(); setTimeout(() => { e.emit("d", 1); e.emit("d", 2); }, 1);\nlet n = 0; for await (const [v] of on(e, "d")) { console.log(v); if (++n === 2) break; }` },
  { name: "events: max listeners warning on stderr", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter(); for (let i = 0; i < 11; i++) e.on("x", () => {}); console.log(e.listenerCount("x"));` },
  { name: "events: setMaxListeners and getMaxListeners", code: `import { EventEmitter, defaultMaxListeners } from "node:events";\nconst e = new EventEmitter(); e.setMaxListeners(3); console.log(e.getMaxListeners(), defaultMaxListeners);` },
  { name: "events: newListener event", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter(); e.on("newListener", (n) => console.log("new", n)); e.on("z", () => {});` },
  { name: "events: captureRejections", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter({ captureRejections: true }); e.on("x", async () => { throw new Error("rej") }); e.on("error", (err) => console.log("captured", err.message)); e.emit("x");` },
  { name: "events: EventTarget and Event", code: `const t = new EventTarget(); t.addEventListener("ping", (ev) => console.log(ev.type, ev instanceof Event), { once: true }); t.dispatchEvent(new Event("ping")); t.dispatchEvent(new Event("ping"));` },
  { name: "events: CustomEvent detail", code: `const t = new EventTarget(); t.addEventListener("c", (e) => console.log(e.detail)); t.dispatchEvent(new CustomEvent("c", { detail: { k: 1 } }));` },
  { name: "events: class extends EventEmitter", code: `import { EventEmitter } from "node:events";\nclass Job extends EventEmitter { run() { this.emit("done", "ok") } }\nconst j = new Job(); j.on("done", console.log); j.run();` },
  { name: "events: rawListeners and listeners", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter(); e.once("a", function f() {}); console.log(e.listeners("a").length, e.rawListeners("a")[0].name === "bound onceWrapper" || typeof e.rawListeners("a")[0].listener);` },
  { name: "events: getEventListeners", code: `import { getEventListeners, EventEmitter } from "node:events";\nconst e = new EventEmitter(); e.on("q", () => {}); console.log(getEventListeners(e, "q").length);` },
  { name: "events: AbortSignal listener", code: `const ac = new AbortController(); ac.signal.addEventListener("abort", () => console.log("aborted", ac.signal.reason.name)); ac.abort();` },
  { name: "events: once rejects on error event", code: `import { EventEmitter, once } from "node:events";\nconst e = new EventEmitter(); setTimeout(() => e.emit("error", new Error("bad")), 1); try { await once(e, "ready") } catch (err) { console.log("rejected", err.message) }` },
  { name: "events: listener this and arrow", code: `import { EventEmitter } from "node:events";\nconst e = new EventEmitter(); e.on("x", function () { console.log(this === e) }); e.on("x", () => console.log(typeof this)); e.emit("x");` },
  { name: "events: symbol event names", code: `import { EventEmitter } from "node:events";\nconst s = Symbol("evt"); const e = new EventEmitter(); e.on(s, (v) => console.log("sym", v)); e.emit(s, 1); console.log(e.eventNames());` },
] satisfies ConformanceCase[];
