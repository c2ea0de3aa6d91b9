// Pieces of the guest's Node `process` that every run's prelude and the resident runner share:
// its env (values become strings) and its stdout/stderr (synchronous pipe-like Writables).
const nativeQueueMicrotask = queueMicrotask;

/** The run's env: values become strings on assignment, as in Node. */
export function makeEnv(initial) {
  const target = {};
  for (const [key, value] of Object.entries(initial ?? {})) target[key] = String(value);
  return new Proxy(target, {
    set(object, key, value) {
      if (typeof key === "symbol") return Reflect.set(object, key, value);
      object[key] = String(value);
      return true;
    },
    defineProperty(object, key, descriptor) {
      if ("value" in descriptor && typeof key === "string") return Reflect.defineProperty(object, key, { ...descriptor, value: String(descriptor.value) });
      return Reflect.defineProperty(object, key, descriptor);
    },
  });
}

/**
 * process.stdout ("o") or process.stderr ("e"), writing strings and bytes through `write`.
 * `Writable` and `Buffer`: node:stream's and node:buffer's (loaded by the caller on first use);
 * `invalidArgType`: Node's error.
 */
export function makeStdioWritable(channel, write, { Writable, Buffer, invalidArgType }) {
  const stream = new Writable({
    write(chunk, encoding, callback) {
      write(typeof chunk === "string" ? chunk : new Uint8Array(chunk));
      callback();
    },
  });
  // Synchronous like a pipe-backed stdout in Node.
  stream.write = (chunk, encoding, callback) => {
    if (typeof chunk === "string" && typeof encoding === "string" && encoding !== "utf8" && encoding !== "utf-8") {
      chunk = Buffer.from(chunk, encoding);
    }
    if (typeof chunk !== "string" && !ArrayBuffer.isView(chunk)) {
      throw invalidArgType("chunk", "of type string or an instance of Buffer, TypedArray, or DataView", chunk);
    }
    write(typeof chunk === "string" ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    const done = typeof encoding === "function" ? encoding : callback;
    if (typeof done === "function") nativeQueueMicrotask(done);
    return true;
  };
  Object.defineProperty(stream, "__secureExecWrite", { value: stream.write });
  // stdout/stderr are pipes: Node leaves isTTY unset (undefined) on non-TTY streams.
  stream.fd = channel === "o" ? 1 : 2;
  stream._type = "pipe";
  // Node never closes stdout/stderr on end().
  stream.destroySoon = stream.destroy;
  stream._destroy = (error, callback) => callback(error);
  return stream;
}
