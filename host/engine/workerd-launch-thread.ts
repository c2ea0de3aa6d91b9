// Worker thread of host/engine/workerd-launcher.ts: Miniflare lives here, so building a workerd
// configuration (~120 ms of synchronous work) never stalls the host's event loop.
import { parentPort, workerData } from "node:worker_threads";
import { launchStaticWorkerd, launchWorkerd, type WorkerdHandle } from "./miniflare-adapter.js";
import { LAUNCH_THREAD_ROLE, type FromLaunchThread, type LaunchRequest, type ToLaunchThread } from "./workerd-launcher.js";

function launchHere(request: LaunchRequest, onPid?: (pid: number) => void): Promise<WorkerdHandle> {
  return request.kind === "cell"
    ? launchWorkerd(request.hostAddress, request.launcher, onPid)
    : launchStaticWorkerd(request.options, request.launcher, onPid);
}

const port = parentPort;
if (port && (workerData as { role?: unknown } | null)?.role === LAUNCH_THREAD_ROLE) {
  const handles = new Map<number, WorkerdHandle>();
  const send = (message: FromLaunchThread): void => port.postMessage(message);
  port.on("message", (message: ToLaunchThread) => {
    if (message.type === "kill") {
      const handle = handles.get(message.id);
      handles.delete(message.id);
      void (handle ? handle.kill() : Promise.resolve()).finally(() => send({ type: "killed", id: message.id }));
      return;
    }
    const { id } = message;
    launchHere(message.request, (pid) => send({ type: "pid", id, pid })).then(
      (handle) => {
        handles.set(id, handle);
        void handle.exited.then((exit) => {
          handles.delete(id);
          send({ type: "exited", id, stderrTail: exit.stderrTail });
          // However the process ended, its Miniflare (server, pool, temp files) goes too.
          void handle.kill();
        });
        send({ type: "launched", id, pid: handle.pid, url: handle.url.href });
      },
      (error: unknown) => send({ type: "failed", id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
}
