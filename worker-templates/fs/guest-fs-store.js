// Part of `node:fs` for guests (guest-fs.js): the in-memory tree (inodes and their bytes),
// built from the run's snapshot on first use, the changes handed back at the end, and the
// rules every operation checks (permissions.fs, read-only mounts, the byte and file budget).
import { bridge } from "./secure-exec-bridge.js";
import { fsError } from "./secure-exec-fs-errors.js";
import { ROOT_PATH, parentOf, baseName, under } from "./secure-exec-fs-paths.js";

// ---------------------------------------------------------------------------------------
// The in-memory tree, built from the snapshot on first use.

let fsState;
let nextIno = 1000;

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
    blocked: new Set(snapshot.blocked ?? []),
    hiddenLinks: new Map(Object.entries(snapshot.hiddenLinks ?? {})),
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
    if (meta?.realPath) node.realPath = meta.realPath;
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
    if (entry.realPath) node.realPath = entry.realPath;
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

/** Where `path` really is in a mount, when a host link on its way leads elsewhere there. */
function realPathOf(path) {
  const { nodes, hiddenLinks } = state();
  for (let at = path; ; at = parentOf(at)) {
    const real = nodes.get(at)?.realPath ?? hiddenLinks.get(at);
    if (real !== undefined) return at === path ? real : real + path.slice(at.length);
    if (at === ROOT_PATH) return undefined;
  }
}

/** At or below a host link the guest does not see (dangling, or out of the mount). */
function isBlocked(path) {
  const { blocked } = state();
  if (blocked.size === 0) return false;
  for (let at = path; at !== ROOT_PATH; at = parentOf(at)) if (blocked.has(at)) return true;
  return false;
}

/** Judged where the host will judge it: at the path, and at its real place behind a host link. */
function checkWrite(path, syscall, dest, reported = path) {
  if (isBlocked(path)) throw fsError("ENOENT", syscall, reported, dest);
  const real = realPathOf(path);
  const reason = denial("write", path) ?? (real === undefined ? undefined : denial("write", real));
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

export { state, checkWrite, checkRead, reserve, writeInto, setContents, newFile, denial, fileBytes, newDir, checkNotBusy };
