import type { ConformanceCase } from "../types.js";

export const title = "vm";
export default [
  { name: "vm: runInNewContext", code: `import vm from "node:vm";\nconsole.log(vm.runInNewContext("a + b", { a: 1, b: 2 }));` },
  { name: "vm: Script runInThisContext", code: `import vm from "node:vm";\nconsole.log(new vm.Script("6 * 7").runInThisContext());` },
  { name: "vm: createContext isolates globals", code: `import vm from "node:vm";\nconst ctx = vm.createContext({ x: 1 }); vm.runInContext("x += 1; y = 5", ctx); console.log(ctx.x, ctx.y, typeof globalThis.y);` },
  { name: "vm: syntax error in script", code: `import vm from "node:vm";\ntry { new vm.Script("let = ;") } catch (e) { console.log(e.name, e.message) }` },
  { name: "vm: isContext", code: `import vm from "node:vm";\nconsole.log(vm.isContext(vm.createContext()), vm.isContext({}));` },
  { name: "eval and Function", code: `console.log(eval("1 + 1"), new Function("a", "return a * 2")(4));` },
] satisfies ConformanceCase[];
