// Part of `node:fs` for guests (guest-fs.js): Stats, Dirent and Dir.
import { S_IFDIR, S_IFREG, S_IFMT, S_IFLNK, argError, later } from "./secure-exec-fs-errors.js";

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

export { bigintStats };
