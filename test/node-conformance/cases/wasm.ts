import type { ConformanceCase } from "../types.js";

// The smallest module exporting add(i32, i32) -> i32.
const ADD_WASM = "AGFzbQEAAAABBwFgAn9/AX8DAgEABwcBA2FkZAAACgkBBwAgACABags=";

export const title = "WebAssembly";
export default [
  { name: "wasm: WebAssembly global", code: `console.log(typeof WebAssembly, typeof WebAssembly.instantiate, typeof WebAssembly.Memory);` },
  { name: "wasm: validate bytes", code: `console.log(WebAssembly.validate(Buffer.from("${ADD_WASM}", "base64")), WebAssembly.validate(new Uint8Array([1, 2])));` },
  { name: "wasm: instantiate bytes", code: `const { instance } = await WebAssembly.instantiate(Buffer.from("${ADD_WASM}", "base64")); console.log(instance.exports.add(2, 3));` },
  { name: "wasm: compile then Instance", code: `const m = await WebAssembly.compile(Buffer.from("${ADD_WASM}", "base64")); console.log(WebAssembly.Module.exports(m), new WebAssembly.Instance(m).exports.add(1, 1));` },
  { name: "wasm: Memory grow", code: `const mem = new WebAssembly.Memory({ initial: 1 }); mem.grow(1); console.log(mem.buffer.byteLength);` },
] satisfies ConformanceCase[];
