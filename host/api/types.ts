// Public types of the secure-exec SDK.

export type OutputListener = (chunk: Uint8Array) => void;

/** Per-call options of `exec`, `run` and `spawn`. */
export interface ExecOptions {
  /** `"ts"`: the code is TypeScript (types are stripped). Default: the runtime's `language`. */
  language?: "js" | "ts";
  /** Piped to the guest's `process.stdin`, followed by end-of-input. */
  stdin?: string | Uint8Array;
  /** Merged over the runtime's `env` for this call. */
  env?: Record<string, string>;
  /** `process.cwd()` for this call. */
  cwd?: string;
  /** Wall-clock limit in ms; on expiry the call resolves with exit code 137. */
  timeout?: number;
  /** Budget in ms for the guest keeping its sandbox process busy; on expiry exit code 137. */
  cpuTimeLimitMs?: number;
  /** Aborting kills the guest and rejects the call with the signal's reason. */
  signal?: AbortSignal;
  onStdout?: OutputListener;
  onStderr?: OutputListener;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunResult<T = unknown> extends ExecResult {
  /** What the guest passed to `__return` (set only when `exitCode === 0`). */
  value?: T;
}

export interface RuntimeLimits {
  /**
   * MiB each sandbox process may allocate for guests, above its idle footprint, what finished
   * runs left behind (`recycleMb`) and 4 MiB per run in flight: the process is capped (RLIMIT_DATA)
   * at idle + `recycleMb` + `memoryMb` + 4 × `concurrentRunsPerProcess`. Not a per-run heap
   * limit: a run past the cap ends with 137, `… ran out of memory (limits.memoryMb = N)`.
   */
  memoryMb: number;
  /** Default `cpuTimeLimitMs` of every call. */
  cpuTimeLimitMs?: number;
  /** Default `timeout` of every call. */
  timeoutMs?: number;
  /** Cap on captured bytes per output channel per call. */
  outputBytes: number;
  /**
   * Cap on the JSON of one call's `__return` value (default 1 MiB); past it, or past 1,000
   * levels of nesting or `returnBytes / 10` objects and arrays, the run is killed (137).
   */
  returnBytes: number;
  /** Most tool calls one top-level run may make, its child processes' calls included. */
  toolCalls: number;
  /** Most sandbox processes this runtime keeps (more start only while some are stuck). */
  processes: number;
  /** Runs a process serves before it is recycled. */
  runsPerProcess: number;
  /** Memory in MiB a process may accumulate (isolates are never given back) before it is recycled. */
  recycleMb: number;
  /** Runs in flight on one process at once. */
  concurrentRunsPerProcess: number;
  /** Byte cap of the virtual filesystem, mounts included (default 8 MiB; see docs/filesystem.md). */
  fsBytes: number;
  /** Most files plus directories in the virtual filesystem, mounts included (default 10,000). */
  fsFiles: number;
  /** Network requests one run (with its child processes) may have in flight at once (default 16; see docs/networking.md). */
  egressConnections: number;
  /** Bytes one run (with its child processes) may send and receive over the network (default 256 MiB). */
  egressBytes: number;
}

export interface BootTiming {
  phase: string;
  durationMs: number;
}

export interface ToolContext {
  /** Id of the run that made the call. */
  runId: string;
  /** Tenant label of the runtime (`NodeRuntimeOptions.tenant`). */
  tenant: string;
  /** Fires when the run ends or is killed, so host work can stop. */
  signal: AbortSignal;
}

/** A JSON Schema object describing a tool's input. */
export type JsonSchema = { [key: string]: unknown };

export interface HostToolDefinition<Input = unknown, Output = unknown> {
  description: string;
  inputSchema: JsonSchema;
  handler: (input: Input, context: ToolContext) => Output | Promise<Output>;
  timeoutMs?: number;
  examples?: unknown[];
  commandAliases?: string[];
}

export type ToolDefinitions = Record<string, HostToolDefinition<never, unknown>>;

export interface NodeRuntimeOptions {
  /** Defaults for every call's `process.env`. */
  env?: Record<string, string>;
  /** Default `process.cwd()` (default `/workspace`). */
  cwd?: string;
  /** Label passed to tool handlers and metrics. */
  tenant?: string;
  /** Default language of guest code: `"js"` (default) or `"ts"`. */
  language?: "js" | "ts";
  tools?: ToolDefinitions;
  /** Host `node_modules` directory guests may `import` packages from. */
  nodeModules?: string | { hostPath: string; guestPath?: string };
  /** Seeds the runtime's virtual filesystem: absolute path → contents. */
  files?: Record<string, string | Uint8Array>;
  /** Host directories projected into the virtual filesystem (read-only unless `readOnly: false`). */
  mounts?: { hostPath: string; guestPath: string; readOnly?: boolean }[];
  /** What guests may reach; see docs/permissions.md. Network is denied unless granted here. */
  permissions?: Permissions;
  limits?: Partial<RuntimeLimits>;
  onBootTiming?: (timing: BootTiming) => void;
}

export interface ResidentRunnerOptions {
  /** Default `timeout` of each snippet in ms. */
  timeout?: number;
}

export interface ResidentExecOptions {
  /** Wall-clock limit in ms; on expiry the runner is killed and this call resolves with 137. */
  timeout?: number;
}

/** One live guest: snippets share its globals; one `exec` in flight at a time. */
export interface ResidentRunner {
  exec(code: string, options?: ResidentExecOptions): Promise<RunResult>;
  dispose(): Promise<void>;
}

/** A long-running guest started with `rt.spawn()`. */
export interface SpawnedGuest {
  /** Sandbox-local process id (not an OS pid). */
  readonly pid: number;
  /** `null` while running, then the exit code (128 + signal number when killed). */
  readonly exitCode: number | null;
  writeStdin(data: string | Uint8Array): Promise<void>;
  closeStdin(): Promise<void>;
  /** Ends the guest; accepts a signal name (`"SIGTERM"`, `"SIGKILL"`, …) or number. */
  kill(signal?: string | number): void;
  /** Resolves with the exit code once the guest has ended. */
  wait(): Promise<number>;
}

export interface GuestFetchRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface GuestFetchResponse {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: string;
}

export interface ListenerQuery {
  port: number;
}

export interface ListenerInfo {
  port: number;
  /** `pid` of the spawned guest that listens. */
  pid: number;
}

export interface WaitForListenerOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** `"allow"`, `"deny"`, or rules tried in order (first match wins; `*` matches any run of characters). */
export type PermissionPolicy =
  | "allow"
  | "deny"
  | { default: "allow" | "deny"; rules?: { pattern: string; action: "allow" | "deny" }[] };

export interface Permissions {
  /** Guest paths (`read:` / `write:` prefixes select the operation); default allow. */
  fs?: PermissionPolicy;
  /** `host:port` or `host` of guest fetches; default deny. */
  network?: PermissionPolicy;
  /** Commands of guest `node:child_process`; default allow. */
  childProcess?: PermissionPolicy;
  /** Tool names; default allow. */
  tool?: PermissionPolicy;
  /** Names of environment variables the guest may see (runtime and per-call env); default allow. */
  env?: PermissionPolicy;
}
