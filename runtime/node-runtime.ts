// NodeRuntime: the SDK entry point. One runtime = one tenant's processes, tools and defaults.
import type {
  ExecOptions,
  ExecResult,
  GuestFetchRequest,
  GuestFetchResponse,
  ListenerInfo,
  ListenerQuery,
  SpawnedGuest,
  WaitForListenerOptions,
  NodeRuntimeOptions,
  ResidentRunner,
  ResidentRunnerOptions,
  RunResult,
  RuntimeLimits,
  ToolDefinitions,
} from "../host/api/types.js";
import type * as OptionSchemas from "../host/api/options.js";
import { defaultRuntimeOptions, isEmptyOptions, isPermitted } from "../host/api/options-core.js";
import { GuestSyntaxError, sandboxModulesOf, syntaxErrorReport } from "../host/compile/guest-module.js";
import { GuestCompileError } from "../host/compile/guest-compiler.js";
import type { BundledModule } from "../host/compile/node-modules.js";
import { GuestPackages, PackageBundleError } from "../host/compile/packages.js";
import { ModuleNotFoundError, UnsupportedSchemeError } from "../host/compile/specifiers.js";
import { linkAbortSignals } from "../host/engine/abort-link.js";
import { ProcessPool, PoolDisposedError } from "../host/engine/process-pool.js";
import { executeRun, EXIT_KILLED, guardedListener, RunHandle, type RunOutcome } from "../host/engine/run-executor.js";
import { retainSpares, takeProcess } from "../host/engine/spare-processes.js";
import { newRunFamily, prepareCapabilities, type RunCapability, type RunFamily } from "../host/capabilities/capability.js";
import { ChildProcessCapability } from "../host/capabilities/child-process/index.js";
import { signalNumber } from "../host/capabilities/child-process/signals.js";
import { FilesystemCapability } from "../host/capabilities/fs/index.js";
import { VirtualFs, VirtualFsError } from "../host/capabilities/fs/virtual-fs.js";
import { GuestServersCapability } from "../host/capabilities/http/index.js";
import { NetworkCapability } from "../host/capabilities/network/index.js";
import { ToolsCapability } from "../host/capabilities/tools/index.js";
import { ToolGateway, defaultToolCallLimits, loadToolDefinitionChecks } from "../host/capabilities/tools/tool-gateway.js";
import type { z } from "zod";
import { randomUUID } from "node:crypto";
import { existsSync, statSync } from "node:fs";

type ParsedRuntimeOptions = z.infer<typeof OptionSchemas.runtimeOptionsSchema>;

let optionSchemas: Promise<typeof OptionSchemas> | undefined;

/**
 * The option schemas (zod) load with the first call that passes options; no options at all
 * mean the defaults, which need no schema.
 */
function loadOptionSchemas(): Promise<typeof OptionSchemas> {
  optionSchemas ??= import("../host/api/options.js");
  return optionSchemas;
}

/**
 * Options built by this package's own applications from input they have already checked (the
 * CLI's flags): taken as parsed, so a one-shot host does not load the schemas (~90 ms of
 * module loading). Not exported from the SDK's entry.
 */
const checkedOptions = new WeakSet<object>();

/** Call options of an internal caller, already checked; see `checkedOptions`. */
export function checkedExecOptions(options: ExecOptions): ExecOptions {
  checkedOptions.add(options);
  return options;
}

/** The default runtime options with `limits` changed, already checked; see `checkedOptions`. */
export function checkedRuntimeOptions(limits: Partial<RuntimeLimits>): NodeRuntimeOptions {
  const { env, cwd, tenant, language, limits: defaults } = defaultRuntimeOptions();
  const options: NodeRuntimeOptions = { env, cwd, tenant, language, limits: { ...defaults, ...limits } };
  checkedOptions.add(options);
  return options;
}

async function parseCallOptions(options: unknown, where: string): Promise<ExecOptions> {
  if (isEmptyOptions(options)) return {};
  if (checkedOptions.has(options as object)) return options as ExecOptions;
  const schemas = await loadOptionSchemas();
  return schemas.parseOptions(schemas.execOptionsSchema, options, where);
}

export interface ResourceSnapshot {
  /** Live sandbox (workerd) processes of this runtime. */
  processes: number;
  processDetails: RuntimeStats["processes"];
  runsInFlight: number;
  runsTotal: number;
  processesLost: number;
  /** Resident memory of the runtime's workerd processes. */
  memory: { rssBytes: number };
  /** Virtual filesystem use. */
  files: { count: number; bytes: number };
  /** Spawned guests still running. */
  spawned: number;
  /** Ports guest servers listen on. */
  listeners: number[];
  /** Package bundles cached for guests' imports (bounded; see docs/modules.md). */
  packageBundles: { count: number; bytes: number };
}

export interface RuntimeStats {
  runs: number;
  runsInFlight: number;
  processes: { pid: number; state: string; runsInFlight: number; runsStarted: number; rssKb?: number }[];
  processesLost: number;
  /** Runs of repeated code that found an isolate of it already loaded (each still fresh). */
  preloadedRuns: number;
}

export class NodeRuntime {
  private disposed = false;
  private readonly residentRunners = new Set<ResidentRunner>();
  private readonly spawned = new Set<SpawnedGuest>();
  /** This runtime's turn in the shared compiler threads' queue. */
  private readonly compileQueue = randomUUID();
  private nextPid = 1;
  private runsInFlight = 0;
  private runsTotal = 0;
  private readonly packages: GuestPackages;
  private readonly servers = new GuestServersCapability(() => new PoolDisposedError());
  /** What a guest can be handed, each set up for every run (host/capabilities/). */
  private readonly capabilities: readonly RunCapability[];

  private constructor(
    private readonly options: ParsedRuntimeOptions,
    private readonly pool: ProcessPool,
    private readonly tools: ToolGateway,
    private readonly releaseSpares: () => void,
    private readonly vfs: VirtualFs,
  ) {
    const nodeModules = options.nodeModules;
    this.packages = new GuestPackages(typeof nodeModules === "string" ? nodeModules : nodeModules?.hostPath, options.cwd, this.compileQueue);
    const permissions = options.permissions;
    const toolsCapability = new ToolsCapability(tools, options.tenant, permissions?.tool);
    this.capabilities = [
      toolsCapability,
      new ChildProcessCapability({
        tools: toolsCapability,
        policy: permissions?.childProcess,
        readScript: (path) => {
          try {
            return new TextDecoder().decode(this.vfs.readFileForGuest(path));
          } catch (error) {
            return error instanceof VirtualFsError && error.code === "EACCES" ? { denied: error.path } : undefined;
          }
        },
        startGuest: (childCode, child) =>
          this.launch(
            childCode,
            { env: child.env, cwd: child.cwd, argv: child.argv, eval: child.eval, signal: child.signal, onStdout: child.onStdout, onStderr: child.onStderr },
            { depth: child.depth, stdinMode: "stream", control: child.control, family: child.family },
          ),
      }),
      new FilesystemCapability(vfs),
      new NetworkCapability(permissions?.network, options.limits),
      this.servers,
    ];
  }

  /** Validates the options, starts the runtime's first sandbox process and resolves when it is ready. */
  static async create(options: NodeRuntimeOptions = {}): Promise<NodeRuntime> {
    const started = performance.now();
    // The first process starts while the options are checked: starting workerd is most of
    // the wait, and the checks load their schemas meanwhile. Bad options drop the process.
    const firstProcess = takeProcess();
    const releaseSpares = retainSpares();
    firstProcess.catch(() => {});
    const dropFirstProcess = (): void => {
      releaseSpares();
      void firstProcess.then((sandbox) => sandbox.kill({ reason: "killed", detail: "invalid options" }), () => {});
    };
    let parsed: ParsedRuntimeOptions;
    let vfs: VirtualFs;
    let tools: ToolGateway;
    try {
      if (isEmptyOptions(options)) {
        parsed = defaultRuntimeOptions();
      } else if (checkedOptions.has(options)) {
        parsed = options as ParsedRuntimeOptions;
      } else {
        const schemas = await loadOptionSchemas();
        parsed = schemas.parseOptions(schemas.runtimeOptionsSchema, options, "NodeRuntime.create option");
      }
      if (parsed.nodeModules) {
        const dir = typeof parsed.nodeModules === "string" ? parsed.nodeModules : parsed.nodeModules.hostPath;
        if (!existsSync(dir) || !statSync(dir).isDirectory()) {
          throw new TypeError(`secure-exec: invalid NodeRuntime.create option "nodeModules": ${dir} is not a directory`);
        }
      }
      tools = new ToolGateway({ ...defaultToolCallLimits, toolCalls: parsed.limits.toolCalls });
      if (parsed.tools) {
        await loadToolDefinitionChecks();
        tools.register(parsed.tools as ToolDefinitions);
      }
      vfs = await VirtualFs.create({
        files: parsed.files,
        mounts: parsed.mounts,
        maxBytes: parsed.limits.fsBytes,
        maxFiles: parsed.limits.fsFiles,
        policy: parsed.permissions?.fs,
        directories: [parsed.cwd, "/tmp"],
      });
    } catch (error) {
      dropFirstProcess();
      throw error;
    }
    const onBootTiming = parsed.onBootTiming;
    const report = (phase: string, durationMs: number) => onBootTiming?.({ phase, durationMs });
    const pool = new ProcessPool(parsed.limits, report);
    try {
      await pool.warmUp(firstProcess);
    } catch (error) {
      releaseSpares();
      await pool.dispose();
      throw error;
    }
    report("create", performance.now() - started);
    return new NodeRuntime(parsed, pool, tools, releaseSpares, vfs);
  }

  /** Runs guest code as an ES module; resolves with its output and exit code. */
  async exec(code: string, options?: ExecOptions): Promise<ExecResult> {
    const { stdout, stderr, exitCode } = await this.execute(code, options);
    return { stdout, stderr, exitCode };
  }

  /** Like `exec`, and also hands back what the guest passed to `__return`. */
  async run<T = unknown>(code: string, options?: ExecOptions): Promise<RunResult<T>> {
    const outcome = await this.execute(code, options);
    const result: RunResult<T> = { stdout: outcome.stdout, stderr: outcome.stderr, exitCode: outcome.exitCode };
    if (outcome.exitCode === 0 && outcome.returned) result.value = outcome.returned.value as T;
    return result;
  }

  /**
   * Starts a long-running guest. It runs until it exits or is killed (no hidden time cap);
   * `timeout` and `signal` are honoured; `dispose()` kills it.
   */
  async spawn(code: string, options?: ExecOptions): Promise<SpawnedGuest> {
    this.assertLive();
    if (typeof code !== "string") throw new TypeError("secure-exec: code must be a string");
    const call = await parseCallOptions(options, "spawn option");
    if (call.signal?.aborted) throw call.signal.reason ?? new DOMException("This operation was aborted", "AbortError");
    const pid = this.nextPid++;
    const control = new RunHandle();
    const initialStdin = call.stdin;
    let exitCode: number | null = null;
    const finished = this.launch(code, { ...call, stdin: undefined }, {
      depth: 0,
      stdinMode: "stream",
      control,
      pid,
    }).then((outcome) => {
      exitCode = outcome.exitCode;
      return outcome.exitCode;
    });
    finished.catch(() => {});
    const toBase64 = (data: string | Uint8Array) =>
      (typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data.buffer, data.byteOffset, data.byteLength)).toString("base64");
    const guest: SpawnedGuest = {
      pid,
      get exitCode() {
        return exitCode;
      },
      async writeStdin(data) {
        if (typeof data !== "string" && !(data instanceof Uint8Array)) {
          throw new TypeError("secure-exec: writeStdin takes a string or Uint8Array");
        }
        await control.deliver({ kind: "stdin", data: toBase64(data) });
      },
      async closeStdin() {
        await control.deliver({ kind: "stdin-end" });
      },
      kill(signal = "SIGTERM") {
        const number = signalNumber(signal);
        control.kill(128 + number);
      },
      wait: () => finished,
    };
    this.spawned.add(guest);
    void finished.finally(() => this.spawned.delete(guest)).catch(() => {});
    if (initialStdin !== undefined) {
      await guest.writeStdin(initialStdin);
      await guest.closeStdin();
    }
    return guest;
  }

  /** Sends an HTTP request to a guest server listening on `port` (no host port is opened). */
  async fetch(port: number, request: GuestFetchRequest = {}): Promise<GuestFetchResponse> {
    this.assertLive();
    return this.servers.fetch(port, request);
  }

  /** The guest server listening on `port`, if any. */
  findListener(query: ListenerQuery): ListenerInfo | undefined {
    return this.servers.find(query);
  }

  /** Resolves once a guest listens on `port`; rejects after `timeoutMs` or on abort. */
  async waitForListener(query: ListenerQuery, options: WaitForListenerOptions = {}): Promise<ListenerInfo> {
    this.assertLive();
    return this.servers.waitFor(query, options);
  }

  /** A live guest for low-latency repeated evaluation; disposed with the runtime. */
  async createResidentRunner(options: ResidentRunnerOptions = {}): Promise<ResidentRunner> {
    this.assertLive();
    const { startResidentRunner } = await import("../host/engine/resident-runner.js");
    const runner = await startResidentRunner({
      ...options,
      // The runtime's default deadline applies to snippets too.
      timeout: options.timeout ?? this.options.limits.timeoutMs,
      env: this.options.env,
      cwd: this.options.cwd,
      memoryMb: this.options.limits.memoryMb,
      outputBytes: this.options.limits.outputBytes,
      returnBytes: this.options.limits.returnBytes,
    });
    this.residentRunners.add(runner);
    const dispose = runner.dispose.bind(runner);
    runner.dispose = async () => {
      this.residentRunners.delete(runner);
      await dispose();
    };
    return runner;
  }

  /** Writes a file into the runtime's virtual filesystem. */
  async writeFile(path: string, data: string | Uint8Array): Promise<void> {
    this.assertLive();
    this.vfs.writeFile(path, data);
  }

  /** Reads a file of the runtime's virtual filesystem. */
  async readFile(path: string): Promise<Uint8Array> {
    this.assertLive();
    return this.vfs.readFile(path);
  }

  /** Lists a directory of the runtime's virtual filesystem. */
  async readDir(path: string): Promise<string[]> {
    this.assertLive();
    return this.vfs.readDir(path);
  }

  /** Adds tools to the live runtime; later runs can call them. */
  async registerTools(definitions: ToolDefinitions): Promise<void> {
    this.assertLive();
    await loadToolDefinitionChecks();
    this.tools.register(definitions);
  }

  stats(): RuntimeStats {
    return {
      runs: this.runsTotal,
      runsInFlight: this.runsInFlight,
      processesLost: this.pool.processesLost,
      preloadedRuns: this.pool.preloadHits,
      processes: [...this.pool.processes].map((sandbox) => ({
        pid: sandbox.pid,
        state: sandbox.state,
        runsInFlight: sandbox.inFlight.size,
        runsStarted: sandbox.runsStarted,
        rssKb: sandbox.residentMemoryKb(),
      })),
    };
  }

  /** What the runtime holds right now: processes, runs in flight, memory, filesystem use. */
  getResourceSnapshot(): ResourceSnapshot {
    const stats = this.stats();
    const rssKb = stats.processes.reduce((total, p) => total + (p.rssKb ?? 0), 0);
    const fsUsage = this.vfs.usage();
    return {
      processes: stats.processes.length,
      processDetails: stats.processes,
      runsInFlight: stats.runsInFlight,
      runsTotal: stats.runs,
      processesLost: stats.processesLost,
      memory: { rssBytes: rssKb * 1024 },
      files: { count: fsUsage.files, bytes: fsUsage.bytes },
      spawned: this.spawned.size,
      listeners: this.servers.ports(),
      packageBundles: this.packages.usage(),
    };
  }

  /** Pids of the runtime's live sandbox processes. */
  processIds(): number[] {
    return [...this.pool.processes].map((sandbox) => sandbox.pid);
  }

  /** Stops every process the runtime started; later calls reject. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const guest of this.spawned) guest.kill("SIGKILL");
    this.servers.close();
    await Promise.all([...this.residentRunners].map((runner) => runner.dispose()));
    await this.pool.dispose();
    this.releaseSpares();
  }

  private assertLive(): void {
    if (this.disposed) throw new PoolDisposedError();
  }

  private async execute(code: string, options: ExecOptions | undefined): Promise<RunOutcome> {
    this.assertLive();
    if (typeof code !== "string") throw new TypeError("secure-exec: code must be a string");
    const call = await parseCallOptions(options, "exec option");
    if (call.signal?.aborted) throw call.signal.reason ?? new DOMException("This operation was aborted", "AbortError");
    return this.launch(code, call, { depth: 0 });
  }

  /** Starts one guest run of this runtime: top-level calls, spawned guests and child guests alike. */
  private async launch(
    code: string,
    call: ExecOptions & { argv?: string[]; eval?: boolean },
    extras: { depth: number; stdinMode?: "buffer" | "stream"; control?: RunHandle; pid?: number; family?: RunFamily },
  ): Promise<RunOutcome> {
    const control = extras.control ?? new RunHandle();
    try {
      return await this.compileAndRun(code, call, { ...extras, control, family: extras.family ?? newRunFamily() });
    } finally {
      // Messages waiting for a run that never started get their answer.
      control.end();
    }
  }

  private async compileAndRun(
    code: string,
    call: ExecOptions & { argv?: string[]; eval?: boolean },
    extras: { depth: number; stdinMode?: "buffer" | "stream"; control: RunHandle; pid?: number; family: RunFamily },
  ): Promise<RunOutcome> {
    let guestModule: string;
    const extraModules: Record<string, BundledModule> = {};
    const sandboxModules = new Set<string>();
    const limits = this.options.limits;
    const timeoutMs = call.timeout ?? limits.timeoutMs;
    const compileStarted = performance.now();
    // Compiling ends early at the deadline, on abort, and on a kill before the start.
    const stopCompiling = linkAbortSignals([extras.control.killedBeforeStart, call.signal]);
    let deadlinePassed = false;
    const deadlineTimer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            deadlinePassed = true;
            stopCompiling.abort(new Error("time limit"));
          }, timeoutMs);
    try {
      guestModule = await this.packages.compile(code, call.language ?? this.options.language, stopCompiling.signal, extraModules, sandboxModules);
      for (const name of sandboxModulesOf(guestModule)) sandboxModules.add(name);
    } catch (error) {
      let outcome: RunOutcome;
      const earlyKill = extras.control.earlyKill;
      if (call.signal?.aborted) throw call.signal.reason;
      if (earlyKill) {
        outcome = { stdout: "", stderr: earlyKill.reason ?? "", exitCode: earlyKill.exitCode, outcome: "exited" };
      } else if (deadlinePassed) {
        outcome = {
          stdout: "",
          stderr: `secure-exec: time limit of ${timeoutMs} ms exceeded while compiling the guest; the guest was killed\n`,
          exitCode: EXIT_KILLED,
          outcome: "timeout",
        };
      } else if (error instanceof GuestSyntaxError) outcome = syntaxErrorOutcome(code, error);
      else if (error instanceof ModuleNotFoundError || error instanceof UnsupportedSchemeError || error instanceof GuestCompileError || error instanceof PackageBundleError) {
        outcome = { stdout: "", stderr: `${error.name}: ${error.message}\n`, exitCode: 1, outcome: "exited" };
      } else throw error;
      guardedListener(call.onStderr, "onStderr")?.(new TextEncoder().encode(outcome.stderr));
      return outcome;
    } finally {
      clearTimeout(deadlineTimer);
      stopCompiling.unlink();
    }
    // The env permission decides which variables a guest sees at all.
    const env = Object.fromEntries(
      Object.entries({ ...this.options.env, ...call.env }).filter(([name]) => isPermitted(this.options.permissions?.env, name, "allow")),
    );
    const cwd = call.cwd ?? this.options.cwd;
    const { request, onHostMessage } = await prepareCapabilities(this.capabilities, {
      sandboxModules,
      cwd,
      env,
      depth: extras.depth,
      pid: extras.pid ?? 0,
      control: extras.control,
      family: extras.family,
    });
    this.runsInFlight += 1;
    this.runsTotal += 1;
    try {
      return await executeRun(this.pool, {
        ...request,
        guestModule,
        env,
        cwd,
        stdin: call.stdin,
        argv: call.argv,
        eval: call.eval,
        pid: extras.pid,
        stdinMode: extras.stdinMode,
        control: extras.control,
        extraModules: Object.keys(extraModules).length > 0 ? extraModules : undefined,
        runtimeModules: [...sandboxModules],
        timeoutMs,
        spentMs: performance.now() - compileStarted,
        cpuTimeLimitMs: call.cpuTimeLimitMs ?? limits.cpuTimeLimitMs,
        signal: call.signal,
        onStdout: call.onStdout,
        onStderr: call.onStderr,
        outputBytes: limits.outputBytes,
        returnBytes: limits.returnBytes,
        memoryMb: limits.memoryMb,
        onHostMessage: (runId, signal, control) => onHostMessage({ runId, signal, control }),
      });
    } finally {
      this.runsInFlight -= 1;
    }
  }
}

function syntaxErrorOutcome(code: string, error: GuestSyntaxError): RunOutcome {
  return { stdout: "", stderr: syntaxErrorReport(code, error), exitCode: 1, outcome: "exited" };
}
