import type { ConformanceCase } from "../types.js";

export const title = "diagnostics_channel";
export default [
  { name: "diagnostics_channel: publish subscribe", code: `import dc from "node:diagnostics_channel";\nconst ch = dc.channel("my-ch"); dc.subscribe("my-ch", (msg, name) => console.log(name, msg)); console.log(ch.hasSubscribers); ch.publish({ k: 1 });` },
  { name: "diagnostics_channel: unsubscribe", code: `import dc from "node:diagnostics_channel";\nconst f = () => console.log("never"); dc.subscribe("c2", f); console.log(dc.unsubscribe("c2", f), dc.hasSubscribers("c2")); dc.channel("c2").publish(1);` },
  { name: "diagnostics_channel: channel.subscribe and hasSubscribers", code: `import dc from "node:diagnostics_channel";\nconst ch = dc.channel("c3"); const f = (m) => console.log("got", m); console.log(ch.hasSubscribers); ch.subscribe(f); console.log(ch.hasSubscribers); ch.publish(1); console.log(ch.unsubscribe(f), ch.unsubscribe(f), ch.hasSubscribers);` },
  { name: "diagnostics_channel: tracingChannel", code: `import dc from "node:diagnostics_channel";\nconst tc = dc.tracingChannel("op"); tc.subscribe({ start: () => console.log("start"), end: () => console.log("end"), asyncStart() {}, asyncEnd() {}, error() {} }); console.log(tc.traceSync(() => 5));` },
] satisfies ConformanceCase[];
