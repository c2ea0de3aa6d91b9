// Part of `node:fs` for guests (guest-fs.js): the sync API over file descriptors.
import { argError, describe, fsError } from "./secure-exec-fs-errors.js";
import { reserve, writeInto, checkRead, fileBytes, state, checkWrite } from "./secure-exec-fs-store.js";
import { resolvePath } from "./secure-exec-fs-paths.js";
import { markWritten, parseFlags, lookup, missing, putFile, parseMode, toBytes } from "./secure-exec-fs-ops.js";
import { Stats, bigintStats } from "./secure-exec-fs-stats.js";

// ---------------------------------------------------------------------------------------
// File descriptors.

function resize(node, path, len) {
  const length = Math.max(0, Number(len) | 0);
  if (length > node.size) {
    reserve(length - node.size, 0, "write", path);
    writeInto(node, Buffer.alloc(length - node.size), node.size);
  } else {
    if (node.denied && length > 0) checkRead(path, "open");
    fileBytes(node);
    state().bytes -= node.size - length;
    node.size = length;
  }
  markWritten(path, node);
}

function toMs(time) {
  if (time instanceof Date) return time.getTime();
  if (typeof time === "string" && time !== "" && !Number.isNaN(Number(time))) return Number(time) * 1000;
  if (typeof time === "number") return time * 1000;
  if (typeof time === "bigint") return Number(time) * 1000;
  throw argError("ERR_INVALID_ARG_TYPE", `The "time" argument must be of type number or an instance of Date. Received ${describe(time)}`);
}

/** Node's check of an fd argument: an int32 that is not negative. */
function validateFd(fd) {
  if (typeof fd !== "number") {
    throw argError("ERR_INVALID_ARG_TYPE", `The "fd" argument must be of type number. Received ${describe(fd)}`);
  }
  if (!Number.isInteger(fd) || fd < 0 || fd > 2147483647) {
    throw argError("ERR_OUT_OF_RANGE", `The value of "fd" is out of range. It must be ${Number.isInteger(fd) ? ">= 0 && <= 2147483647" : "an integer"}. Received ${fd}`, RangeError);
  }
}

function descriptor(fd, syscall = "read") {
  validateFd(fd);
  const entry = state().fds.get(fd);
  if (!entry) throw fsError("EBADF", syscall);
  return entry;
}

export function openSync(path, flags = "r", mode) {
  const resolved = resolvePath(path);
  const parsed = parseFlags(flags);
  if (parsed.read) checkRead(resolved, "open");
  if (parsed.write || parsed.create || parsed.truncate) checkWrite(resolved, "open");
  let node = lookup(resolved);
  if (node && parsed.create && parsed.exclusive) throw fsError("EEXIST", "open", resolved);
  if (!node) {
    if (!parsed.create) throw missing("open", resolved);
    node = putFile(resolved, Buffer.alloc(0), { mode: parseMode(mode, 0o644) });
  } else if (node.kind === "dir") {
    if (parsed.write) throw fsError("EISDIR", "open", resolved);
  } else if (parsed.truncate) {
    putFile(resolved, Buffer.alloc(0));
  } else if (node.denied && parsed.write) {
    checkRead(resolved, "open");
  }
  const s = state();
  if (s.fds.size >= 4096) throw fsError("EMFILE", "open", resolved);
  const fd = s.nextFd++;
  s.fds.set(fd, { path: resolved, node, flags: parsed, position: 0 });
  return fd;
}

export function closeSync(fd) {
  const s = state();
  if (!s.fds.delete(fd)) throw fsError("EBADF", "close");
}

export function fstatSync(fd, options) {
  const stats = new Stats(descriptor(fd, "fstat").node);
  return options?.bigint ? bigintStats(stats) : stats;
}

export function fsyncSync(fd) {
  descriptor(fd, "fsync");
}
export const fdatasyncSync = fsyncSync;

export function ftruncateSync(fd, len = 0) {
  const entry = descriptor(fd, "ftruncate");
  if (!entry.flags.write) throw fsError("EINVAL", "ftruncate");
  resize(entry.node, entry.path, len);
}

export function futimesSync(fd, atime, mtime) {
  const entry = descriptor(fd, "futime");
  toMs(atime);
  entry.node.mtimeMs = toMs(mtime);
  state().metaChanged.add(entry.path);
  state().changed = true;
}

export function fchmodSync(fd, mode) {
  const entry = descriptor(fd, "fchmod");
  entry.node.mode = parseMode(mode, entry.node.mode);
  state().metaChanged.add(entry.path);
  state().changed = true;
}

export function fchownSync(fd) {
  descriptor(fd, "fchown");
}

function readAllFd(fd) {
  const entry = descriptor(fd, "read");
  if (!entry.flags.read) throw fsError("EBADF", "read");
  if (entry.node.kind === "dir") throw fsError("EISDIR", "read");
  const bytes = Buffer.from(fileBytes(entry.node).subarray(entry.position));
  entry.position += bytes.length;
  return bytes;
}

export function readSync(fd, buffer, offsetOrOptions, length, position) {
  validateFd(fd);
  if (!ArrayBuffer.isView(buffer)) {
    throw argError("ERR_INVALID_ARG_TYPE", `The "buffer" argument must be an instance of Buffer, TypedArray, or DataView. Received ${describe(buffer)}`);
  }
  let offset = offsetOrOptions;
  if (offsetOrOptions !== null && typeof offsetOrOptions === "object") {
    ({ offset = 0, length = buffer.byteLength - offset, position = null } = offsetOrOptions);
  }
  offset ??= 0;
  length ??= buffer.byteLength - offset;
  const entry = descriptor(fd, "read");
  if (!entry.flags.read) throw fsError("EBADF", "read");
  if (entry.node.kind === "dir") throw fsError("EISDIR", "read");
  const from = position === null || position === undefined || position < 0 ? entry.position : Number(position);
  const source = fileBytes(entry.node);
  const count = Math.max(0, Math.min(length, source.length - from));
  const target = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  source.copy(target, offset, from, from + count);
  if (position === null || position === undefined || position < 0) entry.position += count;
  return count;
}

function writeFd(fd, bytes, offset, length, position) {
  if (fd === 1 || fd === 2) {
    (fd === 1 ? process.stdout : process.stderr).write(bytes.subarray(offset, offset + length));
    return length;
  }
  const entry = descriptor(fd, "write");
  if (!entry.flags.write) throw fsError("EBADF", "write");
  const node = entry.node;
  const chunk = bytes.subarray(offset, offset + length);
  const at = entry.flags.append ? node.size : position === null || position === undefined ? entry.position : Number(position);
  const attached = lookup(entry.path) === node;
  if (attached) reserve(Math.max(0, at + chunk.length - node.size), 0, "write", entry.path);
  writeInto(node, chunk, at);
  if (!entry.flags.append && (position === null || position === undefined)) entry.position = at + chunk.length;
  if (attached) markWritten(entry.path, node);
  return chunk.length;
}

export function writeSync(fd, buffer, offsetOrOptions, length, position) {
  if (typeof buffer === "string") {
    const encoding = typeof length === "string" ? length : "utf8";
    const bytes = Buffer.from(buffer, encoding);
    return writeFd(fd, bytes, 0, bytes.length, typeof offsetOrOptions === "number" ? offsetOrOptions : null);
  }
  const bytes = toBytes(buffer, undefined, "buffer");
  let offset = offsetOrOptions;
  if (offsetOrOptions !== null && typeof offsetOrOptions === "object") {
    ({ offset = 0, length = bytes.length - offset, position = null } = offsetOrOptions);
  }
  offset ??= 0;
  length ??= bytes.length - offset;
  return writeFd(fd, bytes, offset, length, position);
}

export function readvSync(fd, buffers, position) {
  let total = 0;
  for (const buffer of buffers) {
    const count = readSync(fd, buffer, 0, buffer.byteLength, position === null || position === undefined ? null : position + total);
    total += count;
    if (count < buffer.byteLength) break;
  }
  return total;
}

export function writevSync(fd, buffers, position) {
  let total = 0;
  for (const buffer of buffers) {
    total += writeSync(fd, buffer, 0, buffer.byteLength, position === null || position === undefined ? null : position + total);
  }
  return total;
}

export { readAllFd, writeFd, resize, toMs };
