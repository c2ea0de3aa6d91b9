// The runtime's virtual filesystem, kept on the host. Each run that uses `node:fs` gets a
// snapshot (in-memory files, mounted host directories read afresh, the budget and the
// `permissions.fs` policy); what it changes comes back and later runs see it. Everything
// that comes back is re-checked here: a guest can bypass its own `node:fs` (it shares the
// isolate), so the host never trusts the changes it is handed.
import { constants as fsConstants, type Stats, closeSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, writeSync } from "node:fs";
import { lstat, readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { globMatches } from "../../api/options-core.js";

export const DEFAULT_FS_BYTES = 8 * 1024 * 1024;
export const DEFAULT_FS_FILES = 10_000;

type Decision = "allow" | "deny";
/** `permissions.fs`: `"allow" | "deny" | { default, rules: [{ pattern, action }] }` on guest paths. */
export type FsPolicy = Decision | { default: Decision; rules: { pattern: string; action: Decision }[] };

export interface MountOptions {
  /** Host directory (resolved against the host's cwd when relative). */
  hostPath: string;
  /** Where the guest sees it (absolute). */
  guestPath: string;
  /** Writes fail with EROFS in the guest (default `true`). */
  readOnly?: boolean;
}

export interface VirtualFsOptions {
  files?: Record<string, string | Uint8Array>;
  mounts?: MountOptions[];
  /** Byte cap over file contents, mounts included (`limits.fsBytes`). */
  maxBytes?: number;
  /** Cap on files plus directories, mounts included (`limits.fsFiles`). */
  maxFiles?: number;
  policy?: FsPolicy;
  /** Directories that exist from the start (the runtime's `cwd`, `/tmp`). */
  directories?: string[];
}

export interface FsSnapshotFile {
  /** Base64 contents; absent when `permissions.fs` denies reading the file. */
  data?: string;
  size: number;
  mtimeMs: number;
  mode: number;
  /** Where it really is in the mount (reached through a host link): writes are judged there too. */
  realPath?: string;
}

export interface FsSnapshot {
  files: Record<string, FsSnapshotFile>;
  /** `sealed`: it holds entries the guest may neither read nor write (not shipped), so it cannot be removed or moved. */
  dirs: Record<string, SnapshotDir>;
  /** Guest paths under which every write fails with EROFS (read-only mounts). */
  readOnly: string[];
  /** Mount points: they (and directories holding them) cannot be removed or renamed. */
  mounts: string[];
  /** Host links the guest does not see (dangling, or leading out of the mount): nothing can be made there (ENOENT). */
  blocked?: string[];
  /** Host links to what the policy hides, by their real place in the mount: writes there are judged there. */
  hiddenLinks?: Record<string, string>;
  limits: { bytes: number; files: number };
  /** What the filesystem held when the snapshot was taken. */
  usage: { bytes: number; files: number };
  policy?: FsPolicy;
}

export interface SnapshotDir {
  mtimeMs: number;
  mode: number;
  sealed?: true;
  /** Where it really is in the mount (reached through a host link): writes below it are judged there too. */
  realPath?: string;
}

export interface FsChanges {
  /** Paths removed with everything below them; applied first. */
  deletes?: string[];
  /** Directories created. */
  dirs?: string[];
  /** Files created or rewritten: path → base64 contents. */
  writes?: Record<string, string>;
  /** mtime and mode of the entries the run touched. */
  meta?: Record<string, { mtimeMs?: number; mode?: number }>;
}

export class VirtualFsError extends Error {
  constructor(
    readonly code: string,
    readonly syscall: string,
    readonly path: string,
    detail?: string,
  ) {
    super(`${code}: ${DESCRIPTIONS[code] ?? code}, ${syscall} '${path}'${detail ? ` (${detail})` : ""}`);
    this.name = "VirtualFsError";
  }
}

const DESCRIPTIONS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EEXIST: "file already exists",
  EISDIR: "illegal operation on a directory",
  ENOTDIR: "not a directory",
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
  EINVAL: "invalid argument",
  EACCES: "permission denied",
};

interface FileEntry {
  kind: "file";
  data: Uint8Array;
  mtimeMs: number;
  mode: number;
  base64?: string;
}

interface DirEntry {
  kind: "dir";
  mtimeMs: number;
  mode: number;
}

type Entry = FileEntry | DirEntry;

interface CachedHostFile {
  size: number;
  mtimeMs: number;
  ino: number;
  base64: string;
}

interface Mount {
  hostPath: string;
  /** `realpath(hostPath)`: nothing outside it is ever read or written. */
  root: string;
  guestPath: string;
  readOnly: boolean;
  /** Host file contents by real path, reused while size, mtime and inode are unchanged. */
  cache: Map<string, CachedHostFile>;
  /** Bytes and entries the mount held at its last scan. */
  usage: { bytes: number; files: number };
}

interface MountScan {
  files: Record<string, FsSnapshotFile>;
  dirs: Record<string, SnapshotDir>;
  blocked: string[];
  hiddenLinks: Record<string, string>;
  bytes: number;
  entries: number;
}

const ROOT = "/";

/** Guest path, normalised; `undefined` when it is not an absolute path. */
export function normalizeGuestPath(input: string): string | undefined {
  if (typeof input !== "string" || !input.startsWith("/") || input.includes("\0")) return undefined;
  const normalized = path.posix.normalize(input);
  return normalized.length > 1 && normalized.endsWith("/") ? normalized.slice(0, -1) : normalized;
}

function parentOf(guestPath: string): string {
  return path.posix.dirname(guestPath);
}

function under(candidate: string, prefix: string): boolean {
  return prefix === ROOT || candidate === prefix || candidate.startsWith(`${prefix}/`);
}

function insideHost(candidate: string, root: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : `${root}${path.sep}`);
}

/**
 * Why `permissions.fs` denies `op` on `guestPath`, or `undefined` when it is allowed.
 * First matching rule wins; `*` matches any run of characters (in linear time: the path is
 * the guest's); a pattern prefixed with `read:` or `write:` applies to that kind of
 * operation only. (worker-templates/fs/guest-fs.js applies the same rules in the guest.)
 */
export function fsPolicyDenial(policy: FsPolicy | undefined, op: "read" | "write", guestPath: string): string | undefined {
  if (policy === undefined || policy === "allow") return undefined;
  if (policy === "deny") return 'permissions.fs is "deny"';
  for (const rule of policy.rules) {
    const scoped = /^(read|write):/.exec(rule.pattern);
    if (scoped && scoped[1] !== op) continue;
    const glob = scoped ? rule.pattern.slice(scoped[0].length) : rule.pattern;
    if (globMatches(glob, guestPath)) return rule.action === "deny" ? `denied by permissions.fs rule "${rule.pattern}"` : undefined;
  }
  return policy.default === "deny" ? 'denied by permissions.fs default "deny"' : undefined;
}

export class VirtualFs {
  private readonly entries = new Map<string, Entry>([[ROOT, { kind: "dir", mtimeMs: Date.now(), mode: 0o755 }]]);
  private readonly mounts: Mount[] = [];
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly policy: FsPolicy | undefined;
  /** Bytes of file contents and number of entries (files + directories, not `/`) in memory. */
  private bytes = 0;
  private count = 0;
  /** The in-memory part of the snapshot, rebuilt after a change. */
  private cachedBase: Pick<FsSnapshot, "files" | "dirs"> | undefined;
  /** The mount directories resolved during the current `apply()`. */
  private resolving: MountDirs | undefined;

  /** Validates the mounts (they must exist and fit the caps), then seeds `files`. */
  static async create(options: VirtualFsOptions = {}): Promise<VirtualFs> {
    const vfs = new VirtualFs(options);
    await vfs.addMounts(options.mounts ?? []);
    for (const directory of options.directories ?? []) {
      const normalized = requireGuestPath(directory, "mkdir");
      if (!vfs.mountOf(normalized)) vfs.makeDirectories(normalized, "mkdir");
    }
    for (const [guestPath, data] of Object.entries(options.files ?? {})) {
      try {
        vfs.writeFile(guestPath, data);
      } catch (error) {
        throw new Error(`secure-exec: cannot seed files["${guestPath}"]: ${(error as Error).message}`);
      }
    }
    return vfs;
  }

  /** Caps and policy only: `create()` adds the mounts, directories and files. */
  constructor(options: Pick<VirtualFsOptions, "maxBytes" | "maxFiles" | "policy"> = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_FS_BYTES;
    this.maxFiles = options.maxFiles ?? DEFAULT_FS_FILES;
    this.policy = options.policy;
  }

  /** Bytes and entries in use, mounts included (as of their last scan). */
  usage(): { bytes: number; files: number } {
    let bytes = this.bytes;
    let files = this.count;
    for (const mount of this.mounts) {
      bytes += mount.usage.bytes;
      files += mount.usage.files;
    }
    return { bytes, files };
  }

  // -------------------------------------------------------------------------------------
  // Snapshot and apply.

  /** What a run's guest sees. Mounts are read from the host now (unchanged files are cached). */
  async snapshot(): Promise<FsSnapshot> {
    const base = (this.cachedBase ??= this.buildBase());
    let files = base.files;
    let dirs = base.dirs;
    const blocked: string[] = [];
    const hiddenLinks: Record<string, string> = {};
    if (this.mounts.length > 0) {
      files = { ...base.files };
      dirs = { ...base.dirs };
      let bytes = this.bytes;
      let entries = this.count;
      for (const mount of this.mounts) {
        const scan = await this.scanMount(mount, this.maxBytes - bytes, this.maxFiles - entries);
        bytes += scan.bytes;
        entries += scan.entries;
        Object.assign(files, scan.files);
        Object.assign(dirs, scan.dirs);
        blocked.push(...scan.blocked);
        Object.assign(hiddenLinks, scan.hiddenLinks);
      }
    }
    return {
      files,
      dirs,
      ...(blocked.length > 0 ? { blocked } : {}),
      ...(Object.keys(hiddenLinks).length > 0 ? { hiddenLinks } : {}),
      readOnly: this.mounts.filter((mount) => mount.readOnly).map((mount) => mount.guestPath),
      mounts: this.mounts.map((mount) => mount.guestPath),
      limits: { bytes: this.maxBytes, files: this.maxFiles },
      usage: this.usage(),
      policy: this.policy,
    };
  }

  /**
   * Applies what a run changed, re-checking every rule the guest applied to itself:
   * paths, `permissions.fs`, read-only mounts, mount escapes and the caps. A change that
   * breaks one is dropped (only a guest that bypassed `node:fs`, or runs racing for the
   * last bytes of the budget, can produce one). Never throws.
   */
  apply(changes: FsChanges): void {
    if (!changes || typeof changes !== "object") return;
    this.resolving = new MountDirs();
    try {
      this.applyChanges(changes);
    } finally {
      this.resolving = undefined;
    }
  }

  private applyChanges(changes: FsChanges): void {
    // A run cannot honestly change more entries than the filesystem may hold: past that the
    // lists are the guest's forgery (it can bypass its node:fs), and each entry costs host work.
    const most = this.maxFiles + 1;
    const list = (value: unknown): string[] =>
      Array.isArray(value) ? value.slice(0, most).filter((item): item is string => typeof item === "string") : [];
    const valid = (guestPath: string): string | undefined => {
      const normalized = normalizeGuestPath(guestPath);
      if (normalized === undefined || normalized !== guestPath || normalized === ROOT) return undefined;
      if (this.guestDenial("write", normalized)) return undefined;
      return normalized;
    };
    // Ancestors sort before their descendants, so each subtree is looked up once, in a sorted
    // index of the entries (removing thousands of directories one by one was quadratic).
    let sortedKeys: string[] | undefined;
    for (const raw of list(changes.deletes).sort()) {
      const guestPath = valid(raw);
      if (!guestPath || this.holdsMountPoint(guestPath)) continue;
      try {
        const located = this.mountOf(guestPath);
        if (located) {
          if (!located.mount.readOnly) this.removeFromMount(located.mount, located.relative);
        } else {
          if (this.entries.get(guestPath)?.kind === "dir") sortedKeys ??= [...this.entries.keys()].sort();
          this.removeEntry(guestPath, sortedKeys);
        }
      } catch {
        // dropped
      }
    }
    for (const raw of list(changes.dirs).sort()) {
      const guestPath = valid(raw);
      if (!guestPath) continue;
      try {
        const located = this.mountOf(guestPath);
        if (located) {
          if (!located.mount.readOnly) this.mkdirInMount(located.mount, located.relative);
        } else {
          this.makeDirectories(guestPath, "mkdir");
        }
      } catch {
        // dropped
      }
    }
    const writes = changes.writes && typeof changes.writes === "object" ? changes.writes : {};
    for (const [raw, base64] of Object.entries(writes).slice(0, most)) {
      const guestPath = valid(raw);
      if (!guestPath || typeof base64 !== "string") continue;
      try {
        const data = Buffer.from(base64, "base64");
        const located = this.mountOf(guestPath);
        if (located) {
          if (!located.mount.readOnly) this.writeToMount(located.mount, located.relative, data);
        } else {
          this.putFile(guestPath, data, { createParents: true, base64: data.toString("base64") === base64 ? base64 : undefined });
        }
      } catch {
        // dropped
      }
    }
    const meta = changes.meta && typeof changes.meta === "object" ? changes.meta : {};
    for (const [raw, info] of Object.entries(meta).slice(0, 2 * most)) {
      const guestPath = valid(raw);
      const entry = guestPath ? this.entries.get(guestPath) : undefined;
      if (!entry || !info || typeof info !== "object") continue;
      if (typeof info.mtimeMs === "number" && Number.isFinite(info.mtimeMs)) entry.mtimeMs = info.mtimeMs;
      if (typeof info.mode === "number" && Number.isInteger(info.mode)) entry.mode = info.mode & 0o7777;
      this.cachedBase = undefined;
    }
  }

  // -------------------------------------------------------------------------------------
  // The host API (rt.writeFile / readFile / readDir): trusted, so `permissions.fs` does
  // not apply, but read-only mounts, escapes and the caps do.

  writeFile(guestPath: string, data: string | Uint8Array): void {
    const target = requireGuestPath(guestPath, "open");
    const bytes = typeof data === "string" ? Buffer.from(data) : Uint8Array.from(data);
    const located = this.mountOf(target);
    if (located) {
      if (located.mount.readOnly) throw new VirtualFsError("EROFS", "open", target);
      this.writeToMount(located.mount, located.relative, bytes);
      return;
    }
    this.putFile(target, bytes, { createParents: true });
  }

  readFile(guestPath: string): Uint8Array {
    const target = requireGuestPath(guestPath, "open");
    const located = this.mountOf(target);
    if (located) {
      const real = this.resolveInMount(located.mount, located.relative, "open", target);
      if (!lstatSync(real).isFile()) throw new VirtualFsError("EISDIR", "read", target);
      return readFileSync(real);
    }
    const entry = this.entries.get(target);
    if (!entry) throw new VirtualFsError("ENOENT", "open", target);
    if (entry.kind === "dir") throw new VirtualFsError("EISDIR", "read", target);
    return new Uint8Array(entry.data);
  }

  /**
   * A read the host makes on a guest's behalf (the script of a guest's `node <file>`):
   * `permissions.fs` applies, to the normalised path and, inside a mount, to where the host's
   * links lead too. Throws `VirtualFsError` (`EACCES` when the policy denies it).
   */
  readFileForGuest(guestPath: string): Uint8Array {
    const target = normalizeGuestPath(guestPath);
    if (target === undefined) throw new VirtualFsError("ENOENT", "open", String(guestPath).slice(0, 4096));
    const denial = this.guestDenial("read", target);
    if (denial) throw new VirtualFsError("EACCES", "open", target, denial);
    return this.readFile(target);
  }

  readDir(guestPath: string): string[] {
    const target = requireGuestPath(guestPath, "scandir");
    const located = this.mountOf(target);
    if (located) {
      const real = this.resolveInMount(located.mount, located.relative, "scandir", target);
      if (!lstatSync(real).isDirectory()) throw new VirtualFsError("ENOTDIR", "scandir", target);
      const names: string[] = [];
      for (const dirent of readdirSync(real, { withFileTypes: true })) {
        const child = path.join(real, dirent.name);
        try {
          const realChild = realpathSync(child);
          if (!insideHost(realChild, located.mount.root)) continue;
          const info = lstatSync(realChild);
          if (info.isFile() || info.isDirectory()) names.push(dirent.name);
        } catch {
          // a dangling link does not exist
        }
      }
      return names.sort();
    }
    const entry = this.entries.get(target);
    if (!entry) throw new VirtualFsError("ENOENT", "scandir", target);
    if (entry.kind !== "dir") throw new VirtualFsError("ENOTDIR", "scandir", target);
    const prefix = target === ROOT ? ROOT : `${target}/`;
    const names = new Set<string>();
    for (const mount of this.mounts) {
      if (mount.guestPath !== ROOT && parentOf(mount.guestPath) === target) names.add(path.posix.basename(mount.guestPath));
    }
    for (const key of this.entries.keys()) {
      if (key !== ROOT && key.startsWith(prefix) && !key.slice(prefix.length).includes("/")) names.add(key.slice(prefix.length));
    }
    return [...names].sort();
  }

  // -------------------------------------------------------------------------------------
  // In-memory entries.

  private buildBase(): Pick<FsSnapshot, "files" | "dirs"> {
    const files: Record<string, FsSnapshotFile> = {};
    const dirs: Record<string, SnapshotDir> = {};
    const hidden: string[] = [];
    for (const [guestPath, entry] of this.entries) {
      // What the guest may neither read nor write is not there for it: not even its name.
      if (guestPath !== ROOT && this.hidden(guestPath)) {
        hidden.push(guestPath);
        continue;
      }
      if (entry.kind === "dir") {
        if (guestPath !== ROOT) dirs[guestPath] = { mtimeMs: entry.mtimeMs, mode: entry.mode };
        continue;
      }
      const file: FsSnapshotFile = { size: entry.data.byteLength, mtimeMs: entry.mtimeMs, mode: entry.mode };
      if (!fsPolicyDenial(this.policy, "read", guestPath)) {
        file.data = entry.base64 ??= Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength).toString("base64");
      }
      files[guestPath] = file;
    }
    sealAncestors(dirs, hidden);
    return { files, dirs };
  }

  /** Whether `permissions.fs` denies both reading and writing (at either path given). */
  private hidden(guestPath: string, realGuestPath = guestPath): boolean {
    if (this.policy === undefined || this.policy === "allow") return false;
    const denied = (op: "read" | "write") => fsPolicyDenial(this.policy, op, guestPath) !== undefined || fsPolicyDenial(this.policy, op, realGuestPath) !== undefined;
    return denied("read") && denied("write");
  }

  private capError(syscall: string, guestPath: string, kind: "bytes" | "files"): VirtualFsError {
    return new VirtualFsError(
      "ENOSPC",
      syscall,
      guestPath,
      kind === "bytes" ? `limits.fsBytes = ${this.maxBytes} bytes` : `limits.fsFiles = ${this.maxFiles} entries`,
    );
  }

  private reserve(bytes: number, files: number, syscall: string, guestPath: string): void {
    const usage = this.usage();
    if (bytes > 0 && usage.bytes + bytes > this.maxBytes) throw this.capError(syscall, guestPath, "bytes");
    if (files > 0 && usage.files + files > this.maxFiles) throw this.capError(syscall, guestPath, "files");
  }

  /** `mkdir -p` in memory (the mount's own tree is not touched here). */
  private makeDirectories(guestPath: string, syscall: string): void {
    const missing: string[] = [];
    for (let at = guestPath; !this.entries.has(at); at = parentOf(at)) missing.unshift(at);
    const holder = this.entries.get(missing.length > 0 ? parentOf(missing[0]!) : guestPath)!;
    if (holder.kind !== "dir") throw new VirtualFsError("ENOTDIR", syscall, guestPath);
    if (missing.length === 0) return;
    if (missing.some((at) => this.mountOf(at))) throw new VirtualFsError("EINVAL", syscall, guestPath, "inside a mount");
    this.reserve(0, missing.length, syscall, guestPath);
    const now = Date.now();
    for (const at of missing) this.entries.set(at, { kind: "dir", mtimeMs: now, mode: 0o755 });
    this.count += missing.length;
    this.cachedBase = undefined;
  }

  private putFile(guestPath: string, data: Uint8Array, { createParents, base64 }: { createParents: boolean; base64?: string }): void {
    const existing = this.entries.get(guestPath);
    if (existing?.kind === "dir") throw new VirtualFsError("EISDIR", "open", guestPath);
    const parent = parentOf(guestPath);
    const parentEntry = this.entries.get(parent);
    if (!parentEntry && !createParents) throw new VirtualFsError("ENOENT", "open", guestPath);
    if (parentEntry && parentEntry.kind !== "dir") throw new VirtualFsError("ENOTDIR", "open", guestPath);
    let newDirs = 0;
    for (let at = parent; !this.entries.has(at); at = parentOf(at)) {
      if (this.entries.get(parentOf(at))?.kind === "file") throw new VirtualFsError("ENOTDIR", "open", guestPath);
      newDirs += 1;
    }
    const delta = data.byteLength - (existing?.data.byteLength ?? 0);
    this.reserve(delta, (existing ? 0 : 1) + newDirs, "write", guestPath);
    if (newDirs > 0) this.makeDirectories(parent, "open");
    this.entries.set(guestPath, { kind: "file", data, base64, mtimeMs: Date.now(), mode: existing?.mode ?? 0o644 });
    this.bytes += delta;
    if (!existing) this.count += 1;
    this.cachedBase = undefined;
  }

  /** Removes a guest path and everything below it, unless the policy protects any of it. */
  private removeEntry(guestPath: string, sortedKeys?: string[]): void {
    const target = this.entries.get(guestPath);
    if (!target) return;
    const prefix = `${guestPath}/`;
    const doomed: [string, Entry][] = [[guestPath, target]];
    if (target.kind === "dir" && sortedKeys) {
      // Keys under the directory are one run of the sorted index, starting at the first key >= prefix.
      let low = 0;
      let high = sortedKeys.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (sortedKeys[middle]! < prefix) low = middle + 1;
        else high = middle;
      }
      for (let index = low; index < sortedKeys.length && sortedKeys[index]!.startsWith(prefix); index += 1) {
        const entry = this.entries.get(sortedKeys[index]!);
        if (entry) doomed.push([sortedKeys[index]!, entry]);
      }
    } else if (target.kind === "dir") {
      for (const [key, entry] of this.entries) if (key.startsWith(prefix)) doomed.push([key, entry]);
    }
    if (doomed.some(([key]) => fsPolicyDenial(this.policy, "write", key))) return;
    for (const [key, entry] of doomed) {
      this.entries.delete(key);
      this.count -= 1;
      if (entry.kind === "file") this.bytes -= entry.data.byteLength;
    }
    this.cachedBase = undefined;
  }

  // -------------------------------------------------------------------------------------
  // Mounts.

  private async addMounts(mounts: MountOptions[]): Promise<void> {
    for (const [index, options] of mounts.entries()) {
      const where = `mounts[${index}]`;
      const guestPath = normalizeGuestPath(options.guestPath);
      if (!guestPath) throw new Error(`secure-exec: ${where}.guestPath must be an absolute path`);
      const hostPath = path.resolve(options.hostPath);
      let root: string;
      try {
        root = await realpath(hostPath);
        if (!(await stat(root)).isDirectory()) throw new Error("not a directory");
      } catch (error) {
        throw new Error(`secure-exec: ${where}.hostPath ${hostPath} is not a readable directory (${(error as Error).message})`);
      }
      for (const other of this.mounts) {
        if (under(guestPath, other.guestPath) || under(other.guestPath, guestPath)) {
          throw new Error(`secure-exec: ${where}.guestPath ${guestPath} overlaps the mount at ${other.guestPath}`);
        }
      }
      const mount: Mount = { hostPath, root, guestPath, readOnly: options.readOnly ?? true, cache: new Map(), usage: { bytes: 0, files: 0 } };
      // The directories leading to the mount point are ordinary (and cannot be removed).
      if (guestPath !== ROOT) this.makeDirectories(parentOf(guestPath), "mkdir");
      this.mounts.push(mount);
      const usage = this.usage();
      // Fails now if the mounts do not fit the caps.
      await this.scanMount(mount, this.maxBytes - usage.bytes, this.maxFiles - usage.files);
    }
  }

  private mountOf(guestPath: string): { mount: Mount; relative: string } | undefined {
    for (const mount of this.mounts) {
      if (under(guestPath, mount.guestPath)) {
        const relative = mount.guestPath === ROOT ? guestPath.slice(1) : guestPath.slice(mount.guestPath.length + 1);
        return { mount, relative };
      }
    }
    return undefined;
  }

  /**
   * Why `permissions.fs` denies a guest `op` on a normalised guest path. Inside a mount the
   * host's links may make one file reachable under several names: the rules apply to the
   * path asked for and to the path the file really has, and either one denying denies.
   */
  private guestDenial(op: "read" | "write", guestPath: string): string | undefined {
    const direct = fsPolicyDenial(this.policy, op, guestPath);
    if (direct || this.policy === undefined || this.policy === "allow") return direct;
    const located = this.mountOf(guestPath);
    if (!located) return undefined;
    const resolved = this.resolvedGuestPath(located.mount, located.relative);
    return resolved !== undefined && resolved !== guestPath ? fsPolicyDenial(this.policy, op, resolved) : undefined;
  }

  /** The guest path `relative` of a mount really has (links followed as far as the path exists). */
  private resolvedGuestPath(mount: Mount, relative: string): string | undefined {
    const dirs = this.mountDirs();
    let { dir, rest } = dirs.walk(mount, dirOf(relative));
    if (relative !== "") {
      const name = path.posix.basename(relative);
      const sub = rest === "" ? dirs.subdirectory(mount, dir, name) : undefined;
      if (sub) dir = sub;
      else rest = rest === "" ? name : `${rest}/${name}`;
    }
    let real = dir.real;
    // The first component that is no directory of the mount: a link there leads on.
    const slash = rest.indexOf("/");
    const first = slash < 0 ? rest : rest.slice(0, slash);
    const info = first !== "" && dirs.mayHold(dir, first) ? lstatOrUndefined(inDir(dir.real, first)) : undefined;
    if (info?.isSymbolicLink()) {
      const target = realpathOrUndefined(inDir(dir.real, first));
      if (target !== undefined) {
        if (!insideHost(target, mount.root)) return undefined;
        real = target;
        rest = slash < 0 ? "" : rest.slice(slash + 1);
      }
    }
    const resolved = guestPathInMount(mount, relativeInRoot(mount.root, real));
    return rest === "" ? resolved : `${resolved === ROOT ? "" : resolved}/${rest}`;
  }

  private holdsMountPoint(guestPath: string): boolean {
    return this.mounts.some((mount) => under(mount.guestPath, guestPath));
  }

  /**
   * Reads a mount's tree. Symlinks are followed only when their real path stays inside the
   * mount's root; anything else (links out, sockets, devices) does not exist for the guest.
   */
  private async scanMount(mount: Mount, bytesLeft: number, filesLeft: number): Promise<MountScan> {
    const scan: MountScan = { files: {}, dirs: {}, blocked: [], hiddenLinks: {}, bytes: 0, entries: 0 };
    const seen = new Set<string>();
    const overflow = (kind: "bytes" | "files") =>
      new Error(
        `secure-exec: the mount of ${mount.hostPath} at ${mount.guestPath} does not fit the filesystem caps: ` +
          (kind === "bytes"
            ? `it holds more than the ${Math.max(0, bytesLeft)} bytes left of limits.fsBytes = ${this.maxBytes}`
            : `it holds more than the ${Math.max(0, filesLeft)} entries left of limits.fsFiles = ${this.maxFiles}`),
      );
    const rootInfo = await stat(mount.root).catch((error: Error) => {
      throw new Error(`secure-exec: cannot read the mount of ${mount.hostPath} at ${mount.guestPath}: ${error.message}`);
    });
    scan.dirs[mount.guestPath] = { mtimeMs: rootInfo.mtimeMs, mode: this.hostMode(mount, rootInfo.mode) };
    const live = new Set<string>();
    const hidden: string[] = [];
    const walk = async (realDir: string, guestDir: string): Promise<void> => {
      seen.add(realDir);
      // An unreadable host directory shows as empty.
      const names = (await readdir(realDir).catch(() => [] as string[])).sort();
      for (const name of names) {
        const child = path.join(realDir, name);
        const guestChild = guestDir === ROOT ? `/${name}` : `${guestDir}/${name}`;
        let real = child;
        let info = await lstat(child).catch(() => undefined);
        if (!info) continue;
        if (info.isSymbolicLink()) {
          const target = await realpath(child).catch(() => undefined);
          if (!target || !insideHost(target, mount.root)) {
            if (!mount.readOnly) scan.blocked.push(guestChild);
            continue;
          }
          real = target;
          info = await stat(target).catch(() => undefined);
          if (!info) continue;
        }
        if (info.isDirectory()) {
          if (seen.has(real)) continue;
          scan.entries += 1;
          if (scan.entries > filesLeft) throw overflow("files");
          const realGuest = guestPathInMount(mount, path.relative(mount.root, real));
          if (this.hidden(guestChild, realGuest)) {
            hidden.push(guestChild);
            if (realGuest !== guestChild) scan.hiddenLinks[guestChild] = realGuest;
          } else {
            scan.dirs[guestChild] = { mtimeMs: info.mtimeMs, mode: this.hostMode(mount, info.mode) };
            if (realGuest !== guestChild) scan.dirs[guestChild].realPath = realGuest;
          }
          await walk(real, guestChild);
        } else if (info.isFile()) {
          scan.entries += 1;
          if (scan.entries > filesLeft) throw overflow("files");
          if (scan.bytes + info.size > bytesLeft) throw overflow("bytes");
          let cached = mount.cache.get(real);
          if (!cached || cached.size !== info.size || cached.mtimeMs !== info.mtimeMs || cached.ino !== info.ino) {
            const data = await readFile(real).catch(() => undefined);
            if (!data) continue;
            cached = { size: data.byteLength, mtimeMs: info.mtimeMs, ino: info.ino, base64: data.toString("base64") };
            mount.cache.set(real, cached);
          }
          live.add(real);
          scan.bytes += cached.size;
          if (scan.bytes > bytesLeft) throw overflow("bytes");
          const file: FsSnapshotFile = { size: cached.size, mtimeMs: cached.mtimeMs, mode: this.hostMode(mount, info.mode) };
          // Readable only if both its name here and its real place in the mount are.
          const realGuest = guestPathInMount(mount, path.relative(mount.root, real));
          if (!fsPolicyDenial(this.policy, "read", guestChild) && !fsPolicyDenial(this.policy, "read", realGuest)) file.data = cached.base64;
          if (realGuest !== guestChild) file.realPath = realGuest;
          if (this.hidden(guestChild, realGuest)) {
            hidden.push(guestChild);
            if (realGuest !== guestChild) scan.hiddenLinks[guestChild] = realGuest;
          } else scan.files[guestChild] = file;
        }
      }
    };
    await walk(mount.root, mount.guestPath);
    sealAncestors(scan.dirs, hidden);
    for (const key of mount.cache.keys()) if (!live.has(key)) mount.cache.delete(key);
    mount.usage = { bytes: scan.bytes, files: scan.entries };
    return scan;
  }

  private hostMode(mount: Mount, mode: number): number {
    return mount.readOnly ? mode & 0o7555 : mode & 0o7777;
  }

  /** Directories resolved once per `apply()`; afresh for each call of the host API. */
  private mountDirs(): MountDirs {
    return this.resolving ?? new MountDirs();
  }

  /** Real host path of an existing entry of the mount; ENOENT when it is outside the root. */
  private resolveInMount(mount: Mount, relative: string, syscall: string, guestPath: string): string {
    if (relative === "") return mount.root;
    const { target, info } = this.entryInMount(mount, relative, syscall, guestPath);
    if (!info) throw new VirtualFsError("ENOENT", syscall, guestPath);
    return target;
  }

  /**
   * Host path to create or replace `relative` at, and what is there now: its parent must
   * resolve inside the root, and an existing link is followed only when it does too.
   */
  private writableTarget(mount: Mount, relative: string, guestPath: string): { target: string; info: Stats | undefined } {
    if (relative === "") throw new VirtualFsError("EISDIR", "open", guestPath);
    return this.entryInMount(mount, relative, "open", guestPath);
  }

  /** Where `relative` (not the root) is on the host, and what is there (`undefined`: nothing yet). */
  private entryInMount(mount: Mount, relative: string, syscall: string, guestPath: string): { target: string; info: Stats | undefined } {
    const dirs = this.mountDirs();
    const parent = dirs.directory(mount, dirOf(relative));
    if (!parent) throw new VirtualFsError("ENOENT", syscall, guestPath);
    const name = path.posix.basename(relative);
    const target = inDir(parent.real, name);
    const info = dirs.mayHold(parent, name) ? lstatOrUndefined(target) : undefined;
    if (!info?.isSymbolicLink()) return { target, info };
    const real = realpathOrUndefined(target);
    if (real === undefined || !insideHost(real, mount.root)) throw new VirtualFsError("ENOENT", syscall, guestPath);
    return { target: real, info: lstatOrUndefined(real) };
  }

  private writeToMount(mount: Mount, relative: string, data: Uint8Array): void {
    const guestPath = mount.guestPath === ROOT ? `/${relative}` : `${mount.guestPath}/${relative}`;
    const { target, info } = this.writableTarget(mount, relative, guestPath);
    if (info?.isDirectory()) throw new VirtualFsError("EISDIR", "open", guestPath);
    const previous = info?.size ?? 0;
    const exists = info !== undefined;
    this.reserve(data.byteLength - previous, exists ? 0 : 1, "write", guestPath);
    // O_NOFOLLOW: a link swapped in after the checks is refused, not followed.
    const fd = openSync(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o644);
    try {
      if (!exists) this.mountDirs().createdFile(path.dirname(target), path.basename(target));
      if (!fstatSync(fd).isFile()) throw new VirtualFsError("EISDIR", "open", guestPath);
      let offset = 0;
      while (offset < data.byteLength) offset += writeSync(fd, data, offset, data.byteLength - offset);
    } finally {
      closeSync(fd);
    }
    mount.usage = { bytes: mount.usage.bytes + data.byteLength - previous, files: mount.usage.files + (exists ? 0 : 1) };
  }

  private mkdirInMount(mount: Mount, relative: string): void {
    if (relative === "") return;
    const guestPath = `${mount.guestPath === ROOT ? "" : mount.guestPath}/${relative}`;
    const dirs = this.mountDirs();
    const parent = dirs.directory(mount, dirOf(relative));
    if (!parent) throw new VirtualFsError("ENOENT", "mkdir", guestPath);
    const name = path.posix.basename(relative);
    const target = inDir(parent.real, name);
    if (dirs.mayHold(parent, name) && lstatOrUndefined(target)) return;
    this.reserve(0, 1, "mkdir", guestPath);
    mkdirSync(target);
    dirs.createdDirectory(parent, name);
    mount.usage = { bytes: mount.usage.bytes, files: mount.usage.files + 1 };
  }

  private removeFromMount(mount: Mount, relative: string): void {
    if (relative === "") return;
    const guestPath = `${mount.guestPath === ROOT ? "" : mount.guestPath}/${relative}`;
    const dirs = this.mountDirs();
    const parent = dirs.directory(mount, dirOf(relative));
    const name = path.posix.basename(relative);
    // Forged lists name paths that do not exist: those cost a lookup, not a syscall.
    if (parent === undefined || !dirs.listing(parent)?.has(name)) return;
    const target = inDir(parent.real, name);
    const info = lstatSync(target, { throwIfNoEntry: false });
    if (!info) return;
    // A link that leads out of the mount does not exist for the guest: leave it alone.
    if (info.isSymbolicLink() && !insideHost(realpathSync(target), mount.root)) return;
    // What goes (links are removed, never followed), and whether the policy protects any of it.
    let bytes = 0;
    let files = 0;
    const measure = (hostPath: string, at: string): boolean => {
      if (fsPolicyDenial(this.policy, "write", at)) return false;
      const entry = lstatSync(hostPath);
      if (entry.isSymbolicLink()) return true;
      files += 1;
      if (entry.isFile()) bytes += entry.size;
      if (!entry.isDirectory()) return true;
      return readdirSync(hostPath).every((name) => measure(path.join(hostPath, name), `${at}/${name}`));
    };
    if (!measure(target, guestPath)) return;
    rmSync(target, { recursive: true, force: true });
    dirs.removed(mount, parent, name);
    mount.usage = { bytes: Math.max(0, mount.usage.bytes - bytes), files: Math.max(0, mount.usage.files - files) };
  }
}

/** Marks the directories above entries left out of a snapshot, so the guest cannot remove or move them. */
function sealAncestors(dirs: Record<string, SnapshotDir>, hidden: string[]): void {
  for (const guestPath of hidden) {
    for (let at = parentOf(guestPath); at !== ROOT; at = parentOf(at)) {
      const dir = dirs[at];
      if (dir?.sealed) break;
      if (dir) dir.sealed = true;
    }
  }
}

/** Guest path of a host path relative to a mount's root. */
function guestPathInMount(mount: Mount, relativeHostPath: string): string {
  // path.relative() output: no empty components.
  const relative = path.sep === "/" ? relativeHostPath : relativeHostPath.split(path.sep).join("/");
  if (relative === "") return mount.guestPath;
  return mount.guestPath === ROOT ? `/${relative}` : `${mount.guestPath}/${relative}`;
}

function requireGuestPath(guestPath: string, syscall: string): string {
  const normalized = normalizeGuestPath(guestPath);
  if (normalized === undefined) {
    throw new TypeError(`secure-exec: ${syscall} needs an absolute guest path, got ${JSON.stringify(guestPath)}`);
  }
  return normalized;
}

/** The directory part of a mount-relative path ("" for the mount's root). */
function dirOf(relative: string): string {
  const slash = relative.lastIndexOf("/");
  return slash < 0 ? "" : relative.slice(0, slash);
}

/** `path.join(real, name)` for a real directory and one component, without normalising the whole path again. */
function inDir(real: string, name: string): string {
  return real.endsWith(path.sep) ? `${real}${name}` : `${real}${path.sep}${name}`;
}

/** `path.relative(root, real)` for a real path inside the root, without resolving both again. */
function relativeInRoot(root: string, real: string): string {
  if (real === root) return "";
  return real.slice(root.endsWith(path.sep) ? root.length : root.length + 1);
}

function lstatOrUndefined(hostPath: string): Stats | undefined {
  try {
    return lstatSync(hostPath);
  } catch {
    return undefined;
  }
}

function realpathOrUndefined(hostPath: string): string | undefined {
  try {
    return realpathSync(hostPath);
  } catch {
    return undefined;
  }
}

/** Where a walk down a mount-relative path ended: the deepest directory, and where the rest starts. */
interface Walked {
  dir: ResolvedDir;
  /** Past the path's end when every component is a directory. */
  offset: number;
  /** A walk that stopped short holds until the apply creates a directory. */
  generation: number;
}

/** A directory of a mount, resolved once during an `apply()`. */
interface ResolvedDir {
  /** Its real host path, inside the mount's root. */
  real: string;
  /** The subdirectories resolved so far, by name. */
  children: Map<string, ResolvedDir>;
  /** Reached through a host link, so it may lie below anything that is removed. */
  linked: boolean;
  /** False once it (or a directory above it) has been removed. */
  alive: boolean;
}

/**
 * The mount directories one `apply()` resolves, walking down from each root: one lstat per
 * directory, once. A realpath per path (one lstat per component) cost O(depth) syscalls per
 * entry of a change list, O(depth^2) with the policy's walk up, all on the event loop. Links
 * are followed only when they resolve to a directory inside the root, so nothing reached
 * through one leads out (stricter than realpath, like `scanMount`). What the apply removes is
 * dropped from here; what it creates is added to the listings read.
 */
class MountDirs {
  private readonly roots = new Map<Mount, { root: ResolvedDir; byPath: Map<string, Walked> }>();
  /** Bumped when the apply creates a directory: a walk that stopped short may now go further. */
  private generation = 0;
  /** Directory listings by real path, read on a first miss: later misses there cost no syscall. */
  private readonly listings = new Map<string, Set<string> | undefined>();
  private readonly linked: ResolvedDir[] = [];

  /** The deepest directory on the way down `relative`, and the components below it that are none ("" when all are). */
  walk(mount: Mount, relative: string): { dir: ResolvedDir; rest: string } {
    let known = this.roots.get(mount);
    if (!known) {
      known = { root: { real: mount.root, children: new Map(), linked: false, alive: true }, byPath: new Map() };
      this.roots.set(mount, known);
    }
    if (relative === "") return { dir: known.root, rest: "" };
    const hit = known.byPath.get(relative);
    if (hit && hit.dir.alive && (hit.offset > relative.length || hit.generation === this.generation)) {
      return { dir: hit.dir, rest: relative.slice(hit.offset) };
    }
    let dir = known.root;
    let offset = 0;
    for (const name of relative.split("/")) {
      const next = this.subdirectory(mount, dir, name);
      if (!next) break;
      dir = next;
      offset += name.length + 1;
    }
    known.byPath.set(relative, { dir, offset, generation: this.generation });
    return { dir, rest: relative.slice(offset) };
  }

  directory(mount: Mount, relative: string): ResolvedDir | undefined {
    const { dir, rest } = this.walk(mount, relative);
    return rest === "" ? dir : undefined;
  }

  /** False when `dir` certainly holds no `name` (a listing read says so). */
  mayHold(dir: ResolvedDir, name: string): boolean {
    return this.listings.get(dir.real)?.has(name) ?? true;
  }

  listing(dir: ResolvedDir): Set<string> | undefined {
    if (!this.listings.has(dir.real)) {
      let names: Set<string> | undefined;
      try {
        names = new Set(readdirSync(dir.real));
      } catch {
        names = undefined;
      }
      this.listings.set(dir.real, names);
    }
    return this.listings.get(dir.real);
  }

  /** The apply created the file `name` in the real directory `realDir`. */
  createdFile(realDir: string, name: string): void {
    this.listings.get(realDir)?.add(name);
  }

  /** The apply created the directory `name` in `dir`: it is resolved, and empty, already. */
  createdDirectory(dir: ResolvedDir, name: string): void {
    this.listings.get(dir.real)?.add(name);
    this.generation += 1;
    const made: ResolvedDir = { real: inDir(dir.real, name), children: new Map(), linked: dir.linked, alive: true };
    dir.children.set(name, made);
    if (made.linked) this.linked.push(made);
    this.listings.set(made.real, new Set());
  }

  /** `name` was removed from `dir`: nothing resolved at or below it stays. */
  removed(mount: Mount, dir: ResolvedDir, name: string): void {
    this.listings.get(dir.real)?.delete(name);
    // A directory reached without links is where its path says: find it by its real path.
    let at = this.roots.get(mount)?.root;
    for (const part of relativeInRoot(mount.root, inDir(dir.real, name)).split(path.sep)) {
      at = at?.children.get(part);
      if (!at?.alive || at.linked) break;
    }
    const doomed = at?.alive && !at.linked ? [at] : [];
    // One reached through a link may lie anywhere below it: drop them all (host links are few).
    doomed.push(...this.linked.splice(0));
    while (doomed.length > 0) {
      const gone = doomed.pop()!;
      if (!gone.alive) continue;
      gone.alive = false;
      doomed.push(...gone.children.values());
    }
  }

  /** The directory `name` of `dir` (a link followed when it leads to one inside the root). */
  subdirectory(mount: Mount, dir: ResolvedDir, name: string): ResolvedDir | undefined {
    const known = dir.children.get(name);
    if (known?.alive) return known;
    if (!this.mayHold(dir, name)) return undefined;
    const hostPath = inDir(dir.real, name);
    const info = lstatOrUndefined(hostPath);
    if (!info) {
      this.listing(dir);
      return undefined;
    }
    let real = hostPath;
    if (info.isSymbolicLink()) {
      const target = realpathOrUndefined(hostPath);
      if (target === undefined || !insideHost(target, mount.root) || !lstatOrUndefined(target)?.isDirectory()) return undefined;
      real = target;
    } else if (!info.isDirectory()) {
      return undefined;
    }
    const resolved: ResolvedDir = { real, children: new Map(), linked: dir.linked || info.isSymbolicLink(), alive: true };
    dir.children.set(name, resolved);
    if (resolved.linked) this.linked.push(resolved);
    return resolved;
  }
}
