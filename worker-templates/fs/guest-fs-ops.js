// Part of `node:fs` for guests (guest-fs.js): the tree operations the APIs share (look up,
// attach, detach, write a file), and their arguments (data, encodings, modes, flags) as Node
// reads them.
import { fsError, argError, describe, O_RDWR, O_WRONLY, O_CREAT, O_TRUNC, O_EXCL, O_APPEND } from "./secure-exec-fs-errors.js";
import { state, checkWrite, checkRead, reserve, writeInto, setContents, newFile } from "./secure-exec-fs-store.js";
import { parentOf, ROOT_PATH, baseName, joinPath } from "./secure-exec-fs-paths.js";

// ---------------------------------------------------------------------------------------
// Tree operations.

function lookup(path) {
  return state().nodes.get(path);
}

/** Node's answer for a path that does not resolve: ENOTDIR when a file sits on the way. */
function missing(syscall, path, dest, reported = path) {
  const { nodes } = state();
  for (let ancestor = parentOf(path); ; ancestor = parentOf(ancestor)) {
    const node = nodes.get(ancestor);
    if (node) return fsError(node.kind === "dir" ? "ENOENT" : "ENOTDIR", syscall, reported, dest);
    if (ancestor === ROOT_PATH) return fsError("ENOENT", syscall, reported, dest);
  }
}

function existing(path, syscall, reported = path) {
  const node = lookup(path);
  if (!node) throw missing(syscall, path, undefined, reported);
  return node;
}

function parentDir(path, syscall, dest, reported = path) {
  const parent = lookup(parentOf(path));
  if (!parent) throw missing(syscall, parentOf(path), dest, reported);
  if (parent.kind !== "dir") throw fsError("ENOTDIR", syscall, reported, dest);
  return parent;
}

function attach(path, node) {
  const s = state();
  const parent = s.nodes.get(parentOf(path));
  s.nodes.set(path, node);
  parent.children.add(baseName(path));
  parent.mtimeMs = Date.now();
  s.changed = true;
  if (node.kind === "dir") s.createdDirs.add(path);
  else s.written.add(path);
}

function markWritten(path, node) {
  const s = state();
  node.mtimeMs = Date.now();
  s.written.add(path);
  s.changed = true;
}

/** Detaches `path` and everything below it; returns the detached entries (deepest last). */
function detach(path, { release = true } = {}) {
  const s = state();
  const entries = [];
  const walk = (at) => {
    const node = s.nodes.get(at);
    entries.push([at, node]);
    if (node.kind === "dir") for (const name of node.children) walk(joinPath(at, name));
  };
  walk(path);
  for (const [at, node] of entries) {
    s.nodes.delete(at);
    if (s.original.has(at)) s.removed.add(at);
    if (release) {
      s.files -= 1;
      if (node.kind === "file") s.bytes -= node.size;
    }
  }
  const parent = s.nodes.get(parentOf(path));
  parent.children.delete(baseName(path));
  parent.mtimeMs = Date.now();
  s.changed = true;
  return entries;
}

function toBytes(data, encoding, name = "data") {
  if (typeof data === "string") return Buffer.from(data, encoding ?? "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  throw argError(
    "ERR_INVALID_ARG_TYPE",
    `The "${name}" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${describe(data)}`,
  );
}

function checkEncoding(options) {
  const { encoding } = options;
  if (encoding !== undefined && encoding !== null && encoding !== "buffer" && !Buffer.isEncoding(encoding)) {
    throw argError("ERR_INVALID_ARG_VALUE", `The argument 'encoding' is invalid encoding. Received ${typeof encoding === "string" ? `'${encoding}'` : describe(encoding)}`);
  }
  return options;
}

function optionsOf(options, defaults = {}) {
  if (options === undefined || options === null || typeof options === "function") return { ...defaults };
  if (typeof options === "string") return checkEncoding({ ...defaults, encoding: options });
  if (typeof options === "object") return checkEncoding({ ...defaults, ...options });
  throw argError("ERR_INVALID_ARG_TYPE", `The "options" argument must be of type object. Received ${describe(options)}`);
}

function encodeOut(bytes, encoding) {
  return encoding && encoding !== "buffer" ? bytes.toString(encoding) : Buffer.from(bytes);
}

function parseMode(mode, fallback) {
  if (mode === undefined || mode === null) return fallback;
  if (typeof mode === "string") return parseInt(mode, 8) & 0o7777;
  return Number(mode) & 0o7777;
}

function parseFlags(flags) {
  if (flags === undefined || flags === null) flags = "r";
  if (typeof flags === "number") {
    const access = flags & 3;
    return {
      read: access === 0 || access === O_RDWR,
      write: access === O_WRONLY || access === O_RDWR,
      create: (flags & O_CREAT) !== 0,
      truncate: (flags & O_TRUNC) !== 0,
      exclusive: (flags & O_EXCL) !== 0,
      append: (flags & O_APPEND) !== 0,
    };
  }
  const table = {
    r: "r", rs: "r", sr: "r", "r+": "r+", "rs+": "r+", "sr+": "r+",
    w: "w", wx: "wx", xw: "wx", "w+": "w+", "wx+": "wx+", "xw+": "wx+",
    a: "a", ax: "ax", xa: "ax", as: "a", sa: "a", "a+": "a+", "ax+": "ax+", "xa+": "ax+", "as+": "a+", "sa+": "a+",
  };
  const kind = table[flags];
  if (!kind) throw argError("ERR_INVALID_ARG_VALUE", `The argument 'flags' is invalid. Received '${flags}'`);
  const base = kind[0];
  return {
    read: base === "r" || kind.endsWith("+"),
    write: base !== "r" || kind.endsWith("+"),
    create: base !== "r",
    truncate: base === "w",
    exclusive: kind.includes("x"),
    append: base === "a",
  };
}

/** Puts `bytes` at `path` (whole-file write or append), creating the file as needed. */
function putFile(path, bytes, { append = false, exclusive = false, mode, syscall = "open" } = {}) {
  checkWrite(path, syscall);
  let node = lookup(path);
  if (node) {
    if (exclusive) throw fsError("EEXIST", syscall, path);
    if (node.kind === "dir") throw fsError("EISDIR", syscall, path);
    if (append) {
      if (node.denied) checkRead(path, syscall);
      reserve(bytes.length, 0, "write", path);
      writeInto(node, bytes, node.size);
    } else {
      reserve(bytes.length - node.size, 0, "write", path);
      setContents(node, bytes);
    }
    markWritten(path, node);
    return node;
  }
  parentDir(path, syscall);
  reserve(bytes.length, 1, "write", path);
  node = newFile(parseMode(mode, 0o644), Date.now());
  setContents(node, bytes);
  attach(path, node);
  return node;
}

export { existing, lookup, missing, optionsOf, encodeOut, parseFlags, putFile, toBytes, parseMode, parentDir, attach, detach, markWritten };
