// Part of `node:fs` for guests (guest-fs.js): the callback forms.
import { argError, describe, later } from "./secure-exec-fs-errors.js";
import { readFileSync, writeFileSync, appendFileSync, readdirSync, statSync, lstatSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, unlinkSync, renameSync, copyFileSync, cpSync, accessSync, realpathSync, readlinkSync, symlinkSync, linkSync, truncateSync, utimesSync, lutimesSync, chmodSync, lchmodSync, chownSync, lchownSync, opendirSync, statfsSync, existsSync } from "./secure-exec-fs-sync.js";
import { fstatSync, ftruncateSync, futimesSync, fchmodSync, fchownSync, openSync, closeSync, fsyncSync, fdatasyncSync, readSync, writeSync, readvSync, writevSync } from "./secure-exec-fs-fd.js";

// ---------------------------------------------------------------------------------------
// Callback forms: the work is done at once; the callback runs on a later microtask.

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
