// `node:vm` for guests: compiling source text is code generation, which guest isolates
// disallow, so every call that compiles fails at once with a clear error (workerd's Script
// accepts any text and fails only when run). Contexts are plain objects.
import { refusing } from "./secure-exec-unsupported.js";
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:vm");
const WHY = "code generation from strings is disabled in guest isolates";

export class Script {
  constructor() {
    refusing("vm.Script", WHY)();
  }
}
export const createScript = refusing("vm.createScript", WHY);
export const compileFunction = refusing("vm.compileFunction", WHY);
export const runInContext = refusing("vm.runInContext", WHY);
export const runInNewContext = refusing("vm.runInNewContext", WHY);
export const runInThisContext = refusing("vm.runInThisContext", WHY);
export const { createContext, isContext, constants, measureMemory } = real;
const vmModule = { ...real, Script, createScript, compileFunction, runInContext, runInNewContext, runInThisContext };
for (const name of ["vm", "node:vm"]) sandboxBuiltins.set(name, vmModule);
export default vmModule;
