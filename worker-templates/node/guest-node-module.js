// The guest's `node:module`: workerd's, except that `createRequire` hands out a `require`
// that refuses workerd's own modules (see guardNodeModule in guest-bridge.js).
import nativeModule from "node:module";
import { guardNodeModule, sandboxBuiltins } from "./secure-exec-bridge.js";

guardNodeModule(nativeModule);
export const createRequire = nativeModule.createRequire;
export * from "node:module";
export default nativeModule;
for (const name of ["module", "node:module"]) sandboxBuiltins.set(name, nativeModule);
