// Part of `node:fs` for guests (guest-fs.js): ReadStream and WriteStream.
import { argError, describe } from "./secure-exec-fs-errors.js";
import { state } from "./secure-exec-fs-store.js";
import { optionsOf } from "./secure-exec-fs-ops.js";
import { openSync, readSync, closeSync, writeSync } from "./secure-exec-fs-fd.js";

// ---------------------------------------------------------------------------------------
// Streams (node:stream loads on first use).

let streamClasses;

function streams() {
  if (streamClasses) return streamClasses;
  const { Readable, Writable } = process.getBuiltinModule("node:stream");

  /** Opens a read or write stream's file (unless it was given an fd), as Node does on construct. */
  function openStream(stream, callback) {
    try {
      if (stream.fd === null) stream.fd = openSync(stream.path, stream.flags, stream.mode);
      stream.pending = false;
      stream.emit("open", stream.fd);
      stream.emit("ready");
      callback();
    } catch (error) {
      callback(error);
    }
  }

  class RealReadStream extends Readable {
    constructor(path, options) {
      const opts = optionsOf(options);
      for (const name of ["start", "end"]) {
        const value = opts[name];
        if (value === undefined || (name === "end" && value === Infinity)) continue;
        if (typeof value !== "number") {
          throw argError("ERR_INVALID_ARG_TYPE", `The "${name}" argument must be of type number. Received ${describe(value)}`);
        }
        if (!Number.isInteger(value) || value < 0) {
          throw argError("ERR_OUT_OF_RANGE", `The value of "${name}" is out of range. It must be >= 0 && <= ${Number.MAX_SAFE_INTEGER}. Received ${value}`, RangeError);
        }
      }
      if (opts.start !== undefined && opts.end !== undefined && opts.start > opts.end) {
        throw argError("ERR_OUT_OF_RANGE", `The value of "start" is out of range. It must be <= "end" (here: ${opts.end}). Received ${opts.start}`, RangeError);
      }
      super({ highWaterMark: opts.highWaterMark ?? 64 * 1024, encoding: opts.encoding, emitClose: opts.emitClose ?? true });
      this.path = typeof path === "number" ? undefined : path;
      this.fd = typeof opts.fd === "number" ? opts.fd : typeof opts.fd === "object" && opts.fd ? opts.fd.fd : null;
      this.flags = opts.flags ?? "r";
      this.mode = opts.mode;
      this.start = opts.start;
      this.end = opts.end ?? Infinity;
      this.pos = opts.start !== undefined || opts.end !== undefined ? (opts.start ?? 0) : undefined;
      this.autoClose = opts.autoClose ?? true;
      this.bytesRead = 0;
      this.pending = true;
    }
    _construct(callback) {
      openStream(this, callback);
    }
    _read(size) {
      try {
        const remaining = this.pos === undefined ? size : Math.min(size, this.end - this.pos + 1);
        if (remaining <= 0) return this.push(null);
        const buffer = Buffer.alloc(remaining);
        const count = readSync(this.fd, buffer, 0, remaining, this.pos ?? null);
        if (this.pos !== undefined) this.pos += count;
        this.bytesRead += count;
        this.push(count > 0 ? buffer.subarray(0, count) : null);
      } catch (error) {
        this.destroy(error);
      }
    }
    _destroy(error, callback) {
      if (this.autoClose && typeof this.fd === "number" && state().fds.has(this.fd)) closeSync(this.fd);
      callback(error);
    }
    close(callback) {
      if (typeof callback === "function") this.once("close", () => callback());
      this.destroy();
    }
  }

  class RealWriteStream extends Writable {
    constructor(path, options) {
      const opts = optionsOf(options);
      super({ highWaterMark: opts.highWaterMark, decodeStrings: true, defaultEncoding: opts.encoding ?? "utf8", emitClose: opts.emitClose ?? true });
      this.path = typeof path === "number" ? undefined : path;
      this.fd = typeof opts.fd === "number" ? opts.fd : typeof opts.fd === "object" && opts.fd ? opts.fd.fd : null;
      this.flags = opts.flags ?? "w";
      this.mode = opts.mode;
      this.start = opts.start;
      this.pos = opts.start;
      this.autoClose = opts.autoClose ?? true;
      this.bytesWritten = 0;
      this.pending = true;
    }
    _construct(callback) {
      openStream(this, callback);
    }
    _write(chunk, encoding, callback) {
      try {
        const bytes = typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk;
        const written = writeSync(this.fd, bytes, 0, bytes.length, this.pos ?? null);
        if (this.pos !== undefined) this.pos += written;
        this.bytesWritten += written;
        callback();
      } catch (error) {
        callback(error);
      }
    }
    _destroy(error, callback) {
      if (this.autoClose && typeof this.fd === "number" && state().fds.has(this.fd)) closeSync(this.fd);
      callback(error);
    }
    close(callback) {
      if (typeof callback === "function") this.once("close", () => callback());
      if (this.writableEnded || this.destroyed) this.destroy();
      else this.end();
    }
    destroySoon() {
      this.end();
    }
  }

  streamClasses = { ReadStream: RealReadStream, WriteStream: RealWriteStream };
  ReadStream = RealReadStream;
  WriteStream = RealWriteStream;
  return streamClasses;
}

// Live bindings: the first use swaps in the real classes (extending node:stream's).
export let ReadStream = function ReadStream(path, options) {
  return new (streams().ReadStream)(path, options);
};
export let WriteStream = function WriteStream(path, options) {
  return new (streams().WriteStream)(path, options);
};
export const FileReadStream = ReadStream;
export const FileWriteStream = WriteStream;

export function createReadStream(path, options) {
  return new (streams().ReadStream)(path, options);
}

export function createWriteStream(path, options) {
  return new (streams().WriteStream)(path, options);
}
