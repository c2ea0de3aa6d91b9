// `node:worker_threads` for guests: this is the main thread and there are no others
// (a Worker fails at once with a clear error); message ports have Node's on/once/off.
import { refusing } from "./secure-exec-unsupported.js";
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:worker_threads");

// Node's MessagePort is an EventEmitter too: `port.on("message", (data) => ...)`.
const portPrototype = real.MessagePort?.prototype ?? globalThis.MessagePort?.prototype;
if (portPrototype && typeof portPrototype.on !== "function") {
  const wrappers = new WeakMap();
  const wrapperOf = (event, listener, once) => {
    let byEvent = wrappers.get(listener);
    if (!byEvent) wrappers.set(listener, (byEvent = new Map()));
    const wrapper = (message) => listener(event === "message" || event === "messageerror" ? message.data : message);
    byEvent.set(event, { wrapper, once });
    return wrapper;
  };
  const define = (name, value) => Object.defineProperty(portPrototype, name, { value, configurable: true, writable: true });
  define("on", function (event, listener) {
    this.addEventListener(event, wrapperOf(event, listener, false));
    this.start?.();
    return this;
  });
  define("addListener", portPrototype.on);
  define("once", function (event, listener) {
    this.addEventListener(event, wrapperOf(event, listener, true), { once: true });
    this.start?.();
    return this;
  });
  define("off", function (event, listener) {
    const entry = wrappers.get(listener)?.get(event);
    if (entry) this.removeEventListener(event, entry.wrapper);
    return this;
  });
  define("removeListener", portPrototype.off);
  define("ref", function () {
    return this;
  });
  define("unref", function () {
    return this;
  });
}

export class Worker {
  constructor() {
    refusing("worker_threads.Worker", "guests run in one isolate with no threads; use async code or child_process")();
  }
}
export const {
  BroadcastChannel, MessageChannel, MessagePort, SHARE_ENV, getEnvironmentData, isInternalThread, isMainThread,
  isMarkedAsUntransferable, markAsUncloneable, markAsUntransferable, moveMessagePortToContext, parentPort,
  postMessageToThread, receiveMessageOnPort, resourceLimits, setEnvironmentData, threadId, workerData,
} = real;
const workerThreadsModule = { ...real, Worker };
for (const name of ["worker_threads", "node:worker_threads"]) sandboxBuiltins.set(name, workerThreadsModule);
export default workerThreadsModule;
