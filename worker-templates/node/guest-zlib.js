// `node:zlib` for guests: workerd's, with Node's `code` and `errno` on the errors it throws
// or emits (workerd's carry only the message).
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:zlib");

const BY_MESSAGE = {
  "unexpected end of file": ["Z_BUF_ERROR", -5],
  "Missing dictionary": ["Z_NEED_DICT", 2],
  "Bad dictionary": ["Z_DATA_ERROR", -3],
};

function withCode(error) {
  if (error && typeof error === "object" && error.code === undefined && typeof error.message === "string") {
    if (/^Compression failed$|^Decompression failed$/.test(error.message)) return error;
    const [code, errno] = BY_MESSAGE[error.message] ?? ["Z_DATA_ERROR", -3];
    error.code = code;
    error.errno = errno;
  }
  return error;
}

const SYNC = ["deflateSync", "inflateSync", "deflateRawSync", "inflateRawSync", "gzipSync", "gunzipSync", "unzipSync", "brotliCompressSync", "brotliDecompressSync"];
const CALLBACK = ["deflate", "inflate", "deflateRaw", "inflateRaw", "gzip", "gunzip", "unzip", "brotliCompress", "brotliDecompress"];
const STREAMS = ["createDeflate", "createInflate", "createDeflateRaw", "createInflateRaw", "createGzip", "createGunzip", "createUnzip", "createBrotliCompress", "createBrotliDecompress"];

const wrapped = {};
for (const name of SYNC) {
  wrapped[name] = {
    [name](...args) {
      try {
        return real[name](...args);
      } catch (error) {
        throw withCode(error);
      }
    },
  }[name];
}
for (const name of CALLBACK) {
  const original = real[name];
  const fn = {
    [name](buffer, options, callback) {
      if (typeof options === "function") {
        callback = options;
        options = {};
      }
      if (typeof callback !== "function") return original(buffer, options, callback);
      return original(buffer, options, (error, result) => callback(error ? withCode(error) : null, result));
    },
  }[name];
  const custom = original?.[Symbol.for("nodejs.util.promisify.custom")];
  if (custom) fn[Symbol.for("nodejs.util.promisify.custom")] = (...args) => custom(...args).catch((error) => Promise.reject(withCode(error)));
  wrapped[name] = fn;
}
for (const name of STREAMS) {
  wrapped[name] = {
    [name](...args) {
      const stream = real[name](...args);
      const emit = stream.emit;
      stream.emit = function (event, ...rest) {
        if (event === "error") withCode(rest[0]);
        return emit.call(this, event, ...rest);
      };
      return stream;
    },
  }[name];
}

export * from "node:zlib";
export const {
  deflateSync, inflateSync, deflateRawSync, inflateRawSync, gzipSync, gunzipSync, unzipSync, brotliCompressSync, brotliDecompressSync,
  deflate, inflate, deflateRaw, inflateRaw, gzip, gunzip, unzip, brotliCompress, brotliDecompress,
  createDeflate, createInflate, createDeflateRaw, createInflateRaw, createGzip, createGunzip, createUnzip, createBrotliCompress, createBrotliDecompress,
} = wrapped;
const zlibModule = { ...real, ...wrapped };
export default zlibModule;
for (const name of ["zlib", "node:zlib"]) sandboxBuiltins.set(name, zlibModule);
