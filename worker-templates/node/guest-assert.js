// `node:assert` for guests: workerd's, except that the legacy (loose) assertions compare as
// Node's do: equal/notEqual with ==, deepEqual/notDeepEqual loosely (workerd's are strict).
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:assert");
const { AssertionError } = real;

function isLooseDeepEqual(actual, expected, seen = new Map()) {
  if (actual == expected) return true;
  if (typeof actual !== "object" || typeof expected !== "object" || actual === null || expected === null) {
    return Number.isNaN(actual) && Number.isNaN(expected);
  }
  if (seen.get(actual) === expected) return true;
  seen.set(actual, expected);
  if (actual instanceof Date && expected instanceof Date) return actual.getTime() === expected.getTime();
  if (actual instanceof RegExp && expected instanceof RegExp) return String(actual) === String(expected);
  if (ArrayBuffer.isView(actual) && ArrayBuffer.isView(expected)) {
    if (actual.byteLength !== expected.byteLength) return false;
    const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
    const b = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
    return a.every((byte, index) => byte === b[index]);
  }
  if (actual instanceof Map && expected instanceof Map) {
    if (actual.size !== expected.size) return false;
    for (const [key, value] of actual) if (!expected.has(key) || !isLooseDeepEqual(value, expected.get(key), seen)) return false;
    return true;
  }
  if (actual instanceof Set && expected instanceof Set) {
    if (actual.size !== expected.size) return false;
    for (const value of actual) if (!expected.has(value) && ![...expected].some((other) => isLooseDeepEqual(value, other, seen))) return false;
    return true;
  }
  if (Array.isArray(actual) !== Array.isArray(expected)) return false;
  const keys = Object.keys(actual);
  if (keys.length !== Object.keys(expected).length) return false;
  return keys.every((key) => Object.prototype.hasOwnProperty.call(expected, key) && isLooseDeepEqual(actual[key], expected[key], seen));
}

function fail(actual, expected, message, operator, stackStartFn) {
  if (message instanceof Error) throw message;
  throw new AssertionError({ actual, expected, message, operator, stackStartFn });
}

export function equal(actual, expected, message) {
  if (!(actual == expected || (Number.isNaN(actual) && Number.isNaN(expected)))) fail(actual, expected, message, "==", equal);
}

export function notEqual(actual, expected, message) {
  if (actual == expected || (Number.isNaN(actual) && Number.isNaN(expected))) fail(actual, expected, message, "!=", notEqual);
}

export function deepEqual(actual, expected, message) {
  if (!isLooseDeepEqual(actual, expected)) fail(actual, expected, message, "deepEqual", deepEqual);
}

export function notDeepEqual(actual, expected, message) {
  if (isLooseDeepEqual(actual, expected)) fail(actual, expected, message, "notDeepEqual", notDeepEqual);
}

function assert(...args) {
  return real.ok(...args);
}
Object.assign(assert, real, { equal, notEqual, deepEqual, notDeepEqual });

export * from "node:assert";
export default assert;
for (const name of ["assert", "node:assert"]) sandboxBuiltins.set(name, assert);
