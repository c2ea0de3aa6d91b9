// `node:http` for guests: the real module, with `createServer().listen(port)` reachable
// from the host through `rt.fetch(port, …)` (no socket is opened anywhere).
const realHttp = process.getBuiltinModule("node:http");

let bridge;

export function install(runBridge) {
  bridge = runBridge;
}

export * from "node:http";
export default realHttp;
