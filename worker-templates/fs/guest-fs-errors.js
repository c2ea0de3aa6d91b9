// Part of `node:fs` for guests (guest-fs.js): its constants, errors shaped like Node's, and
// how a failure reaches a callback.

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

/** Errors name paths as the caller wrote them (Node does): resolved path -> given text. */
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

function unsupported(name) {
  return function () {
    throw argError("ERR_FEATURE_UNAVAILABLE_ON_PLATFORM", `fs.${name} is not supported by the secure-exec virtual filesystem`, Error);
  };
}
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

export { fsError, argError, describe, shownAs, O_RDWR, O_WRONLY, O_CREAT, O_TRUNC, O_EXCL, O_APPEND, S_IFDIR, S_IFREG, S_IFMT, S_IFLNK, later, unsupported };
