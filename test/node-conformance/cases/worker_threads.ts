import type { ConformanceCase } from "../types.js";

export const title = "worker_threads";
export default [
  { name: "worker_threads: isMainThread", code: `import { isMainThread, threadId, parentPort, workerData } from "node:worker_threads";\nconsole.log(isMainThread, threadId, parentPort, workerData);` },
  { name: "worker_threads: Worker with eval", code: `import { Worker } from "node:worker_threads";\nconst w = new Worker("require('node:worker_threads').parentPort.postMessage(21 * 2)", { eval: true });\nw.on("message", (m) => { console.log("from worker", m); w.terminate(); });` },
  { name: "worker_threads: MessageChannel from module", code: `import { MessageChannel } from "node:worker_threads";\nconst { port1, port2 } = new MessageChannel(); port2.on("message", (m) => { console.log(m); port2.close(); }); port1.postMessage("wt");` },
  { name: "worker_threads: port once and off", code: `import { MessageChannel } from "node:worker_threads";\nconst { port1, port2 } = new MessageChannel(); const never = () => console.log("never"); port2.on("message", never); port2.off("message", never); port2.once("message", (m) => { console.log("once", m.n); port1.close(); }); port1.postMessage({ n: 1 });` },
  { name: "worker_threads: Worker of a file", code: `import { Worker } from "node:worker_threads"; import fs from "node:fs";\nfs.writeFileSync("w.mjs", "import { parentPort } from 'node:worker_threads'; parentPort.postMessage('hi');"); const w = new Worker("./w.mjs"); w.on("message", (m) => { console.log(m); w.terminate(); });` },
  { name: "worker_threads: BroadcastChannel from module", code: `import { BroadcastChannel } from "node:worker_threads";\nconsole.log(typeof BroadcastChannel);` },
] satisfies ConformanceCase[];
