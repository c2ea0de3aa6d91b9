// `node:fs` for guests: the runtime's virtual filesystem. The host ships a snapshot with
// the run (files, directories, read-only prefixes, the byte/file budget and the
// `permissions.fs` policy); the guest reads and writes it in memory, so the sync forms
// work, and hands the changes back at the end of the run. The host re-checks them.
// Nothing here loads a builtin at import time: streams load `node:stream` on first use.
import { bridge, sandboxBuiltins } from "./secure-exec-bridge.js";
import { matchesGlob } from "./secure-exec-path.js";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;

export const constants = Object.freeze({
  UV_FS_SYMLINK_DIR: 1,
  UV_FS_SYMLINK_JUNCTION: 2,
  O_RDONLY: 0,
  O_WRONLY,
  O_RDWR,
  UV_DIRENT_UNKNOWN: 0,
  UV_DIRENT_FILE: 1,
  UV_DIRENT_DIR: 2,
  UV_DIRENT_LINK: 3,
  UV_DIRENT_FIFO: 4,
  UV_DIRENT_SOCKET: 5,
  UV_DIRENT_CHAR: 6,
  UV_DIRENT_BLOCK: 7,
  S_IFMT,
  S_IFREG,
  S_IFDIR,
  S_IFCHR: 0o020000,
  S_IFBLK: 0o060000,
  S_IFIFO: 0o010000,
  S_IFLNK,
  S_IFSOCK: 0o140000,
  O_CREAT,
  O_EXCL,
  UV_FS_O_FILEMAP: 0,
  O_NOCTTY: 0o400,
  O_TRUNC,
  O_APPEND,
  O_DIRECTORY: 0o200000,
  O_NOATIME: 0o1000000,
  O_NOFOLLOW: 0o400000,
  O_SYNC: 0o4010000,
  O_DSYNC: 0o10000,
  O_DIRECT: 0o40000,
  O_NONBLOCK: 0o4000,
  S_IRWXU: 0o700,
  S_IRUSR: 0o400,
  S_IWUSR: 0o200,
  S_IXUSR: 0o100,
  S_IRWXG: 0o70,
  S_IRGRP: 0o40,
  S_IWGRP: 0o20,
  S_IXGRP: 0o10,
  S_IRWXO: 0o7,
  S_IROTH: 0o4,
  S_IWOTH: 0o2,
  S_IXOTH: 0o1,
  F_OK: 0,
  R_OK: 4,
  W_OK: 2,
  X_OK: 1,
  UV_FS_COPYFILE_EXCL: 1,
  COPYFILE_EXCL: 1,
  UV_FS_COPYFILE_FICLONE: 2,
  COPYFILE_FICLONE: 2,
  UV_FS_COPYFILE_FICLONE_FORCE: 4,
  COPYFILE_FICLONE_FORCE: 4,
});
export const F_OK = 0;
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

// ---------------------------------------------------------------------------------------
// Errors, shaped like Node's (message, errno, code, syscall, path, dest).

const ERRORS = {
  EPERM: [-1, "operation not permitted"],
  ENOENT: [-2, "no such file or directory"],
  EBADF: [-9, "bad file descriptor"],
  EAGAIN: [-11, "resource temporarily unavailable"],
  EACCES: [-13, "permission denied"],
  EBUSY: [-16, "resource busy or locked"],
  EEXIST: [-17, "file already exists"],
  EXDEV: [-18, "cross-device link not permitted"],
  ENOTDIR: [-20, "not a directory"],
  EISDIR: [-21, "illegal operation on a directory"],
  EINVAL: [-22, "invalid argument"],
  EMFILE: [-24, "too many open files"],
  ENOSPC: [-28, "no space left on device"],
  EROFS: [-30, "read-only file system"],
  ENOTEMPTY: [-39, "directory not empty"],
};

/** Errors name paths as the caller wrote them (Node does): resolved path → given text. */
const shownAs = new Map();

function fsError(code, syscall, resolvedPath, resolvedDest, note) {
  const [errno, description] = ERRORS[code];
  const path = resolvedPath === undefined ? undefined : (shownAs.get(resolvedPath) ?? resolvedPath);
  const dest = resolvedDest === undefined ? undefined : (shownAs.get(resolvedDest) ?? resolvedDest);
  let message = `${code}: ${description}, ${syscall}`;
  if (path !== undefined) message += ` '${path}'`;
  if (dest !== undefined) message += ` -> '${dest}'`;
  if (note) message += ` (${note})`;
  const error = new Error(message);
  error.errno = errno;
  error.code = code;
  error.syscall = syscall;
  if (path !== undefined) error.path = path;
  if (dest !== undefined) error.dest = dest;
  return error;
}

function argError(code, message, ErrorClass = TypeError) {
  const error = new ErrorClass(message);
  error.code = code;
  return error;
}

function describe(value) {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "function") return `function ${value.name}`;
  if (typeof value === "object") return `an instance of ${value.constructor?.name ?? "Object"}`;
  return `type ${typeof value} (${String(value).slice(0, 25)})`;
}

// ---------------------------------------------------------------------------------------
// The in-memory tree, built from the snapshot on first use.

let fsState;
let nextIno = 1000;
const ROOT_PATH = "/";

function newDir(mode, mtimeMs) {
  return { kind: "dir", children: new Set(), mode: mode ?? 0o755, mtimeMs, birthtimeMs: mtimeMs, ino: nextIno++ };
}

function newFile(mode, mtimeMs) {
  return { kind: "file", buf: Buffer.alloc(0), b64: undefined, size: 0, mode: mode ?? 0o644, mtimeMs, birthtimeMs: mtimeMs, ino: nextIno++ };
}

function compilePolicy(policy) {
  if (policy === undefined || policy === null || policy === "allow") return null;
  if (policy === "deny") return { default: "deny", rules: [], whole: true };
  return {
    default: policy.default,
    rules: (policy.rules ?? []).map((rule) => {
      const scoped = /^(read|write):/.exec(rule.pattern);
      const glob = scoped ? rule.pattern.slice(scoped[0].length) : rule.pattern;
      return { op: scoped?.[1], pattern: rule.pattern, parts: glob.split("*"), action: rule.action };
    }),
  };
}

// `*` matches any run of characters, the rest is literal; linear in the path (the host's
// globMatches in host/api/options.ts is the same algorithm, so both sides agree).
function globMatches(parts, subject) {
  if (parts.length === 1) return subject === parts[0];
  const head = parts[0];
  const tail = parts[parts.length - 1];
  if (subject.length < head.length + tail.length || !subject.startsWith(head) || !subject.endsWith(tail)) return false;
  const end = subject.length - tail.length;
  let at = head.length;
  for (let index = 1; index < parts.length - 1; index += 1) {
    const piece = parts[index];
    if (piece === "") continue;
    const found = subject.indexOf(piece, at);
    if (found === -1 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

function state() {
  if (fsState) return fsState;
  const snapshot = bridge.fsSnapshot ?? {};
  const now = Date.now();
  const s = {
    nodes: new Map(),
    original: new Map(),
    removed: new Set(),
    written: new Set(),
    createdDirs: new Set(),
    metaChanged: new Set(),
    changed: false,
    readOnly: snapshot.readOnly ?? [],
    mountPoints: snapshot.mounts ?? [],
    maxBytes: snapshot.limits?.bytes ?? Infinity,
    maxFiles: snapshot.limits?.files ?? Infinity,
    bytes: snapshot.usage?.bytes ?? 0,
    files: snapshot.usage?.files ?? 0,
    policy: compilePolicy(snapshot.policy),
    fds: new Map(),
    nextFd: 10,
  };
  fsState = s;
  s.nodes.set(ROOT_PATH, newDir(0o755, now));
  s.original.set(ROOT_PATH, "dir");
  for (const [path, meta] of Object.entries(snapshot.dirs ?? {})) {
    const node = ensureDirNode(path, now);
    node.mode = meta?.mode ?? node.mode;
    node.mtimeMs = node.birthtimeMs = meta?.mtimeMs ?? now;
    // It holds entries permissions.fs hides entirely: it cannot be removed or moved.
    if (meta?.sealed) node.sealed = true;
    s.original.set(path, "dir");
  }
  for (const [path, entry] of Object.entries(snapshot.files ?? {})) {
    const parent = ensureDirNode(parentOf(path), now);
    const node = newFile(entry.mode, entry.mtimeMs ?? now);
    node.size = entry.size ?? 0;
    node.buf = undefined;
    node.b64 = entry.data;
    node.denied = entry.data === undefined || entry.data === null;
    // Where it was withheld: the host also withholds a file its policy denies where the file
    // really is (a host link in a mount), even when this path itself is allowed.
    if (node.denied) node.deniedAt = path;
    s.nodes.set(path, node);
    parent.children.add(baseName(path));
    s.original.set(path, "file");
  }
  bridge.fsChanges = collectChanges;
  return s;
}

/** Directories the snapshot implies (parents of files) are created on the way. */
function ensureDirNode(path, now) {
  const { nodes } = fsState;
  let node = nodes.get(path);
  if (node) return node;
  const parent = ensureDirNode(parentOf(path), now);
  node = newDir(0o755, now);
  nodes.set(path, node);
  parent.children.add(baseName(path));
  return node;
}

function collectChanges() {
  const s = fsState;
  if (!s || !s.changed) return undefined;
  const deletes = [];
  for (const path of s.removed) {
    const now = s.nodes.get(path);
    if (!now || now.kind !== s.original.get(path)) deletes.push(path);
  }
  deletes.sort();
  const topmost = [];
  for (const path of deletes) {
    const last = topmost[topmost.length - 1];
    if (last !== undefined && (last === "/" || path.startsWith(`${last}/`))) continue;
    topmost.push(path);
  }
  const dirs = [];
  for (const path of s.createdDirs) {
    if (s.nodes.get(path)?.kind === "dir" && s.original.get(path) !== "dir") dirs.push(path);
  }
  dirs.sort();
  const writes = {};
  for (const path of s.written) {
    const node = s.nodes.get(path);
    if (node?.kind === "file" && !node.denied) writes[path] = fileBytes(node).toString("base64");
  }
  const meta = {};
  for (const path of new Set([...s.metaChanged, ...s.written, ...dirs])) {
    const node = s.nodes.get(path);
    if (node) meta[path] = { mtimeMs: node.mtimeMs, mode: node.mode & 0o7777 };
  }
  return { deletes: topmost, dirs, writes, meta };
}

function fileBytes(node) {
  if (node.denied) {
    const reason = denial("read", node.deniedAt) ?? "denied by permissions.fs where the file really is";
    throw fsError("EACCES", "open", node.deniedAt, undefined, reason);
  }
  if (node.buf === undefined) {
    node.buf = node.b64 ? Buffer.from(node.b64, "base64") : Buffer.alloc(0);
    node.b64 = undefined;
    node.size = node.buf.length;
  }
  return node.buf.subarray(0, node.size);
}

/** Writes `bytes` at `position`, growing the buffer geometrically (appends stay linear). */
function writeInto(node, bytes, position) {
  fileBytes(node);
  const end = position + bytes.length;
  if (end > node.buf.length) {
    const grown = Buffer.alloc(Math.max(end, Math.min(node.buf.length * 2, end + 64 * 1024 * 1024), 64));
    node.buf.copy(grown, 0, 0, node.size);
    node.buf = grown;
  }
  if (position > node.size) node.buf.fill(0, node.size, position);
  bytes.copy ? bytes.copy(node.buf, position) : node.buf.set(bytes, position);
  node.size = Math.max(node.size, end);
}

function setContents(node, bytes) {
  node.buf = bytes;
  node.b64 = undefined;
  node.size = bytes.length;
  node.denied = false;
}

// ---------------------------------------------------------------------------------------
// Paths.

function parentOf(path) {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? ROOT_PATH : path.slice(0, slash);
}

function baseName(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

function joinPath(dir, name) {
  return dir === ROOT_PATH ? `/${name}` : `${dir}/${name}`;
}

function normalize(absolute) {
  const parts = [];
  for (const part of absolute.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function pathText(path, name = "path") {
  if (typeof path === "string") {
    if (path.includes("\u0000")) {
      throw argError("ERR_INVALID_ARG_VALUE", `The argument '${name}' must be a string, Uint8Array, or URL without null bytes. Received ${JSON.stringify(path)}`);
    }
    return path;
  }
  if (path instanceof URL) {
    if (path.protocol !== "file:") throw argError("ERR_INVALID_URL_SCHEME", "The URL must be of scheme file");
    return decodeURIComponent(path.pathname);
  }
  if (path instanceof Uint8Array) return pathText(Buffer.from(path).toString("utf8"), name);
  throw argError("ERR_INVALID_ARG_TYPE", `The "${name}" argument must be of type string or an instance of Buffer or URL. Received ${describe(path)}`);
}

/** Absolute, normalised guest path; relative paths resolve against `process.cwd()`. */
function resolvePath(path, name) {
  const text = pathText(path, name);
  if (text === "") throw fsError("ENOENT", "open", "");
  const resolved = normalize(text.startsWith("/") ? text : `${process.cwd()}/${text}`);
  if (shownAs.size > 64) shownAs.clear();
  shownAs.set(resolved, text);
  return resolved;
}

function under(path, prefix) {
  return prefix === ROOT_PATH || path === prefix || path.startsWith(`${prefix}/`);
}

// ---------------------------------------------------------------------------------------
// Rules: permissions.fs, read-only mounts, mount points, the byte and file budget.

function denial(op, path) {
  const policy = state().policy;
  if (!policy) return undefined;
  if (policy.whole) return 'permissions.fs is "deny"';
  for (const rule of policy.rules) {
    if (rule.op && rule.op !== op) continue;
    if (globMatches(rule.parts, path)) return rule.action === "deny" ? `denied by permissions.fs rule "${rule.pattern}"` : undefined;
  }
  return policy.default === "deny" ? 'denied by permissions.fs default "deny"' : undefined;
}

function checkRead(path, syscall, dest) {
  const reason = denial("read", path);
  if (reason) throw fsError("EACCES", syscall, path, dest, reason);
}

function checkWrite(path, syscall, dest, reported = path) {
  const reason = denial("write", path);
  if (reason) throw fsError("EACCES", syscall, reported, dest, reason);
  if (state().readOnly.some((prefix) => under(path, prefix))) throw fsError("EROFS", syscall, reported, dest);
}

/** A mount point, or a directory holding one, cannot be removed or renamed. */
function checkNotBusy(path, syscall, dest) {
  if (path === ROOT_PATH || state().mountPoints.some((point) => under(point, path))) throw fsError("EBUSY", syscall, path, dest);
}

function reserve(bytes, files, syscall, path) {
  const s = state();
  if (bytes > 0 && s.bytes + bytes > s.maxBytes) {
    throw fsError("ENOSPC", syscall, path, undefined, `limits.fsBytes = ${s.maxBytes} bytes, ${Math.max(0, s.maxBytes - s.bytes)} left`);
  }
  if (files > 0 && s.files + files > s.maxFiles) {
    throw fsError("ENOSPC", syscall, path, undefined, `limits.fsFiles = ${s.maxFiles} entries`);
  }
  s.bytes += bytes;
  s.files += files;
}

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

// ---------------------------------------------------------------------------------------
// Stats, Dirent, Dir.

export class Stats {
  constructor(node) {
    const mtimeMs = node.mtimeMs;
    this.dev = 2049;
    this.mode = (node.kind === "dir" ? S_IFDIR : S_IFREG) | (node.mode & 0o7777);
    this.nlink = node.kind === "dir" ? 2 + node.children.size : 1;
    this.uid = 0;
    this.gid = 0;
    this.rdev = 0;
    this.blksize = 4096;
    this.ino = node.ino;
    this.size = node.kind === "dir" ? 4096 : node.size;
    this.blocks = Math.ceil(this.size / 512);
    this.atimeMs = node.atimeMs ?? mtimeMs;
    this.mtimeMs = mtimeMs;
    this.ctimeMs = mtimeMs;
    this.birthtimeMs = node.birthtimeMs ?? mtimeMs;
    this.atime = new Date(this.atimeMs);
    this.mtime = new Date(this.mtimeMs);
    this.ctime = new Date(this.ctimeMs);
    this.birthtime = new Date(this.birthtimeMs);
  }
  isFile() {
    return (Number(this.mode) & S_IFMT) === S_IFREG;
  }
  isDirectory() {
    return (Number(this.mode) & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink() {
    return (Number(this.mode) & S_IFMT) === S_IFLNK;
  }
  isBlockDevice() {
    return false;
  }
  isCharacterDevice() {
    return false;
  }
  isFIFO() {
    return false;
  }
  isSocket() {
    return false;
  }
}

function bigintStats(stats) {
  const big = Object.create(Stats.prototype);
  for (const [key, value] of Object.entries(stats)) big[key] = typeof value === "number" ? BigInt(Math.floor(value)) : value;
  for (const key of ["atime", "mtime", "ctime", "birthtime"]) big[`${key}Ns`] = BigInt(Math.floor(stats[`${key}Ms`])) * 1_000_000n;
  return big;
}

export class Dirent {
  constructor(name, kind, parentPath) {
    this.name = name;
    this.parentPath = parentPath;
    this.path = parentPath;
    this._kind = kind;
  }
  isFile() {
    return this._kind === "file";
  }
  isDirectory() {
    return this._kind === "dir";
  }
  isSymbolicLink() {
    return false;
  }
  isBlockDevice() {
    return false;
  }
  isCharacterDevice() {
    return false;
  }
  isFIFO() {
    return false;
  }
  isSocket() {
    return false;
  }
}

export class Dir {
  constructor(path, entries) {
    this.path = path;
    this._entries = entries;
    this._closed = false;
  }
  readSync() {
    if (this._closed) throw argError("ERR_DIR_CLOSED", "Directory handle was closed", Error);
    return this._entries.shift() ?? null;
  }
  read(callback) {
    if (typeof callback === "function") return later(callback, () => this.readSync());
    return Promise.resolve().then(() => this.readSync());
  }
  closeSync() {
    if (this._closed) throw argError("ERR_DIR_CLOSED", "Directory handle was closed", Error);
    this._closed = true;
  }
  close(callback) {
    if (typeof callback === "function") return later(callback, () => this.closeSync());
    return Promise.resolve().then(() => this.closeSync());
  }
  async *[Symbol.asyncIterator]() {
    try {
      for (let entry = this.readSync(); entry; entry = this.readSync()) yield entry;
    } finally {
      if (!this._closed) this._closed = true;
    }
  }
  *[Symbol.iterator]() {
    for (let entry = this.readSync(); entry; entry = this.readSync()) yield entry;
  }
}

// ---------------------------------------------------------------------------------------
// The sync API.

export function existsSync(path) {
  try {
    const resolved = resolvePath(path);
    if (denial("read", resolved)) return false;
    return state().nodes.has(resolved);
  } catch {
    return false;
  }
}

export function accessSync(path, mode = F_OK) {
  const resolved = resolvePath(path);
  checkRead(resolved, "access");
  existing(resolved, "access");
  if (mode & W_OK) checkWrite(resolved, "access");
}

export function statSync(path, options) {
  return statOf(path, options, "stat");
}

export function lstatSync(path, options) {
  return statOf(path, options, "lstat");
}

function statOf(path, options, syscall) {
  const resolved = resolvePath(path);
  checkRead(resolved, syscall);
  const node = lookup(resolved);
  if (!node) {
    if (options?.throwIfNoEntry === false) return undefined;
    throw missing(syscall, resolved);
  }
  const stats = new Stats(node);
  return options?.bigint ? bigintStats(stats) : stats;
}

/**
 * All of stdin, read at once: the run's stdin is buffered before it starts (exec), so this
 * does not block; a spawned guest's stdin still open says EAGAIN, as Node does for a
 * non-blocking stdin.
 */
function readStdinSync() {
  const stdin = process.stdin;
  const chunks = [];
  for (let chunk = stdin.read(); chunk !== null; chunk = stdin.read()) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk));
  if (!stdin.readableEnded && !stdin._readableState?.ended) {
    if (chunks.length > 0) stdin.unshift(Buffer.concat(chunks));
    throw fsError("EAGAIN", "read");
  }
  return Buffer.concat(chunks);
}

const STDIN_PATHS = new Set(["/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"]);

export function readFileSync(path, options) {
  const { encoding, flag } = optionsOf(options, { flag: "r" });
  if (path === 0 || (typeof path === "string" && STDIN_PATHS.has(path))) return encodeOut(readStdinSync(), encoding);
  if (typeof path === "number") return encodeOut(readAllFd(path), encoding);
  const resolved = resolvePath(path);
  const flags = parseFlags(flag);
  checkRead(resolved, "open");
  if (flags.write) checkWrite(resolved, "open");
  const node = lookup(resolved);
  if (!node) {
    if (flags.create) {
      putFile(resolved, Buffer.alloc(0));
      return encodeOut(Buffer.alloc(0), encoding);
    }
    throw missing("open", resolved);
  }
  if (node.kind === "dir") throw fsError("EISDIR", "read");
  if (flags.truncate) putFile(resolved, Buffer.alloc(0));
  return encodeOut(fileBytes(node), encoding);
}

export function writeFileSync(file, data, options) {
  const { encoding, flag, mode } = optionsOf(options, { encoding: "utf8", flag: "w" });
  const bytes = toBytes(data, encoding);
  if (typeof file === "number") {
    writeFd(file, bytes, 0, bytes.length, null);
    return;
  }
  const flags = parseFlags(flag);
  putFile(resolvePath(file), bytes, { append: flags.append, exclusive: flags.exclusive, mode });
}

export function appendFileSync(file, data, options) {
  const { encoding, flag, mode } = optionsOf(options, { encoding: "utf8", flag: "a" });
  const bytes = toBytes(data, encoding);
  if (typeof file === "number") {
    writeFd(file, bytes, 0, bytes.length, null);
    return;
  }
  const flags = parseFlags(flag);
  putFile(resolvePath(file), bytes, { append: true, exclusive: flags.exclusive, mode });
}

export function readdirSync(path, options) {
  const { encoding, withFileTypes, recursive } = optionsOf(options);
  const resolved = resolvePath(path);
  checkRead(resolved, "scandir");
  const node = lookup(resolved);
  if (!node) throw missing("scandir", resolved);
  if (node.kind !== "dir") throw fsError("ENOTDIR", "scandir", resolved);
  const results = [];
  const list = (dirPath, dirNode, prefix) => {
    for (const name of [...dirNode.children].sort()) {
      const childPath = joinPath(dirPath, name);
      const child = lookup(childPath);
      if (!child) continue;
      if (withFileTypes) results.push(new Dirent(name, child.kind, dirPath));
      else {
        const relative = prefix ? `${prefix}/${name}` : name;
        results.push(encoding === "buffer" ? Buffer.from(relative) : relative);
      }
      if (recursive && child.kind === "dir" && !denial("read", childPath)) list(childPath, child, prefix ? `${prefix}/${name}` : name);
    }
  };
  list(resolved, node, "");
  return results;
}

export function mkdirSync(path, options) {
  const { recursive, mode } = typeof options === "number" || typeof options === "string" ? { mode: options } : optionsOf(options);
  const resolved = resolvePath(path);
  const dirMode = parseMode(mode, 0o755);
  if (!recursive) {
    checkWrite(resolved, "mkdir");
    if (lookup(resolved)) throw fsError("EEXIST", "mkdir", resolved);
    parentDir(resolved, "mkdir");
    reserve(0, 1, "mkdir", resolved);
    attach(resolved, newDir(dirMode, Date.now()));
    return undefined;
  }
  const parts = resolved.split("/").filter(Boolean);
  let at = ROOT_PATH;
  let first;
  for (const part of parts) {
    at = joinPath(at, part);
    const node = lookup(at);
    if (node) {
      if (node.kind !== "dir") throw fsError(at === resolved ? "EEXIST" : "ENOTDIR", "mkdir", resolved);
      continue;
    }
    checkWrite(at, "mkdir", undefined, resolved);
    reserve(0, 1, "mkdir", resolved);
    attach(at, newDir(dirMode, Date.now()));
    first ??= at;
  }
  return first === undefined ? undefined : asGiven(path, resolved, first);
}

/** `ancestor` (of `resolved`, which the caller wrote as `path`) in the caller's terms, as Node reports it. */
function asGiven(path, resolved, ancestor) {
  const text = pathText(path);
  if (text.startsWith("/")) return ancestor;
  const parts = text.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) return ancestor;
  const drop = resolved.split("/").filter(Boolean).length - ancestor.split("/").filter(Boolean).length;
  return parts.slice(0, parts.length - drop).join("/");
}

export function mkdtempSync(prefix, options) {
  const { encoding } = optionsOf(options);
  const text = pathText(prefix, "prefix");
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (;;) {
    let suffix = "";
    for (let i = 0; i < 6; i += 1) suffix += alphabet[Math.floor(Math.random() * alphabet.length)];
    const candidate = `${text}${suffix}`;
    if (lookup(resolvePath(candidate))) continue;
    mkdirSync(candidate);
    return encoding === "buffer" ? Buffer.from(candidate) : candidate;
  }
}

export function rmdirSync(path, options) {
  const resolved = resolvePath(path);
  checkWrite(resolved, "rmdir");
  const node = existing(resolved, "rmdir");
  if (node.kind !== "dir") throw fsError("ENOTDIR", "rmdir", resolved);
  checkNotBusy(resolved, "rmdir");
  // A sealed directory is not empty: it holds entries the guest cannot see.
  if (node.children.size > 0 || node.sealed) {
    if (!options?.recursive) throw fsError("ENOTEMPTY", "rmdir", resolved);
    checkSubtreeWritable(resolved, "rmdir");
  }
  detach(resolved);
}

export function rmSync(path, options) {
  const { recursive, force } = optionsOf(options);
  const resolved = resolvePath(path);
  checkWrite(resolved, "rm");
  const node = lookup(resolved);
  if (!node) {
    if (force) return;
    throw missing("rm", resolved);
  }
  if (node.kind === "dir") {
    if (!recursive) {
      const error = new Error(`Path is a directory: rm returned EISDIR (is a directory) ${resolved}`);
      Object.assign(error, { code: "ERR_FS_EISDIR", errno: 21, syscall: "rm", path: resolved });
      throw error;
    }
    checkNotBusy(resolved, "rm");
    checkSubtreeWritable(resolved, "rm");
  }
  detach(resolved);
}

function checkSubtreeWritable(path, syscall) {
  const s = state();
  if (!s.policy) return;
  const walk = (at) => {
    checkWrite(at, syscall);
    const node = s.nodes.get(at);
    if (node.sealed) throw fsError("EACCES", syscall, at, undefined, "it holds entries permissions.fs denies");
    if (node.kind === "dir") for (const name of node.children) walk(joinPath(at, name));
  };
  walk(path);
}

export function unlinkSync(path) {
  const resolved = resolvePath(path);
  checkWrite(resolved, "unlink");
  const node = existing(resolved, "unlink");
  if (node.kind === "dir") throw fsError("EISDIR", "unlink", resolved);
  detach(resolved);
}

export function renameSync(oldPath, newPath) {
  const from = resolvePath(oldPath, "oldPath");
  const to = resolvePath(newPath, "newPath");
  const s = state();
  checkRead(from, "rename", to);
  checkWrite(from, "rename", to);
  checkWrite(to, "rename", to, from);
  const node = lookup(from);
  if (!node) throw missing("rename", from, to);
  parentDir(to, "rename", to, from);
  if (from === to) return;
  checkNotBusy(from, "rename", to);
  checkNotBusy(to, "rename", to);
  if (node.kind === "dir" && to.startsWith(`${from}/`)) throw fsError("EINVAL", "rename", from, to);
  const target = lookup(to);
  if (target) {
    if (node.kind === "file" && target.kind === "dir") throw fsError("EISDIR", "rename", from, to);
    if (node.kind === "dir" && target.kind === "file") throw fsError("ENOTDIR", "rename", from, to);
    if (target.kind === "dir" && target.children.size > 0) throw fsError("ENOTEMPTY", "rename", from, to);
  }
  const moving = [];
  const walk = (at) => {
    const entry = s.nodes.get(at);
    if (entry.kind === "file" && entry.denied) throw fsError("EACCES", "rename", from, to, `denied by permissions.fs: ${at} cannot be read`);
    if (entry.sealed) throw fsError("EACCES", "rename", from, to, `denied by permissions.fs: ${at} holds entries it denies`);
    if (s.policy && at !== from) {
      checkWrite(at, "rename", to, from);
      checkWrite(to + at.slice(from.length), "rename", to, from);
    }
    moving.push(at);
    if (entry.kind === "dir") for (const name of entry.children) walk(joinPath(at, name));
  };
  walk(from);
  if (target) detach(to);
  const entries = detach(from, { release: false });
  const parent = s.nodes.get(parentOf(to));
  for (const [at, entry] of entries) {
    const destination = to + at.slice(from.length);
    s.nodes.set(destination, entry);
    if (entry.kind === "dir") s.createdDirs.add(destination);
    else s.written.add(destination);
  }
  parent.children.add(baseName(to));
  parent.mtimeMs = Date.now();
  s.changed = true;
}

export function copyFileSync(src, dest, mode = 0) {
  const from = resolvePath(src, "src");
  const to = resolvePath(dest, "dest");
  checkRead(from, "copyfile", to);
  const node = lookup(from);
  if (!node) throw missing("copyfile", from, to);
  if (node.kind === "dir") throw fsError("EISDIR", "copyfile", from, to);
  checkWrite(to, "copyfile", to, from);
  const target = lookup(to);
  if (target && mode & constants.COPYFILE_EXCL) throw fsError("EEXIST", "copyfile", from, to);
  if (target?.kind === "dir") throw fsError("EISDIR", "copyfile", from, to);
  if (!target) parentDir(to, "copyfile", to, from);
  putFile(to, Buffer.from(fileBytes(node)), { mode: node.mode, syscall: "copyfile" });
}

export function cpSync(src, dest, options) {
  const { recursive, force = true, errorOnExist = false, filter } = optionsOf(options);
  const from = resolvePath(src, "src");
  const to = resolvePath(dest, "dest");
  checkRead(from, "cp");
  const node = existing(from, "cp");
  if (node.kind === "dir" && to.startsWith(`${from}/`)) {
    throw argError("ERR_FS_CP_EINVAL", `Invalid src or dest: cp returned EINVAL (cannot copy ${from} to a subdirectory of self ${to}) ${to}`, Error);
  }
  const copy = (at, destination) => {
    if (filter && !filter(at, destination)) return;
    const entry = lookup(at);
    if (entry.kind === "dir") {
      if (!recursive) {
        throw argError("ERR_FS_EISDIR", `Recursive option is required to copy a directory: cp returned EISDIR (${at} is a directory (not copied)) ${at}`, Error);
      }
      const existingDest = lookup(destination);
      if (!existingDest) mkdirSync(destination, { recursive: true });
      else if (existingDest.kind !== "dir") throw fsError("ENOTDIR", "cp", destination);
      for (const name of [...entry.children].sort()) copy(joinPath(at, name), joinPath(destination, name));
      return;
    }
    const existingDest = lookup(destination);
    if (existingDest) {
      if (!force) {
        if (errorOnExist) throw argError("ERR_FS_CP_EEXIST", `Target already exists: cp returned EEXIST (${destination} already exists) ${destination}`, Error);
        return;
      }
    }
    copyFileSync(at, destination);
  };
  copy(from, to);
}

export function realpathSync(path, options) {
  const { encoding } = optionsOf(options);
  const resolved = resolvePath(path);
  checkRead(resolved, "lstat");
  existing(resolved, "lstat");
  return encoding === "buffer" ? Buffer.from(resolved) : resolved;
}
realpathSync.native = function realpathSyncNative(path, options) {
  const { encoding } = optionsOf(options);
  const resolved = resolvePath(path);
  checkRead(resolved, "realpath");
  existing(resolved, "realpath");
  return encoding === "buffer" ? Buffer.from(resolved) : resolved;
};

export function readlinkSync(path) {
  const resolved = resolvePath(path);
  checkRead(resolved, "readlink");
  existing(resolved, "readlink");
  throw fsError("EINVAL", "readlink", resolved);
}

export function symlinkSync(target, path) {
  const resolved = resolvePath(path);
  checkWrite(resolved, "symlink", undefined);
  throw fsError("EPERM", "symlink", pathText(target, "target"), resolved, "the virtual filesystem has no links");
}

export function linkSync(existingPath, newPath) {
  const from = resolvePath(existingPath, "existingPath");
  const to = resolvePath(newPath, "newPath");
  checkWrite(to, "link", to, from);
  throw fsError("EPERM", "link", from, to, "the virtual filesystem has no links");
}

export function truncateSync(path, len = 0) {
  if (typeof path === "number") return ftruncateSync(path, len);
  const resolved = resolvePath(path);
  checkWrite(resolved, "open");
  const node = existing(resolved, "open");
  if (node.kind === "dir") throw fsError("EISDIR", "open", resolved);
  resize(node, resolved, len);
}

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

export function utimesSync(path, atime, mtime) {
  const resolved = resolvePath(path);
  checkWrite(resolved, "utime");
  const node = existing(resolved, "utime");
  node.atimeMs = toMs(atime);
  node.mtimeMs = toMs(mtime);
  state().metaChanged.add(resolved);
  state().changed = true;
}
export const lutimesSync = utimesSync;

export function chmodSync(path, mode) {
  const resolved = resolvePath(path);
  checkWrite(resolved, "chmod");
  const node = existing(resolved, "chmod");
  node.mode = parseMode(mode, node.mode);
  state().metaChanged.add(resolved);
  state().changed = true;
}
export const lchmodSync = chmodSync;

export function chownSync(path) {
  const resolved = resolvePath(path);
  checkWrite(resolved, "chown");
  existing(resolved, "chown");
}
export const lchownSync = chownSync;

export function opendirSync(path, options) {
  const resolved = resolvePath(path);
  checkRead(resolved, "opendir");
  const node = lookup(resolved);
  if (!node) throw missing("opendir", resolved);
  if (node.kind !== "dir") throw fsError("ENOTDIR", "opendir", resolved);
  return new Dir(resolved, readdirSync(resolved, { withFileTypes: true, recursive: optionsOf(options).recursive }));
}

export function statfsSync(path, options) {
  const resolved = resolvePath(path);
  checkRead(resolved, "statfs");
  if (!lookup(resolved)) throw missing("statfs", resolved);
  const s = state();
  const total = Number.isFinite(s.maxBytes) ? s.maxBytes : 2 ** 40;
  const blocks = Math.floor(total / 4096);
  const free = Math.max(0, Math.floor((total - s.bytes) / 4096));
  const files = Number.isFinite(s.maxFiles) ? s.maxFiles : 2 ** 31;
  const figures = { type: 0x01021994, bsize: 4096, blocks, bfree: free, bavail: free, files, ffree: Math.max(0, files - s.files) };
  if (!optionsOf(options).bigint) return figures;
  return Object.fromEntries(Object.entries(figures).map(([key, value]) => [key, BigInt(value)]));
}

// ---------------------------------------------------------------------------------------
// File descriptors.

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

// ---------------------------------------------------------------------------------------
// glob: every path under `cwd` (the tree is in memory and bounded by the file cap) tested
// against the patterns with path.matchesGlob.

export function globSync(pattern, options = {}) {
  const patterns = Array.isArray(pattern) ? pattern : [pattern];
  for (const item of patterns) {
    if (typeof item !== "string") throw argError("ERR_INVALID_ARG_TYPE", `The "pattern" argument must be of type string. Received ${describe(item)}`);
  }
  const cwd = resolvePath(options.cwd ?? process.cwd(), "cwd");
  const exclude = options.exclude;
  const excluded = (relative, dirent) =>
    typeof exclude === "function" ? exclude(options.withFileTypes ? dirent : relative) : Array.isArray(exclude) && exclude.some((p) => matchesGlob(relative, p));
  const absolute = patterns.filter((p) => p.startsWith("/"));
  const relativePatterns = patterns.filter((p) => !p.startsWith("/"));
  const results = [];
  const visit = (dirPath, prefix) => {
    const node = lookup(dirPath);
    if (!node || node.kind !== "dir" || denial("read", dirPath)) return;
    for (const name of [...node.children].sort()) {
      const childPath = joinPath(dirPath, name);
      const child = lookup(childPath);
      if (!child) continue;
      const relative = prefix ? `${prefix}/${name}` : name;
      const dirent = new Dirent(name, child.kind, dirPath);
      if (excluded(relative, dirent)) continue;
      if (relativePatterns.some((p) => matchesGlob(relative, p)) || absolute.some((p) => matchesGlob(childPath, p))) {
        results.push(options.withFileTypes ? dirent : absolute.length > 0 && !relativePatterns.some((p) => matchesGlob(relative, p)) ? childPath : relative);
      }
      if (child.kind === "dir") visit(childPath, relative);
    }
  };
  visit(cwd, "");
  if (absolute.length > 0 && cwd !== ROOT_PATH) {
    for (const top of new Set(absolute.map((p) => "/" + p.split("/").filter(Boolean)[0]))) {
      if (!under(top, cwd) && !under(cwd, top)) visit(top, top.slice(1));
    }
  }
  return results;
}

export function glob(pattern, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  if (typeof callback !== "function") {
    throw argError("ERR_INVALID_ARG_TYPE", `The "callback" argument must be of type function. Received ${describe(callback)}`);
  }
  later(callback, () => globSync(pattern, options));
}

async function* globIterator(pattern, options) {
  yield* globSync(pattern, options);
}

// ---------------------------------------------------------------------------------------
// Unsupported here.

function unsupported(name) {
  return function () {
    throw argError("ERR_FEATURE_UNAVAILABLE_ON_PLATFORM", `fs.${name} is not supported by the secure-exec virtual filesystem`, Error);
  };
}
export const watch = unsupported("watch");
export const watchFile = unsupported("watchFile");
export const unwatchFile = unsupported("unwatchFile");

// ---------------------------------------------------------------------------------------
// Callback forms: the work is done at once; the callback runs on a later microtask.

function later(callback, work) {
  let result;
  let error = null;
  try {
    result = work();
  } catch (caught) {
    // Argument errors are thrown at the call, as Node does; the operation's go to the callback.
    if (typeof caught?.code === "string" && caught.code.startsWith("ERR_") && (caught instanceof TypeError || caught instanceof RangeError)) throw caught;
    error = caught;
  }
  queueMicrotask(() => (error ? callback(error) : callback(null, result)));
}

function callbackForm(name, syncFn) {
  const wrapped = {
    [name](...args) {
      const callback = args[args.length - 1];
      if (typeof callback !== "function") {
        throw argError("ERR_INVALID_ARG_TYPE", `The "cb" argument must be of type function. Received ${describe(callback)}`);
      }
      args.pop();
      later(callback, () => syncFn(...args));
    },
  };
  return wrapped[name];
}

export const readFile = callbackForm("readFile", readFileSync);
export const writeFile = callbackForm("writeFile", writeFileSync);
export const appendFile = callbackForm("appendFile", appendFileSync);
export const readdir = callbackForm("readdir", readdirSync);
export const stat = callbackForm("stat", statSync);
export const lstat = callbackForm("lstat", lstatSync);
export const fstat = callbackForm("fstat", fstatSync);
export const mkdir = callbackForm("mkdir", mkdirSync);
export const mkdtemp = callbackForm("mkdtemp", mkdtempSync);
export const rmdir = callbackForm("rmdir", rmdirSync);
export const rm = callbackForm("rm", rmSync);
export const unlink = callbackForm("unlink", unlinkSync);
export const rename = callbackForm("rename", renameSync);
export const copyFile = callbackForm("copyFile", copyFileSync);
export const cp = callbackForm("cp", cpSync);
export const access = callbackForm("access", accessSync);
export const realpath = callbackForm("realpath", realpathSync);
realpath.native = callbackForm("realpath", realpathSync.native);
export const readlink = callbackForm("readlink", readlinkSync);
export const symlink = callbackForm("symlink", symlinkSync);
export const link = callbackForm("link", linkSync);
export const truncate = callbackForm("truncate", truncateSync);
export const ftruncate = callbackForm("ftruncate", ftruncateSync);
export const utimes = callbackForm("utimes", utimesSync);
export const lutimes = callbackForm("lutimes", lutimesSync);
export const futimes = callbackForm("futimes", futimesSync);
export const chmod = callbackForm("chmod", chmodSync);
export const lchmod = callbackForm("lchmod", lchmodSync);
export const fchmod = callbackForm("fchmod", fchmodSync);
export const chown = callbackForm("chown", chownSync);
export const lchown = callbackForm("lchown", lchownSync);
export const fchown = callbackForm("fchown", fchownSync);
export const open = callbackForm("open", openSync);
const closeWithCallback = callbackForm("close", closeSync);
export function close(fd, callback = () => {}) {
  closeWithCallback(fd, callback);
}
export const fsync = callbackForm("fsync", fsyncSync);
export const fdatasync = callbackForm("fdatasync", fdatasyncSync);
export const opendir = callbackForm("opendir", opendirSync);
export const statfs = callbackForm("statfs", statfsSync);

export function exists(path, callback) {
  if (typeof callback !== "function") {
    throw argError("ERR_INVALID_ARG_TYPE", `The "cb" argument must be of type function. Received ${describe(callback)}`);
  }
  const result = existsSync(path);
  queueMicrotask(() => callback(result));
}
Object.defineProperty(exists, Symbol.for("nodejs.util.promisify.custom"), {
  value: (path) => Promise.resolve(existsSync(path)),
});

export function read(fd, buffer, offset, length, position, callback) {
  if (typeof buffer === "function") {
    callback = buffer;
    buffer = Buffer.alloc(16384);
    offset = 0;
    length = buffer.length;
    position = null;
  } else if (typeof offset === "function") {
    callback = offset;
    offset = undefined;
  } else if (typeof length === "function") {
    callback = length;
    length = undefined;
  } else if (typeof position === "function") {
    callback = position;
    position = null;
  }
  let bytesRead;
  let error = null;
  try {
    bytesRead = readSync(fd, buffer, offset, length, position);
  } catch (caught) {
    error = caught;
  }
  queueMicrotask(() => (error ? callback(error) : callback(null, bytesRead, buffer)));
}
Object.defineProperty(read, Symbol.for("nodejs.util.promisify.custom"), {
  value: (fd, buffer, offset, length, position) =>
    new Promise((resolve, reject) =>
      read(fd, buffer, offset, length, position, (error, bytesRead, filled) => (error ? reject(error) : resolve({ bytesRead, buffer: filled }))),
    ),
});

export function write(fd, buffer, ...rest) {
  const callback = rest.pop();
  let written;
  let error = null;
  try {
    written = writeSync(fd, buffer, ...rest);
  } catch (caught) {
    error = caught;
  }
  queueMicrotask(() => (error ? callback(error) : callback(null, written, buffer)));
}
Object.defineProperty(write, Symbol.for("nodejs.util.promisify.custom"), {
  value: (fd, buffer, ...rest) =>
    new Promise((resolve, reject) =>
      write(fd, buffer, ...rest, (error, bytesWritten, source) => (error ? reject(error) : resolve({ bytesWritten, buffer: source }))),
    ),
});

export function readv(fd, buffers, position, callback) {
  if (typeof position === "function") {
    callback = position;
    position = null;
  }
  later((error, bytesRead) => callback(error, bytesRead, buffers), () => readvSync(fd, buffers, position));
}

export function writev(fd, buffers, position, callback) {
  if (typeof position === "function") {
    callback = position;
    position = null;
  }
  later((error, written) => callback(error, written, buffers), () => writevSync(fd, buffers, position));
}

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

// ---------------------------------------------------------------------------------------
// Promise forms.

let EventEmitterClass;

export class FileHandle {
  constructor(fd) {
    this.fd = fd;
  }
  /** Its events (node:events loads on first use). */
  _emitter() {
    EventEmitterClass ??= process.getBuiltinModule("node:events").EventEmitter;
    return (this._events ??= new EventEmitterClass());
  }
  on(event, listener) {
    this._emitter().on(event, listener);
    return this;
  }
  once(event, listener) {
    this._emitter().once(event, listener);
    return this;
  }
  off(event, listener) {
    this._emitter().off(event, listener);
    return this;
  }
  addListener(event, listener) {
    return this.on(event, listener);
  }
  removeListener(event, listener) {
    return this.off(event, listener);
  }
  removeAllListeners(event) {
    this._emitter().removeAllListeners(event);
    return this;
  }
  emit(event, ...args) {
    return this._events ? this._events.emit(event, ...args) : false;
  }
  listenerCount(event) {
    return this._events ? this._events.listenerCount(event) : 0;
  }
  async readFile(options) {
    return readFileSync(this.fd, options);
  }
  async writeFile(data, options) {
    writeFileSync(this.fd, await bytesOfData(data, optionsOf(options, { encoding: "utf8" }).encoding), options);
  }
  async appendFile(data, options) {
    appendFileSync(this.fd, await bytesOfData(data, optionsOf(options, { encoding: "utf8" }).encoding), options);
  }
  async read(buffer, offset, length, position) {
    if (buffer === undefined || (buffer !== null && typeof buffer === "object" && !ArrayBuffer.isView(buffer))) {
      const opts = buffer ?? {};
      buffer = opts.buffer ?? Buffer.alloc(16384);
      offset = opts.offset ?? 0;
      length = opts.length ?? buffer.byteLength - offset;
      position = opts.position ?? null;
    }
    const bytesRead = readSync(this.fd, buffer, offset, length, position);
    return { bytesRead, buffer };
  }
  async write(buffer, ...rest) {
    const bytesWritten = writeSync(this.fd, buffer, ...rest);
    return { bytesWritten, buffer };
  }
  async readv(buffers, position) {
    return { bytesRead: readvSync(this.fd, buffers, position), buffers };
  }
  async writev(buffers, position) {
    return { bytesWritten: writevSync(this.fd, buffers, position), buffers };
  }
  async stat(options) {
    return fstatSync(this.fd, options);
  }
  async truncate(len) {
    ftruncateSync(this.fd, len);
  }
  async utimes(atime, mtime) {
    futimesSync(this.fd, atime, mtime);
  }
  async chmod(mode) {
    fchmodSync(this.fd, mode);
  }
  async chown() {
    fchownSync(this.fd);
  }
  async sync() {
    fsyncSync(this.fd);
  }
  async datasync() {
    fsyncSync(this.fd);
  }
  async close() {
    if (!state().fds.has(this.fd)) return;
    closeSync(this.fd);
    this.fd = -1;
    this.emit("close");
  }
  createReadStream(options) {
    return createReadStream(undefined, { ...options, fd: this.fd });
  }
  createWriteStream(options) {
    return createWriteStream(undefined, { ...options, fd: this.fd });
  }
  async *readLines(options) {
    const text = readFileSync(this.fd, { encoding: options?.encoding ?? "utf8" });
    const lines = text.split(/\r?\n/);
    if (lines[lines.length - 1] === "") lines.pop();
    yield* lines;
  }
  async [Symbol.asyncDispose]() {
    await this.close();
  }
}

const promiseForm = (syncFn) =>
  async function (...args) {
    return syncFn(...args);
  };

async function bytesOfData(data, encoding) {
  if (typeof data === "string" || ArrayBuffer.isView(data)) return toBytes(data, encoding);
  if (data && (typeof data[Symbol.asyncIterator] === "function" || typeof data[Symbol.iterator] === "function")) {
    const chunks = [];
    for await (const chunk of data) chunks.push(toBytes(chunk, encoding));
    return Buffer.concat(chunks);
  }
  return toBytes(data, encoding);
}

export const promises = {
  constants,
  access: promiseForm(accessSync),
  appendFile: async (path, data, options) =>
    path instanceof FileHandle ? path.appendFile(data, options) : appendFileSync(path, await bytesOfData(data, optionsOf(options).encoding), options),
  chmod: promiseForm(chmodSync),
  chown: promiseForm(chownSync),
  copyFile: promiseForm(copyFileSync),
  cp: promiseForm(cpSync),
  lchmod: promiseForm(lchmodSync),
  lchown: promiseForm(lchownSync),
  link: promiseForm(linkSync),
  lstat: promiseForm(lstatSync),
  lutimes: promiseForm(lutimesSync),
  mkdir: promiseForm(mkdirSync),
  mkdtemp: promiseForm(mkdtempSync),
  open: async (path, flags, mode) => new FileHandle(openSync(path, flags, mode)),
  opendir: promiseForm(opendirSync),
  readdir: promiseForm(readdirSync),
  readFile: async (path, options) => (path instanceof FileHandle ? path.readFile(options) : readFileSync(path, options)),
  readlink: promiseForm(readlinkSync),
  realpath: promiseForm(realpathSync),
  rename: promiseForm(renameSync),
  rm: promiseForm(rmSync),
  rmdir: promiseForm(rmdirSync),
  stat: promiseForm(statSync),
  statfs: promiseForm(statfsSync),
  symlink: promiseForm(symlinkSync),
  truncate: promiseForm(truncateSync),
  unlink: promiseForm(unlinkSync),
  utimes: promiseForm(utimesSync),
  watch: unsupported("promises.watch"),
  glob: (pattern, options) => globIterator(pattern, options),
  writeFile: async (path, data, options) =>
    path instanceof FileHandle ? path.writeFile(data, options) : writeFileSync(path, await bytesOfData(data, optionsOf(options, { encoding: "utf8" }).encoding), options),
};

const fsModule = {
  constants,
  F_OK,
  R_OK,
  W_OK,
  X_OK,
  Stats,
  Dirent,
  Dir,
  get ReadStream() {
    return ReadStream;
  },
  get WriteStream() {
    return WriteStream;
  },
  get FileReadStream() {
    return ReadStream;
  },
  get FileWriteStream() {
    return WriteStream;
  },
  createReadStream,
  createWriteStream,
  existsSync,
  exists,
  accessSync,
  access,
  statSync,
  stat,
  lstatSync,
  lstat,
  fstatSync,
  fstat,
  statfsSync,
  statfs,
  readFileSync,
  readFile,
  writeFileSync,
  writeFile,
  appendFileSync,
  appendFile,
  readdirSync,
  readdir,
  opendirSync,
  opendir,
  mkdirSync,
  mkdir,
  mkdtempSync,
  mkdtemp,
  rmdirSync,
  rmdir,
  rmSync,
  rm,
  unlinkSync,
  unlink,
  renameSync,
  rename,
  copyFileSync,
  copyFile,
  cpSync,
  cp,
  realpathSync,
  realpath,
  readlinkSync,
  readlink,
  symlinkSync,
  symlink,
  linkSync,
  link,
  truncateSync,
  truncate,
  ftruncateSync,
  ftruncate,
  utimesSync,
  utimes,
  lutimesSync,
  lutimes,
  futimesSync,
  futimes,
  chmodSync,
  chmod,
  lchmodSync,
  lchmod,
  fchmodSync,
  fchmod,
  chownSync,
  chown,
  lchownSync,
  lchown,
  fchownSync,
  fchown,
  openSync,
  open,
  closeSync,
  close,
  readSync,
  read,
  writeSync,
  write,
  readvSync,
  readv,
  writevSync,
  writev,
  fsyncSync,
  fsync,
  fdatasyncSync,
  fdatasync,
  watch,
  watchFile,
  unwatchFile,
  globSync,
  glob,
  promises,
};
export default fsModule;


for (const name of ["fs", "node:fs"]) sandboxBuiltins.set(name, fsModule);
for (const name of ["fs/promises", "node:fs/promises"]) sandboxBuiltins.set(name, fsModule.promises);
