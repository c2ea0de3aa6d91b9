// Worker thread of host/engine/workerd-launcher.ts: Miniflare lives here while it builds a workerd
// configuration (about a second of synchronous work), so the host's event loop never stalls.
import { parentPort, workerData } from "node:worker_threads";
import { buildWorkerdConfig } from "./miniflare-adapter.js";
import { LAUNCH_THREAD_ROLE, type FromBuildThread, type ToBuildThread } from "./workerd-launcher.js";

const port = parentPort;
if (port && (workerData as { role?: unknown } | null)?.role === LAUNCH_THREAD_ROLE) {
  const send = (message: FromBuildThread, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
  port.on("message", (message: ToBuildThread) => {
    const { id } = message;
    buildWorkerdConfig(message.request).then(
      (built) => send({ type: "built", id, built }, [built.config.buffer as ArrayBuffer]),
      (error: unknown) => send({ type: "failed", id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
}
