// `node:net` for guests: workerd's, where a failed connection's error has no code; here it
// has Node's (ECONNREFUSED, with syscall, address and port). The guest's loopback has no
// TCP listeners, so a connection there is refused at once.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:net");
const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "0.0.0.0", "::"]);

function connectTarget(args) {
  const [first, second] = args;
  if (first !== null && typeof first === "object") return { port: first.port, host: first.host ?? "localhost", path: first.path };
  return { port: first, host: typeof second === "string" ? second : "localhost" };
}

function refused(host, port) {
  const address = host === "localhost" ? "127.0.0.1" : host;
  const error = new Error(`connect ECONNREFUSED ${address}:${port}`);
  Object.assign(error, { errno: -111, code: "ECONNREFUSED", syscall: "connect", address, port: Number(port) });
  return error;
}

export function connect(...args) {
  const target = connectTarget(args);
  const socket = LOOPBACK.has(String(target.host)) && target.path === undefined
    ? new real.Socket()
    : real.connect(...args);
  // One 'error' per failed connection, as in Node.
  let errored = false;
  const emitOnce = socket.emit;
  socket.emit = function (event, ...rest) {
    if (event === "error") {
      if (errored) return false;
      errored = true;
    }
    return emitOnce.call(this, event, ...rest);
  };
  if (LOOPBACK.has(String(target.host)) && target.path === undefined) {
    const callback = args.find((arg) => typeof arg === "function");
    if (callback) socket.once("connect", callback);
    queueMicrotask(() => socket.destroy(refused(target.host, target.port)));
    return socket;
  }
  const emit = socket.emit;
  socket.emit = function (event, error, ...rest) {
    if (event === "error" && error && typeof error === "object" && error.code === undefined) {
      Object.assign(error, { code: "ECONNREFUSED", errno: -111, syscall: "connect", address: target.host, port: Number(target.port) });
    }
    return emit.call(this, event, error, ...rest);
  };
  return socket;
}
export const createConnection = connect;

export * from "node:net";
const netModule = { ...real, connect, createConnection };
export default netModule;
for (const name of ["net", "node:net"]) sandboxBuiltins.set(name, netModule);
