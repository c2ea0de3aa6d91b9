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
  ToolDefinitions,
} from "./types.js";
import { startResidentRunner } from "../host/resident-runner.js";
import { execOptionsSchema, isPermitted, parseOptions, runtimeOptionsSchema } from "./options.js";
import { GuestSyntaxError, GUEST_MODULE_NAME, sandboxModulesOf, syntaxErrorReport, usesVirtualFs } from "../host/guest-module.js";
import { compileGuest, GuestCompileError } from "../host/guest-compiler.js";
import { VirtualFs, type FsChanges } from "../host/virtual-fs.js";
import { NodeModulesBundler, type BundledModule } from "../host/node-modules.js";
import { isBareSpecifier, ModuleNotFoundError, PackageLoadError } from "../host/specifiers.js";
import { ProcessPool, PoolDisposedError } from "../host/process-pool.js";
import { executeRun, EXIT_KILLED, guardedListener, RunHandle, type RunControl, type RunOutcome } from "../host/run-executor.js";
import { GuestChildProcesses } from "../host/child-processes.js";
import { signalNumber } from "../host/signals.js";
import { retainSpares } from "../host/spare-processes.js";
import { ToolGateway, defaultToolCallLimits } from "../host/tool-gateway.js";
import type { z } from "zod";
import { randomUUID } from "node:crypto";
import { existsSync, statSync } from "node:fs";

type ParsedRuntimeOptions = z.infer<typeof runtimeOptionsSchema>;

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
}

export interface RuntimeStats {
  runs: number;
  runsInFlight: number;
  processes: { pid: number; state: string; runsInFlight: number; runsStarted: number; rssKb?: number }[];
  processesLost: number;
}

export class NodeRuntime {
  private disposed = false;
  private readonly residentRunners = new Set<ResidentRunner>();
  private readonly spawned = new Set<SpawnedGuest>();
  private readonly listeners = new Map<number, { pid: number; control: RunControl }>();
  /** This runtime's turn in the shared compiler threads' queue. */
  private readonly compileQueue = randomUUID();
  private readonly listenerWaiters = new Set<() => void>();
  private nextPid = 1;
  private runsInFlight = 0;
  private runsTotal = 0;

  private constructor(
    private readonly options: ParsedRuntimeOptions,
    private readonly pool: ProcessPool,
    private readonly tools: ToolGateway,
    private readonly releaseSpares: () => void,
    private readonly vfs: VirtualFs,
  ) {}

  /** Validates the options, starts the runtime's first sandbox process and resolves when it is ready. */
  static async create(options: NodeRuntimeOptions = {}): Promise<NodeRuntime> {
    const started = performance.now();
    const parsed = parseOptions(runtimeOptionsSchema, options, "NodeRuntime.create option");
    if (parsed.nodeModules) {
      const dir = typeof parsed.nodeModules === "string" ? parsed.nodeModules : parsed.nodeModules.hostPath;
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        throw new TypeError(`secure-exec: invalid NodeRuntime.create option "nodeModules": ${dir} is not a directory`);
      }
    }
    const tools = new ToolGateway({ ...defaultToolCallLimits, toolCalls: parsed.limits.toolCalls });
    if (parsed.tools) tools.register(parsed.tools as ToolDefinitions);
    const report = (phase: string, durationMs: number) => parsed.onBootTiming?.({ phase, durationMs });
    const vfs = await VirtualFs.create({
      files: parsed.files,
      mounts: parsed.mounts,
      maxBytes: parsed.limits.fsBytes,
      maxFiles: parsed.limits.fsFiles,
      policy: parsed.permissions?.fs,
      directories: [parsed.cwd, "/tmp"],
    });
    const releaseSpares = retainSpares();
    const pool = new ProcessPool(parsed.limits, report);
    try {
      await pool.warmUp();
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
    if (outcome.exitCode === 0 && outcome.returnJson !== undefined) result.value = JSON.parse(outcome.returnJson) as T;
    return result;
  }

  /**
   * Starts a long-running guest. It runs until it exits or is killed (no hidden time cap);
   * `timeout` and `signal` are honoured; `dispose()` kills it.
   */
  async spawn(code: string, options?: ExecOptions): Promise<SpawnedGuest> {
    this.assertLive();
    if (typeof code !== "string") throw new TypeError("secure-exec: code must be a string");
    const call = parseOptions(execOptionsSchema, options, "spawn option");
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
    const listener = this.listeners.get(port);
    if (!listener) throw new Error(`secure-exec: no guest is listening on port ${port}`);
    const body =
      request.body === undefined
        ? undefined
        : (typeof request.body === "string" ? Buffer.from(request.body) : Buffer.from(request.body)).toString("base64");
    const reply = (await listener.control.deliver({
      kind: "http-request",
      port,
      method: (request.method ?? "GET").toUpperCase(),
      path: request.path ?? "/",
      headers: request.headers ?? {},
      body,
    })) as { ok: boolean; error?: string; status?: number; statusText?: string; headers?: Record<string, string>; body?: string };
    if (!reply.ok) throw new Error(`secure-exec: guest server on port ${port} failed: ${reply.error ?? "no response"}`);
    return {
      status: reply.status ?? 200,
      statusText: reply.statusText ?? "",
      headers: reply.headers ?? {},
      body: Buffer.from(reply.body ?? "", "base64").toString("utf8"),
    };
  }

  /** The guest server listening on `port`, if any. */
  findListener(query: ListenerQuery): ListenerInfo | undefined {
    const listener = this.listeners.get(query.port);
    return listener ? { port: query.port, pid: listener.pid } : undefined;
  }

  /** Resolves once a guest listens on `port`; rejects after `timeoutMs` or on abort. */
  async waitForListener(query: ListenerQuery, options: WaitForListenerOptions = {}): Promise<ListenerInfo> {
    this.assertLive();
    const found = this.findListener(query);
    if (found) return found;
    return new Promise<ListenerInfo>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        this.listenerWaiters.delete(check);
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const check = () => {
        const listener = this.findListener(query);
        if (listener) {
          cleanup();
          resolve(listener);
        } else if (this.disposed) {
          cleanup();
          reject(new PoolDisposedError());
        }
      };
      const onAbort = () => {
        cleanup();
        reject(options.signal?.reason ?? new DOMException("This operation was aborted", "AbortError"));
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new Error(`secure-exec: no guest listened on port ${query.port} within ${options.timeoutMs} ms`));
        }, options.timeoutMs);
      }
      this.listenerWaiters.add(check);
    });
  }

  /** A live guest for low-latency repeated evaluation; disposed with the runtime. */
  async createResidentRunner(options: ResidentRunnerOptions = {}): Promise<ResidentRunner> {
    this.assertLive();
    const runner = await startResidentRunner({
      ...options,
      // The runtime's default deadline applies to snippets too.
      timeout: options.timeout ?? this.options.limits.timeoutMs,
      env: this.options.env,
      cwd: this.options.cwd,
      memoryMb: this.options.limits.memoryMb,
      outputBytes: this.options.limits.outputBytes,
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
    this.tools.register(definitions);
  }

  stats(): RuntimeStats {
    return {
      runs: this.runsTotal,
      runsInFlight: this.runsInFlight,
      processesLost: this.pool.processesLost,
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
      listeners: [...this.listeners.keys()],
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
    for (const waiter of [...this.listenerWaiters]) waiter();
    await Promise.all([...this.residentRunners].map((runner) => runner.dispose()));
    await this.pool.dispose();
    this.releaseSpares();
  }

  private bundler: NodeModulesBundler | undefined;
  private readonly bundledPackages = new Map<
    string,
    { modules: Record<string, BundledModule>; entry: string; sandboxModules: Set<string> }
  >();

  /**
   * Module name for a guest's `import "pkg"`, adding the package's modules to `into` and the
   * sandbox builtins they import to `sandboxModules`.
   */
  private resolvePackage(specifier: string, into: Record<string, BundledModule>, sandboxModules: Set<string>): string {
    const setting = this.options.nodeModules;
    if (!setting) throw new ModuleNotFoundError(specifier, `file://${this.options.cwd}/${GUEST_MODULE_NAME}`);
    let bundled = this.bundledPackages.get(specifier);
    if (!bundled) {
      this.bundler ??= new NodeModulesBundler(typeof setting === "string" ? setting : setting.hostPath);
      let bundle: ReturnType<NodeModulesBundler["bundle"]>;
      try {
        bundle = this.bundler.bundle([specifier], `file://${this.options.cwd}/${GUEST_MODULE_NAME}`);
      } catch (error) {
        // The guest's import fails (in its import(), where it can be caught), not the call.
        if (error instanceof ModuleNotFoundError || !(error instanceof Error)) throw error;
        throw new PackageLoadError(specifier, error);
      }
      bundled = { modules: bundle.modules, entry: bundle.entries.get(specifier)!, sandboxModules: bundle.sandboxModules };
      this.bundledPackages.set(specifier, bundled);
    }
    Object.assign(into, bundled.modules);
    for (const name of bundled.sandboxModules) sandboxModules.add(name);
    return bundled.entry;
  }

  private assertLive(): void {
    if (this.disposed) throw new PoolDisposedError();
  }

  private async execute(code: string, options: ExecOptions | undefined): Promise<RunOutcome> {
    this.assertLive();
    if (typeof code !== "string") throw new TypeError("secure-exec: code must be a string");
    const call = parseOptions(execOptionsSchema, options, "exec option");
    if (call.signal?.aborted) throw call.signal.reason ?? new DOMException("This operation was aborted", "AbortError");
    return this.launch(code, call, { depth: 0 });
  }

  /** Starts one guest run of this runtime: top-level calls, spawned guests and child guests alike. */
  private async launch(
    code: string,
    call: ExecOptions & { argv?: string[] },
    extras: { depth: number; stdinMode?: "buffer" | "stream"; control?: RunHandle; pid?: number },
  ): Promise<RunOutcome> {
    const control = extras.control ?? new RunHandle();
    try {
      return await this.compileAndRun(code, call, { ...extras, control });
    } finally {
      // Messages waiting for a run that never started get their answer.
      control.end();
    }
  }

  private async compileAndRun(
    code: string,
    call: ExecOptions & { argv?: string[] },
    extras: { depth: number; stdinMode?: "buffer" | "stream"; control: RunHandle; pid?: number },
  ): Promise<RunOutcome> {
    let guestModule: string;
    const extraModules: Record<string, BundledModule> = {};
    const sandboxModules = new Set<string>();
    const limits = this.options.limits;
    const timeoutMs = call.timeout ?? limits.timeoutMs;
    const compileStarted = performance.now();
    // Compiling ends early at the deadline, on abort, and on a kill before the start.
    const compileDeadline = new AbortController();
    const deadlineTimer = timeoutMs === undefined ? undefined : setTimeout(() => compileDeadline.abort(new Error("time limit")), timeoutMs);
    const stopCompiling = AbortSignal.any([compileDeadline.signal, extras.control.killedBeforeStart, ...(call.signal ? [call.signal] : [])]);
    try {
      guestModule = await compileGuest(code, {
        language: call.language ?? this.options.language,
        resolveBare: (specifier) => (isBareSpecifier(specifier) ? this.resolvePackage(specifier, extraModules, sandboxModules) : undefined),
        queue: this.compileQueue,
        signal: stopCompiling,
      });
      for (const name of sandboxModulesOf(guestModule)) sandboxModules.add(name);
    } catch (error) {
      let outcome: RunOutcome;
      const earlyKill = extras.control.earlyKill;
      if (call.signal?.aborted) throw call.signal.reason;
      if (earlyKill) {
        outcome = { stdout: "", stderr: earlyKill.reason ?? "", exitCode: earlyKill.exitCode, outcome: "exited" };
      } else if (compileDeadline.signal.aborted) {
        outcome = {
          stdout: "",
          stderr: `secure-exec: time limit of ${timeoutMs} ms exceeded while compiling the guest; the guest was killed\n`,
          exitCode: EXIT_KILLED,
          outcome: "timeout",
        };
      } else if (error instanceof GuestSyntaxError) outcome = syntaxErrorOutcome(code, error);
      else if (error instanceof ModuleNotFoundError || error instanceof GuestCompileError) {
        outcome = { stdout: "", stderr: `${error.name}: ${error.message}\n`, exitCode: 1, outcome: "exited" };
      } else throw error;
      guardedListener(call.onStderr, "onStderr")?.(new TextEncoder().encode(outcome.stderr));
      return outcome;
    } finally {
      clearTimeout(deadlineTimer);
    }
    const permissions = this.options.permissions;
    // The env permission decides which variables a guest sees at all.
    const env = Object.fromEntries(
      Object.entries({ ...this.options.env, ...call.env }).filter(([name]) => isPermitted(permissions?.env, name, "allow")),
    );
    const control = extras.control;
    this.runsInFlight += 1;
    this.runsTotal += 1;
    try {
      return await executeRun(this.pool, {
        guestModule,
        env,
        cwd: call.cwd ?? this.options.cwd,
        stdin: call.stdin,
        argv: call.argv,
        pid: extras.pid,
        stdinMode: extras.stdinMode,
        control,
        extraModules: Object.keys(extraModules).length > 0 ? extraModules : undefined,
        networkPolicy: permissions?.network,
        runtimeModules: [...sandboxModules],
        fs: usesVirtualFs(sandboxModules)
          ? { snapshot: await this.vfs.snapshot(), onChanges: (changes) => this.vfs.apply(changes as FsChanges) }
          : undefined,
        onListenerChange: (port, listening) => {
          const pid = extras.pid ?? 0;
          if (listening) {
            this.listeners.set(port, { pid, control });
          } else if (this.listeners.get(port)?.control === control) {
            this.listeners.delete(port);
          }
          for (const waiter of [...this.listenerWaiters]) waiter();
        },
        timeoutMs,
        spentMs: performance.now() - compileStarted,
        cpuTimeLimitMs: call.cpuTimeLimitMs ?? limits.cpuTimeLimitMs,
        signal: call.signal,
        onStdout: call.onStdout,
        onStderr: call.onStderr,
        outputBytes: limits.outputBytes,
        memoryMb: limits.memoryMb,
        onHostMessage: (runId, signal, control) => {
          const toolScope = {
            runId,
            tenant: this.options.tenant,
            signal,
            counters: { calls: 0, inFlight: 0 },
            isAllowed: (name: string) => isPermitted(permissions?.tool, name, "allow"),
          };
          const children = new GuestChildProcesses({
            parent: control,
            cwd: call.cwd ?? this.options.cwd,
            readScript: (path) => {
              try {
                return new TextDecoder().decode(this.vfs.readFile(path));
              } catch {
                return undefined;
              }
            },
            parentSignal: signal,
            depth: extras.depth,
            tools: this.tools,
            toolScope,
            baseEnv: env,
            isAllowed: (command) => isPermitted(permissions?.childProcess, command, "allow"),
            startGuest: (childCode, child) =>
              this.launch(
                childCode,
                { env: child.env, cwd: child.cwd, argv: child.argv, signal: child.signal, onStdout: child.onStdout, onStderr: child.onStderr },
                { depth: child.depth, stdinMode: "stream", control: child.control },
              ),
          });
          return (message) => {
            if (typeof message.kind === "string" && message.kind.startsWith("child-")) {
              return children.handle(message as Record<string, unknown>);
            }
            return this.tools.call(message.name, message.input, toolScope);
          };
        },
      });
    } finally {
      this.runsInFlight -= 1;
    }
  }
}

function syntaxErrorOutcome(code: string, error: GuestSyntaxError): RunOutcome {
  return { stdout: "", stderr: syntaxErrorReport(code, error), exitCode: 1, outcome: "exited" };
}
