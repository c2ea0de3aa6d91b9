// Part of `node:fs` for guests (guest-fs.js): the sync API over paths, and glob.
import { matchesGlob } from "./secure-exec-path.js";
import { F_OK, W_OK, fsError, constants, argError, describe, later } from "./secure-exec-fs-errors.js";
import { denial, state, checkRead, checkWrite, fileBytes, reserve, newDir, checkNotBusy } from "./secure-exec-fs-store.js";
import { resolvePath, joinPath, ROOT_PATH, pathText, parentOf, baseName, under } from "./secure-exec-fs-paths.js";
import { existing, lookup, missing, optionsOf, encodeOut, parseFlags, putFile, toBytes, parseMode, parentDir, attach, detach } from "./secure-exec-fs-ops.js";
import { Stats, bigintStats, Dirent, Dir } from "./secure-exec-fs-stats.js";
import { readAllFd, writeFd, ftruncateSync, resize, toMs } from "./secure-exec-fs-fd.js";

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

export { globIterator };
