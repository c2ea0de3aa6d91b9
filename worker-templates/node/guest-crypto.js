// `node:crypto` for guests: workerd's, with the Node behaviour it lacks: a string given to
// cipher.update() without an input encoding is UTF-8, timingSafeEqual checks lengths with
// Node's error, and generateKeyPair takes its callback in place of the options.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:crypto");

function withUtf8Update(cipher) {
  const update = cipher.update;
  cipher.update = function (data, inputEncoding, outputEncoding) {
    if (typeof data === "string" && (inputEncoding === undefined || inputEncoding === null)) inputEncoding = "utf8";
    return outputEncoding === undefined ? update.call(this, data, inputEncoding) : update.call(this, data, inputEncoding, outputEncoding);
  };
  return cipher;
}

export function createCipheriv(...args) {
  return withUtf8Update(real.createCipheriv(...args));
}

export function createDecipheriv(...args) {
  return withUtf8Update(real.createDecipheriv(...args));
}

export function timingSafeEqual(a, b) {
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b) && a.byteLength !== b.byteLength) {
    const error = new RangeError("Input buffers must have the same byte length");
    error.code = "ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH";
    throw error;
  }
  return real.timingSafeEqual(a, b);
}

export function generateKeyPair(type, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  return real.generateKeyPair(type, options ?? {}, callback);
}
generateKeyPair[Symbol.for("nodejs.util.promisify.custom")] = (type, options) =>
  new Promise((resolve, reject) =>
    generateKeyPair(type, options, (error, publicKey, privateKey) => (error ? reject(error) : resolve({ publicKey, privateKey }))),
  );

export * from "node:crypto";
const cryptoModule = { ...real, createCipheriv, createDecipheriv, timingSafeEqual, generateKeyPair };
export default cryptoModule;
for (const name of ["crypto", "node:crypto"]) sandboxBuiltins.set(name, cryptoModule);
