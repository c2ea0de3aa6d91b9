// `node:diagnostics_channel` for guests: workerd's, with Node's `channel.hasSubscribers`
// (a getter there, a method here) and unsubscribe() answering whether it removed one.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:diagnostics_channel");
const prototype = Object.getPrototypeOf(real.channel("secure-exec:probe"));
const descriptor = Object.getOwnPropertyDescriptor(prototype, "hasSubscribers");
if (descriptor && typeof descriptor.value === "function") {
  const hasSubscribers = descriptor.value;
  Object.defineProperty(prototype, "hasSubscribers", { configurable: true, get() { return Boolean(hasSubscribers.call(this)); } });
}
const channelUnsubscribe = prototype.unsubscribe;
const subscribers = new WeakMap();
const channelSubscribe = prototype.subscribe;
prototype.subscribe = function (listener) {
  if (!subscribers.has(this)) subscribers.set(this, new Set());
  subscribers.get(this).add(listener);
  return channelSubscribe.call(this, listener);
};
prototype.unsubscribe = function (listener) {
  const had = subscribers.get(this)?.delete(listener) ?? false;
  channelUnsubscribe.call(this, listener);
  return had;
};

export function subscribe(name, listener) {
  real.channel(name).subscribe(listener);
}

export function unsubscribe(name, listener) {
  return real.channel(name).unsubscribe(listener);
}

export * from "node:diagnostics_channel";
const diagnosticsChannelModule = { ...real, subscribe, unsubscribe };
export default diagnosticsChannelModule;
for (const name of ["diagnostics_channel", "node:diagnostics_channel"]) sandboxBuiltins.set(name, diagnosticsChannelModule);
