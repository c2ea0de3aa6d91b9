// `node:test` for guests: the runner needs its own process and reporter, which the sandbox
// does not have, so defining a test fails at once with a clear error. `mock` works.
import { refusing } from "./secure-exec-unsupported.js";
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:test");
const WHY = "use an assertion library with plain functions, or run the tests outside the sandbox";

export const test = refusing("node:test test()", WHY);
export const it = refusing("node:test it()", WHY);
export const describe = refusing("node:test describe()", WHY);
export const suite = refusing("node:test suite()", WHY);
export const before = refusing("node:test before()", WHY);
export const after = refusing("node:test after()", WHY);
export const beforeEach = refusing("node:test beforeEach()", WHY);
export const afterEach = refusing("node:test afterEach()", WHY);
export const run = refusing("node:test run()", WHY);
for (const fn of [test, it, describe, suite]) {
  fn.skip = fn;
  fn.todo = fn;
  fn.only = fn;
}
export const { mock, MockTracker, MockFunctionContext } = real;
Object.assign(test, { test, it, describe, suite, before, after, beforeEach, afterEach, run, mock });
for (const name of ["test", "node:test"]) sandboxBuiltins.set(name, test);
export default test;
