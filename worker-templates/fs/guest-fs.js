// `node:fs` for guests: the runtime's virtual filesystem. The host ships a snapshot with
// the run (files, directories, read-only prefixes, the byte/file budget and the
// `permissions.fs` policy); the guest reads and writes it in memory, so the sync forms
// work, and hands the changes back at the end of the run. The host re-checks them.
// Nothing here loads a builtin at import time: streams load `node:stream` on first use.
import { constants, F_OK, R_OK, W_OK, X_OK, unsupported } from "./secure-exec-fs-errors.js";
import { Stats, Dirent, Dir } from "./secure-exec-fs-stats.js";
import { existsSync, accessSync, statSync, lstatSync, readFileSync, writeFileSync, appendFileSync, readdirSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, unlinkSync, renameSync, copyFileSync, cpSync, realpathSync, readlinkSync, symlinkSync, linkSync, truncateSync, utimesSync, lutimesSync, chmodSync, lchmodSync, chownSync, lchownSync, opendirSync, statfsSync, globSync, glob } from "./secure-exec-fs-sync.js";
import { openSync, closeSync, fstatSync, fsyncSync, fdatasyncSync, ftruncateSync, futimesSync, fchmodSync, fchownSync, readSync, writeSync, readvSync, writevSync } from "./secure-exec-fs-fd.js";
import { readFile, writeFile, appendFile, readdir, stat, lstat, fstat, mkdir, mkdtemp, rmdir, rm, unlink, rename, copyFile, cp, access, realpath, readlink, symlink, link, truncate, ftruncate, utimes, lutimes, futimes, chmod, lchmod, fchmod, chown, lchown, fchown, open, close, fsync, fdatasync, opendir, statfs, exists, read, write, readv, writev } from "./secure-exec-fs-callbacks.js";
import { ReadStream, WriteStream, FileReadStream, FileWriteStream, createReadStream, createWriteStream } from "./secure-exec-fs-streams.js";
import { FileHandle, promises } from "./secure-exec-fs-handle.js";
import { sandboxBuiltins } from "./secure-exec-bridge.js";

export const watch = unsupported("watch");
export const watchFile = unsupported("watchFile");
export const unwatchFile = unsupported("unwatchFile");

export { constants, F_OK, R_OK, W_OK, X_OK, Stats, Dirent, Dir, existsSync, accessSync, statSync, lstatSync, readFileSync, writeFileSync, appendFileSync, readdirSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, unlinkSync, renameSync, copyFileSync, cpSync, realpathSync, readlinkSync, symlinkSync, linkSync, truncateSync, utimesSync, lutimesSync, chmodSync, lchmodSync, chownSync, lchownSync, opendirSync, statfsSync, openSync, closeSync, fstatSync, fsyncSync, fdatasyncSync, ftruncateSync, futimesSync, fchmodSync, fchownSync, readSync, writeSync, readvSync, writevSync, globSync, glob, readFile, writeFile, appendFile, readdir, stat, lstat, fstat, mkdir, mkdtemp, rmdir, rm, unlink, rename, copyFile, cp, access, realpath, readlink, symlink, link, truncate, ftruncate, utimes, lutimes, futimes, chmod, lchmod, fchmod, chown, lchown, fchown, open, close, fsync, fdatasync, opendir, statfs, exists, read, write, readv, writev, ReadStream, WriteStream, FileReadStream, FileWriteStream, createReadStream, createWriteStream, FileHandle, promises };

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
