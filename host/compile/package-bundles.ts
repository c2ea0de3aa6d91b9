// A runtime's packages for guests (`nodeModules`): specifiers are resolved and package graphs
// bundled on worker threads, because bundling a package reads and parses up to 64 MiB and
// the host's event loop serves every tenant. Bundles are cached per runtime, keyed by the
// real path of the entry file (so `pkg`, `pkg/./index.js` and `pkg/././index.js` are one
// bundle) and bounded by count and bytes (least recently used goes first). Each runtime has
// at most one job running and a few waiting; runtimes are served in turn.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { builtHostModule } from "../package-files.js";
import { runBundleJob, type BundleJob, type BundleReply, type PackageBundle, type ResolvedFile } from "./node-modules.js";
import { ModuleNotFoundError } from "./specifiers.js";

/** Bundles one runtime keeps (least recently used is dropped first). */
export const MAX_CACHED_BUNDLES = 32;
/** Source bytes of the bundles one runtime keeps. */
export const MAX_CACHED_BUNDLE_BYTES = 64 * 1024 * 1024;
/** Specifier spellings one runtime remembers the entry file of. */
const MAX_CACHED_SPECIFIERS = 1024;
/** Jobs one runtime may have waiting; more fail the run at once. */
export const MAX_WAITING_BUNDLE_JOBS = 8;
/** A job running longer is stopped (its thread terminated) and fails its runs. */
export const BUNDLE_JOB_MS = 20_000;
const WORKER_HEAP_MB = 1024;

/** Resolving or bundling failed for a reason other than a missing package. */
export class PackageBundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PackageBundleError";
  }
}

type JobInput = { root: string; kind: "resolve"; specifiers: string[] } | { root: string; kind: "bundle"; entry: ResolvedFile };

interface QueuedJob {
  input: JobInput;
  queue: string;
  settle: (reply: BundleReply) => void;
}

interface BundlerThread {
  worker: Worker;
  running: { id: number; entry: QueuedJob; timer: NodeJS.Timeout } | undefined;
}

const BUNDLER_SCRIPT = builtHostModule("compile/node-modules-worker.js");
const threadCount = Math.max(1, Math.min(2, availableParallelism()));
const threads: (BundlerThread | undefined)[] = new Array(threadCount).fill(undefined);
const queues = new Map<string, QueuedJob[]>();
/** Queues with a job running: a runtime uses one thread at a time. */
const runningQueues = new Set<string>();
let nextJobId = 1;

function startThread(slot: number): BundlerThread {
  const worker = new Worker(BUNDLER_SCRIPT!, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
  worker.unref();
  const thread: BundlerThread = { worker, running: undefined };
  const finish = (reply: BundleReply): void => {
    const running = thread.running;
    if (!running) return;
    thread.running = undefined;
    clearTimeout(running.timer);
    runningQueues.delete(running.entry.queue);
    worker.unref();
    running.entry.settle(reply);
  };
  worker.on("message", (reply: BundleReply) => {
    if (thread.running?.id !== reply.id) return;
    finish(reply);
    dispatch();
  });
  const lost = (error: unknown): void => {
    if (threads[slot] === thread) threads[slot] = undefined;
    if (thread.running) {
      const message = error instanceof Error ? error.message : String(error);
      finish({ id: thread.running.id, ok: false, error: `the package bundler thread stopped: ${message}` });
    }
    dispatch();
  };
  worker.on("error", lost);
  worker.on("exit", (code) => lost(new Error(`exit code ${code}`)));
  return thread;
}

function dispatch(): void {
  for (let slot = 0; slot < threadCount; slot += 1) {
    if (threads[slot]?.running) continue;
    const entry = takeNext();
    if (!entry) return;
    const thread = (threads[slot] ??= startThread(slot));
    const id = nextJobId++;
    const timer = setTimeout(() => {
      if (thread.running?.id !== id) return;
      // Stop the job where it is; the next job gets a fresh thread.
      threads[slot] = undefined;
      const running = thread.running;
      thread.running = undefined;
      runningQueues.delete(running.entry.queue);
      void thread.worker.terminate();
      running.entry.settle({ id, ok: false, error: `bundling took longer than ${BUNDLE_JOB_MS} ms and was stopped` });
      dispatch();
    }, BUNDLE_JOB_MS);
    timer.unref();
    thread.running = { id, entry, timer };
    runningQueues.add(entry.queue);
    thread.worker.ref();
    thread.worker.postMessage({ ...entry.input, id } satisfies BundleJob);
  }
}

/** The next job of the next queue in turn that has none running. */
function takeNext(): QueuedJob | undefined {
  for (const [queue, jobs] of queues) {
    if (runningQueues.has(queue)) continue;
    const entry = jobs.shift();
    queues.delete(queue);
    if (jobs.length > 0) queues.set(queue, jobs);
    if (entry) return entry;
  }
  return undefined;
}

function runJob(input: JobInput, queue: string): Promise<BundleReply> {
  if (!BUNDLER_SCRIPT) return Promise.resolve(runBundleJob({ ...input, id: 0 }));
  const waiting = queues.get(queue) ?? [];
  if (waiting.length >= MAX_WAITING_BUNDLE_JOBS) {
    return Promise.reject(new PackageBundleError(`secure-exec: ${MAX_WAITING_BUNDLE_JOBS} package bundles of this runtime are already waiting; try again later`));
  }
  return new Promise<BundleReply>((resolve) => {
    waiting.push({ input, queue, settle: resolve });
    queues.set(queue, waiting);
    dispatch();
  });
}

/** Waits for `promise`, or rejects with the signal's reason first (the job itself goes on and is cached). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

export class PackageBundles {
  /** Entry real path → bundle; Map order is recency (oldest first). */
  private readonly bundles = new Map<string, PackageBundle>();
  private bundleBytes = 0;
  /** Specifier as spelt → its entry file. */
  private readonly entries = new Map<string, ResolvedFile>();
  /** Bundles being built, by entry real path: concurrent runs share one job. */
  private readonly building = new Map<string, Promise<PackageBundle>>();

  constructor(
    /** The real `nodeModules` directory. */
    private readonly root: string,
    /** Whose turn on the bundler threads (one per runtime). */
    private readonly queue: string,
  ) {}

  /** The cached bundle of a specifier, without any I/O. */
  cached(specifier: string): PackageBundle | undefined {
    const entry = this.entries.get(specifier);
    const bundle = entry && this.bundles.get(entry.path);
    if (!entry || !bundle) return undefined;
    touch(this.entries, specifier, entry);
    touch(this.bundles, entry.path, bundle);
    return bundle;
  }

  /**
   * Resolves and bundles `specifiers` off the event loop. Throws ModuleNotFoundError for a
   * package that is not there, PackageBundleError when bundling fails, or the signal's reason.
   */
  async load(specifiers: string[], importer: string, signal?: AbortSignal): Promise<Map<string, PackageBundle>> {
    const result = new Map<string, PackageBundle>();
    for (const [specifier, loaded] of await this.settle(specifiers, importer, signal)) {
      if (loaded instanceof Error) throw loaded;
      result.set(specifier, loaded);
    }
    return result;
  }

  /**
   * As `load`, but each specifier's failure (ModuleNotFoundError, PackageBundleError) is its
   * own entry instead of failing the rest; only the signal's reason and queue errors throw.
   */
  async settle(specifiers: string[], importer: string, signal?: AbortSignal): Promise<Map<string, PackageBundle | Error>> {
    const result = new Map<string, PackageBundle | Error>();
    const entryOf = new Map<string, ResolvedFile>();
    const unknown: string[] = [];
    for (const specifier of new Set(specifiers)) {
      const entry = this.entries.get(specifier);
      if (entry) entryOf.set(specifier, entry);
      else unknown.push(specifier);
    }
    if (unknown.length > 0) {
      const reply = unwrap(await untilAborted(runJob({ root: this.root, kind: "resolve", specifiers: unknown }, this.queue), signal));
      if (!("resolved" in reply)) throw new PackageBundleError("secure-exec: the package bundler answered out of turn");
      for (const [index, specifier] of unknown.entries()) {
        const entry = reply.resolved[index];
        if (!entry) {
          result.set(specifier, new ModuleNotFoundError(specifier, importer));
          continue;
        }
        entryOf.set(specifier, entry);
        this.entries.set(specifier, entry);
        if (this.entries.size > MAX_CACHED_SPECIFIERS) this.entries.delete(this.entries.keys().next().value!);
      }
    }
    for (const [specifier, entry] of entryOf) {
      try {
        result.set(specifier, await untilAborted(this.bundleOf(entry), signal));
      } catch (error) {
        if (!(error instanceof PackageBundleError)) throw error;
        result.set(specifier, error);
      }
    }
    return result;
  }

  private bundleOf(entry: ResolvedFile): Promise<PackageBundle> {
    const cached = this.bundles.get(entry.path);
    if (cached) {
      touch(this.bundles, entry.path, cached);
      return Promise.resolve(cached);
    }
    let building = this.building.get(entry.path);
    if (!building) {
      building = runJob({ root: this.root, kind: "bundle", entry }, this.queue)
        .then((reply) => {
          const done = unwrap(reply);
          if (!("bundle" in done)) throw new PackageBundleError("secure-exec: the package bundler answered out of turn");
          this.remember(entry.path, done.bundle);
          return done.bundle;
        })
        .finally(() => this.building.delete(entry.path));
      this.building.set(entry.path, building);
    }
    return building;
  }

  private remember(path: string, bundle: PackageBundle): void {
    if (bundle.bytes > MAX_CACHED_BUNDLE_BYTES) return;
    this.bundles.set(path, bundle);
    this.bundleBytes += bundle.bytes;
    while (this.bundles.size > MAX_CACHED_BUNDLES || this.bundleBytes > MAX_CACHED_BUNDLE_BYTES) {
      const [oldest, dropped] = this.bundles.entries().next().value!;
      this.bundles.delete(oldest);
      this.bundleBytes -= dropped.bytes;
    }
  }

  /** What the cache holds (for tests and stats). */
  usage(): { bundles: number; bytes: number; specifiers: number } {
    return { bundles: this.bundles.size, bytes: this.bundleBytes, specifiers: this.entries.size };
  }
}

function touch<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
}

function unwrap(reply: BundleReply): Extract<BundleReply, { ok: true }> {
  if (reply.ok) return reply;
  throw new PackageBundleError(reply.error.startsWith("secure-exec:") ? reply.error : `secure-exec: ${reply.error}`);
}
