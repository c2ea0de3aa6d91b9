// Part of `node:fs` for guests (guest-fs.js): FileHandle and the promise forms (`fs.promises`).
import { constants, unsupported } from "./secure-exec-fs-errors.js";
import { state } from "./secure-exec-fs-store.js";
import { optionsOf, toBytes } from "./secure-exec-fs-ops.js";
import { readFileSync, writeFileSync, appendFileSync, accessSync, chmodSync, chownSync, copyFileSync, cpSync, lchmodSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, opendirSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, rmdirSync, statSync, statfsSync, symlinkSync, truncateSync, unlinkSync, utimesSync, globIterator } from "./secure-exec-fs-sync.js";
import { readSync, writeSync, readvSync, writevSync, fstatSync, ftruncateSync, futimesSync, fchmodSync, fchownSync, fsyncSync, closeSync, openSync } from "./secure-exec-fs-fd.js";
import { createReadStream, createWriteStream } from "./secure-exec-fs-streams.js";

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
