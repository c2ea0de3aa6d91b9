import type { ConformanceCase } from "../types.js";

export const title = "assert";
export default [
  { name: "assert: ok and equal pass", code: `import assert from "node:assert";\nassert.ok(1); assert.equal(1, "1"); assert.strictEqual(2, 2); console.log("passed");` },
  { name: "assert: strictEqual failure code", code: `import assert from "node:assert";\ntry { assert.strictEqual(1, 2) } catch (e) { console.log(e.name, e.code, e.actual, e.expected, e.operator) }` },
  { name: "assert: deepStrictEqual objects", code: `import assert from "node:assert/strict";\nassert.deepStrictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }); try { assert.deepStrictEqual({ a: 1 }, { a: "1" }) } catch (e) { console.log(e.code) }` },
  { name: "assert: throws with matcher", code: `import assert from "node:assert";\nassert.throws(() => { throw new TypeError("bad") }, TypeError); assert.throws(() => { throw new Error("msg x") }, /msg/); console.log("ok");` },
  { name: "assert: rejects", code: `import assert from "node:assert";\nawait assert.rejects(Promise.reject(new Error("r")), { message: "r" }); console.log("rejected ok");` },
  { name: "assert: doesNotThrow", code: `import assert from "node:assert";\nassert.doesNotThrow(() => 1); console.log("fine");` },
  { name: "assert: match", code: `import assert from "node:assert";\nassert.match("abc", /b/); try { assert.match("abc", /z/) } catch (e) { console.log(e.code) }` },
  { name: "assert: uncaught assertion exits 1", code: `import assert from "node:assert";\nassert.strictEqual("a", "b");` },
  { name: "assert: fail", code: `import assert from "node:assert";\ntry { assert.fail("boom") } catch (e) { console.log(e.message, e.code) }` },
  { name: "assert: notDeepStrictEqual", code: `import assert from "node:assert";\nassert.notDeepStrictEqual([1], [2]); assert.notStrictEqual(1, 2); console.log("not equal ok");` },
  { name: "assert: loose deepEqual and notEqual", code: `import assert from "node:assert";\nassert.deepEqual({ a: [1, "2"] }, { a: ["1", 2] }); assert.notEqual(1, 2); try { assert.notEqual(1, "1") } catch (e) { console.log(e.code, e.operator) } try { assert.deepEqual({ a: 1 }, { a: 2 }) } catch (e) { console.log(e.code, e.operator) }\nconsole.log("loose ok");` },
  { name: "assert: named imports", code: `import { strictEqual, deepStrictEqual, ok, equal } from "node:assert";\nok(true); equal(0, false); strictEqual(1, 1); deepStrictEqual([1], [1]); console.log("named ok");` },
  { name: "assert: AssertionError class", code: `import { AssertionError } from "node:assert";\nconst e = new AssertionError({ actual: 1, expected: 2, operator: "strictEqual" }); console.log(e.name, e.code, e instanceof Error);` },
  { name: "assert: deepEqual maps and sets", code: `import assert from "node:assert";\nassert.deepStrictEqual(new Map([[1, { a: 1 }]]), new Map([[1, { a: 1 }]])); assert.deepStrictEqual(new Set([1, 2]), new Set([2, 1])); console.log("collections equal");` },
] satisfies ConformanceCase[];
