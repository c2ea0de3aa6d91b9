// The workerd configuration of each kind of process, as Miniflare builds it, kept on disk so
// that later host processes spawn workerd straight from it without loading Miniflare.
// An entry is keyed by everything that shapes it (this package's version, Miniflare's and
// workerd's, the worker sources and options); a changed input is a new key, and an entry
// that does not check out (format, key, length, hash) is rebuilt.
import { createHash, randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { packageRoot } from "../package-files.js";

/** A static worker of its own, in a workerd process of its own (the resident runner). */
export interface StaticWorkerdOptions {
  /** ES module source of the worker's main module. */
  mainModule: { name: string; source: string };
  /** Further ES modules the main module imports (`import { x } from "./name"`). */
  esModules?: Record<string, string>;
  /** Further modules, imported as text (`import text from "./name"`). */
  textModules?: Record<string, string>;
  compatibilityDate: string;
  compatibilityFlags: string[];
  /** Name of an `UnsafeEval` binding given to the worker (`eval`, `newFunction`, `newAsyncFunction`). */
  unsafeEvalBinding?: string;
  /**
   * What the worker's `fetch()` and sockets reach. Workers Miniflare runs default to the
   * internet, so the outbound goes to a worker in the same process that throws this message.
   */
  denyNetworkMessage: string;
}

/** What a workerd process runs: a sandbox cell (with its sources), or one static worker. */
export type ConfigRequest =
  | { kind: "cell"; supervisorSource: string; guestTemplates: Record<string, string>; v8Flags: string[] }
  | { kind: "static"; options: StaticWorkerdOptions };

/** How to start workerd from a built configuration. */
export interface WorkerdPlan {
  /** Arguments of `workerd serve` (the configuration comes on stdin, `-`; ports on fd 3). */
  args: string[];
  /** The socket serving the process's own worker directly. */
  directSocket: string;
  /** External services that reach the host; their address is given at each start. */
  hostServices: string[];
  /** Disk directory services; each process gets empty directories of its own. */
  diskDirectories: string[];
}

export interface BuiltConfig {
  plan: WorkerdPlan;
  /** workerd's configuration, a binary Cap'n Proto message. */
  config: Uint8Array;
}

/** Where a configuration came from: this host's memory, the disk cache, or Miniflare. */
export type ConfigSource = "memory" | "disk" | "built";

/** Bumped whenever the entry layout or the plan changes meaning. */
const CACHE_FORMAT = 4;
/** Entries kept in the directory (other versions, other options); the oldest go first. */
const MAX_ENTRIES = 16;

const require = createRequire(import.meta.url);

function packageVersion(packageJsonPath: string): string {
  try {
    return String((JSON.parse(readFileSync(packageJsonPath, "utf8")) as { version?: unknown }).version);
  } catch {
    return "unknown";
  }
}

/** The package a resolved entry file belongs to: the nearest package.json naming it. */
function installedVersion(name: string): string {
  let dir: string;
  try {
    dir = dirname(require.resolve(name));
  } catch {
    return "absent";
  }
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (manifest.name === name) return String(manifest.version);
    } catch {
      // keep looking upwards
    }
    const parent = dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}

let workerdBinaryPath: string | undefined;

/** The workerd executable: `SECURE_EXEC_WORKERD_PATH`, else the `workerd` package's. */
export function workerdBinary(): string {
  workerdBinaryPath ??= process.env.SECURE_EXEC_WORKERD_PATH ?? (require("workerd") as { default: string }).default;
  return workerdBinaryPath;
}

let inputsOfEveryKey: string | undefined;

/** What every entry depends on besides its request: package versions and the binary itself. */
function commonInputs(): string {
  if (inputsOfEveryKey === undefined) {
    const ownPackage = packageVersion(join(packageRoot, "package.json"));
    const binary = workerdBinary();
    let binaryStamp = "missing";
    try {
      const stat = statSync(binary);
      binaryStamp = `${stat.size}:${stat.mtimeMs}`;
    } catch {
      // spawning will report it
    }
    inputsOfEveryKey = JSON.stringify({
      format: CACHE_FORMAT,
      secureExec: ownPackage ?? "unknown",
      miniflare: installedVersion("miniflare"),
      // It compacts the guest templates the entry carries.
      esbuild: installedVersion("esbuild"),
      workerd: installedVersion("workerd"),
      binary,
      binaryStamp,
    });
  }
  return inputsOfEveryKey;
}

const keys = new WeakMap<ConfigRequest, string>();

/** The cache key of a request: changes whenever anything that shapes its configuration does. */
export function configKey(request: ConfigRequest): string {
  // The cell's request is one object for the host's life: its ~100 KB of sources are hashed once.
  let key = keys.get(request);
  if (key === undefined) {
    key = createHash("sha256").update(commonInputs()).update("\n").update(JSON.stringify(request)).digest("hex").slice(0, 40);
    keys.set(request, key);
  }
  return key;
}

/**
 * The cache directory, or undefined when there is none fit to trust: the configuration holds
 * the code workerd runs, so only a directory of this user's that no one else can write to
 * will do. `SECURE_EXEC_CACHE_DIR` picks it (`off` disables the disk cache).
 */
export function cacheDirectory(): string | undefined {
  const configured = process.env.SECURE_EXEC_CACHE_DIR;
  if (configured === "off") return undefined;
  const uid = typeof process.getuid === "function" ? process.getuid() : undefined;
  const dir = configured || join(tmpdir(), `secure-exec-${uid ?? "user"}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(dir);
    if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

function entryPath(dir: string, key: string): string {
  return join(dir, `workerd-config-${key}.bin`);
}

interface EntryHeader {
  format: number;
  key: string;
  plan: WorkerdPlan;
  configBytes: number;
  configSha256: string;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function validPlan(value: unknown): value is WorkerdPlan {
  const plan = value as Partial<WorkerdPlan> | null;
  return (
    typeof plan === "object" &&
    plan !== null &&
    isStringArray(plan.args) &&
    typeof plan.directSocket === "string" &&
    isStringArray(plan.hostServices) &&
    isStringArray(plan.diskDirectories)
  );
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The entry for `key`, or undefined when there is none or it does not check out. */
export function readEntry(dir: string, key: string): BuiltConfig | undefined {
  let data: Buffer;
  try {
    data = readFileSync(entryPath(dir, key));
  } catch {
    return undefined;
  }
  const newline = data.indexOf(0x0a);
  if (newline < 0 || newline > 64 * 1024) return undefined;
  let header: EntryHeader;
  try {
    header = JSON.parse(data.subarray(0, newline).toString("utf8")) as EntryHeader;
  } catch {
    return undefined;
  }
  const config = data.subarray(newline + 1);
  if (header?.format !== CACHE_FORMAT || header.key !== key || !validPlan(header.plan)) return undefined;
  if (header.configBytes !== config.byteLength || header.configSha256 !== sha256(config)) return undefined;
  return { plan: header.plan, config };
}

/** Writes the entry atomically (a file beside it, then a rename); a failure only costs the cache. */
export function writeEntry(dir: string, key: string, built: BuiltConfig): void {
  const header: EntryHeader = {
    format: CACHE_FORMAT,
    key,
    plan: built.plan,
    configBytes: built.config.byteLength,
    configSha256: sha256(built.config),
  };
  const target = entryPath(dir, key);
  const temporary = `${target}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeFileSync(temporary, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), built.config]), { mode: 0o600, flag: "wx" });
    renameSync(temporary, target);
  } catch {
    rmSync(temporary, { force: true });
    return;
  }
  pruneEntries(dir);
}

/** Keeps the newest `MAX_ENTRIES` entries: builds are rare, so this runs rarely. */
function pruneEntries(dir: string): void {
  try {
    const found = readdirSync(dir)
      .filter((name) => name.startsWith("workerd-config-") && name.endsWith(".bin"))
      .map((name) => ({ path: join(dir, name), mtimeMs: statSync(join(dir, name)).mtimeMs }))
      .sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const stale of found.slice(MAX_ENTRIES)) rmSync(stale.path, { force: true });
  } catch {
    // another host pruned at the same time
  }
}

/** Drops the entry for `key` (it did not start). */
export function removeEntry(dir: string, key: string): void {
  rmSync(entryPath(dir, key), { force: true });
}

/** Configurations this host has resolved, by key: one build however many launches wait on it. */
const resolved = new Map<string, Promise<BuiltConfig>>();

export interface ResolvedConfig {
  built: BuiltConfig;
  source: ConfigSource;
  key: string;
}

/**
 * The configuration for `request`: from memory, else from the disk cache, else built by
 * `build` (Miniflare) and written to the cache.
 */
export async function resolveConfig(request: ConfigRequest, build: (request: ConfigRequest) => Promise<BuiltConfig>): Promise<ResolvedConfig> {
  const key = configKey(request);
  const known = resolved.get(key);
  if (known) {
    try {
      return { built: await known, source: "memory", key };
    } catch {
      // a failed build is retried below
    }
  }
  const dir = cacheDirectory();
  const cached = dir === undefined ? undefined : readEntry(dir, key);
  if (cached) {
    resolved.set(key, Promise.resolve(cached));
    return { built: cached, source: "disk", key };
  }
  const building = build(request).then((built) => {
    if (dir !== undefined) writeEntry(dir, key, built);
    return built;
  });
  resolved.set(key, building);
  building.catch(() => {
    if (resolved.get(key) === building) resolved.delete(key);
  });
  return { built: await building, source: "built", key };
}

/** Forgets `key` in memory and on disk, so the next launch builds it afresh. */
export function forgetConfig(key: string): void {
  resolved.delete(key);
  const dir = cacheDirectory();
  if (dir !== undefined) removeEntry(dir, key);
}
