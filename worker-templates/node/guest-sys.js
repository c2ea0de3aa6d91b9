// `node:sys`: the sandbox's node:util under its deprecated name, which warns (DEP0025) when
// first loaded, as Node does.
import { bridge } from "./secure-exec-bridge.js";
import util from "./secure-exec-util.js";

bridge.afterLoad.push(() => process.emitWarning("sys is deprecated. Use util instead.", "DeprecationWarning", "DEP0025"));

export * from "./secure-exec-util.js";
export default util;
