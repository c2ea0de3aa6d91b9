// Worker thread of host/compile/package-bundles.ts: resolves guests' package specifiers and bundles
// package graphs (reading and parsing up to 64 MiB) off the host's event loop.
import { parentPort } from "node:worker_threads";
import { runBundleJob, type BundleJob } from "./node-modules.js";

parentPort?.on("message", (job: BundleJob) => {
  parentPort!.postMessage(runBundleJob(job));
});
