// `node:child_process` for guests: `node` and tool commands run as further sandboxed
// guests on the host's side; anything else fails with ENOENT. Output and exit arrive as
// deliveries to this isolate; stdin, kill and spawn go out as host calls.
const { EventEmitter } = process.getBuiltinModule("node:events");
const { Readable, Writable } = process.getBuiltinModule("node:stream");
const { promisify } = process.getBuiltinModule("node:util");

import { bridge as runBridge, deliveryHandlers, sandboxBuiltins } from "./secure-exec-bridge.js";

const children = new Map();
const bridge = {
  hostCall: (message) => runBridge.current.hostCall(message),
  hold: () => runBridge.current.hold(),
};

// Events can arrive before the spawn call's own reply: they wait here for their child.
const early = new Map();

function dispatch(message) {
  const child = children.get(message.childId);
  if (!child) {
    if (!early.has(message.childId)) early.set(message.childId, []);
    early.get(message.childId).push(message);
    return;
  }
  if (message.kind === "child-output") {
    const name = message.stream === "stderr" ? "stderr" : "stdout";
    const bytes = Buffer.from(message.data, "base64");
    if (child._stdio[name] === "inherit") process[name].write(bytes);
    else if (child._stdio[name] === "pipe") child[name].push(bytes);
  } else if (message.kind === "child-exit") {
    child._exit(message.code, message.signal ?? null);
  }
}

for (const kind of ["child-output", "child-exit"]) {
  deliveryHandlers.set(kind, async (message) => {
    dispatch(message);
    return { ok: true };
  });
}

function systemError(code, syscall, path, message) {
  const error = new Error(message ?? `${syscall} ${path} ${code}`);
  error.code = code;
  error.errno = code === "ENOENT" ? -2 : -1;
  error.syscall = syscall;
  error.path = path;
  return error;
}

let nextPid = 1000;
/** Raw bytes of stdin per host call: as base64 they stay well under the host-call cap. */
const STDIN_PIECE_BYTES = 512 * 1024;

/** Each of stdin, stdout, stderr: "pipe", "inherit" or "ignore" (streams and fds 0-2 count as inherit). */
function stdioModes(stdio) {
  const list = typeof stdio === "string" ? [stdio, stdio, stdio] : Array.isArray(stdio) ? stdio : [];
  const mode = (value, index) => {
    if (value === undefined || value === null || value === "pipe" || value === "overlapped") return "pipe";
    if (value === "ignore") return "ignore";
    if (value === "inherit" || value === index || (index > 0 && value === process[index === 1 ? "stdout" : "stderr"]) || (index === 0 && value === process.stdin)) return "inherit";
    if (typeof value === "number" && (value === 1 || value === 2)) return "inherit";
    const error = new TypeError(`The argument 'stdio' is invalid. Received ${typeof value === "string" ? `'${value}'` : typeof value}`);
    error.code = "ERR_INVALID_ARG_VALUE";
    throw error;
  };
  return { stdin: mode(list[0], 0), stdout: mode(list[1], 1), stderr: mode(list[2], 2) };
}

class ChildProcess extends EventEmitter {
  constructor(command, args, stdio = { stdin: "pipe", stdout: "pipe", stderr: "pipe" }) {
    super();
    this._stdio = stdio;
    this.pid = undefined;
    this.spawnfile = command;
    this.spawnargs = [command, ...args];
    this.exitCode = null;
    this.signalCode = null;
    this.killed = false;
    this.childId = undefined;
    this.stdout = new Readable({ read() {} });
    this.stderr = new Readable({ read() {} });
    const child = this;

    this.stdin = this._stdinWritable = new Writable({
      write(chunk, encoding, callback) {
        // In pieces that fit a host call (the host refuses larger ones unread).
        const bytes = Buffer.from(chunk, encoding);
        const send = async () => {
          let offset = 0;
          do {
            await child._send({ kind: "child-stdin", data: bytes.subarray(offset, offset + STDIN_PIECE_BYTES).toString("base64") });
            offset += STDIN_PIECE_BYTES;
          } while (offset < bytes.length);
        };
        send().then(() => callback(), callback);
      },
      final(callback) {
        child._send({ kind: "child-stdin-end" }).then(() => callback(), callback);
      },
    });
    // Not piped: Node's child has no stream for it.
    if (stdio.stdout !== "pipe") this.stdout = null;
    if (stdio.stderr !== "pipe") this.stderr = null;
    if (stdio.stdin !== "pipe") this.stdin = null;
    this.stdio = [this.stdin, this.stdout, this.stderr];
    this.release = bridge.hold();
  }

  async _send(message) {
    if (this.childId === undefined) await this._started;
    if (this.childId === undefined || this.exitCode !== null) return;
    await bridge.hostCall({ ...message, childId: this.childId });
  }

  _exit(code, signal) {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = signal ? null : code;
    this.signalCode = signal;
    this.stdout?.push(null);
    this.stderr?.push(null);
    children.delete(this.childId);
    // Node emits 'exit' first, then 'close' once the stdio streams have ended.
    queueMicrotask(() => {
      this.emit("exit", this.exitCode, this.signalCode);
      queueMicrotask(() => {
        this.emit("close", this.exitCode, this.signalCode);
        this.release();
      });
    });
  }

  kill(signal = "SIGTERM") {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    this.killed = true;
    void this._send({ kind: "child-kill", signal: String(signal) });
    return true;
  }

  ref() {
    return this;
  }

  unref() {
    return this;
  }
}

function normalizeSpawnArguments(args, options) {
  if (!Array.isArray(args)) {
    options = args;
    args = [];
  }
  return { args: args.map(String), options: options ?? {} };
}

/** Shell syntax that needs a real shell: pipes, lists, redirection, substitution, globs, variables. */
const SHELL_SYNTAX = /[|&;<>()`$*?]/;

/** Whether a command line has shell syntax outside quotes. */
function needsShell(line) {
  let quote = null;
  for (let i = 0; i < line.length; i += 1) {
    const char = line[i];
    if (quote) {
      if (char === quote) quote = null;
      else if (char === "\\" && quote === '"') i += 1;
    } else if (char === "'" || char === '"') quote = char;
    else if (char === "\\") i += 1;
    else if (SHELL_SYNTAX.test(char)) return true;
  }
  return false;
}

/** A child that failed to start: 'error' then 'close', as Node reports a spawn failure. */
function failedChild(child, error) {
  child.exitCode = -2;
  child.stdout?.push(null);
  child.stderr?.push(null);
  queueMicrotask(() => {
    child.emit("error", error);
    child.emit("close", -2, null);
    child.release();
  });
  return child;
}

export function spawn(command, argsOrOptions, maybeOptions) {
  if (typeof command !== "string" || command.length === 0) {
    throw new TypeError('The "file" argument must be of type string and not empty');
  }
  let { args, options } = normalizeSpawnArguments(argsOrOptions, maybeOptions);
  const child = new ChildProcess(command, args, stdioModes(options.stdio));
  if (options.shell) {
    // No shell in the sandbox: a plain command line is split into words as sh would.
    const line = [command, ...args].join(" ");
    if (needsShell(line)) {
      const error = systemError("ENOENT", `spawn ${typeof options.shell === "string" ? options.shell : "/bin/sh"}`, line, `the sandbox has no shell: run one command without pipes, redirection, lists, variables or globs (${line})`);
      error.code = "ERR_NOT_SUPPORTED";
      return failedChild(child, error);
    }
    [command, ...args] = splitCommand(line);
    child.spawnargs = [typeof options.shell === "string" ? options.shell : "/bin/sh", "-c", line];
    if (!command) return failedChild(child, systemError("ENOENT", "spawn /bin/sh", line));
  }
  if (child._stdio.stdin === "inherit") queueMicrotask(() => process.stdin.pipe(child._stdinWritable));
  else if (child._stdio.stdin === "ignore") queueMicrotask(() => child._stdinWritable.end());
  // `node file.mjs`: the script may exist only in this run's files so far (written and not
  // yet handed back), so its source travels with the request.
  let script;
  // The host knows a command by its base name only (host/capabilities/child-process/child-processes.ts commandName).
  const isNode = command.slice(command.lastIndexOf("/") + 1) === "node";
  if (isNode && args[0] && !args[0].startsWith("-")) {
    const fs = sandboxBuiltins.get("fs");
    const cwd = options.cwd ? String(options.cwd) : process.cwd();
    const path = args[0].startsWith("/") ? args[0] : `${cwd.replace(/\/$/, "")}/${args[0]}`;
    try {
      if (fs) script = { path, source: fs.readFileSync(path, "utf8") };
    } catch {
      // not in this run's files: the host looks in the runtime's filesystem
    }
  }
  child._started = bridge
    .hostCall({
      kind: "child-spawn",
      command,
      args,
      script,
      env: options.env ? Object.fromEntries(Object.entries(options.env).map(([k, v]) => [k, String(v)])) : undefined,
      cwd: options.cwd ? String(options.cwd) : undefined,
    })
    .then((reply) => {
      if (!reply.ok) {
        failedChild(child, systemError(reply.code ?? "ENOENT", `spawn ${command}`, command, reply.error));
        return;
      }
      child.childId = reply.childId;
      child.pid = nextPid++;
      children.set(reply.childId, child);
      child.emit("spawn");
      for (const message of early.get(reply.childId) ?? []) dispatch(message);
      early.delete(reply.childId);
    });
  return child;
}

function collect(child, options, callback) {
  const encoding = options.encoding ?? "utf8";
  const stdout = [];
  const stderr = [];
  if (child._stdio.stdout === "pipe") child.stdout.on("data", (chunk) => stdout.push(chunk));
  if (child._stdio.stderr === "pipe") child.stderr.on("data", (chunk) => stderr.push(chunk));
  let spawnError;
  child.on("error", (error) => (spawnError = error));
  child.on("close", (code, signal) => {
    const decode = (chunks) => {
      const bytes = Buffer.concat(chunks);
      return encoding === "buffer" ? bytes : bytes.toString(encoding);
    };
    const out = decode(stdout);
    const err = decode(stderr);
    if (spawnError) return callback?.(spawnError, out, err);
    if (code !== 0 || signal) {
      const error = new Error(`Command failed: ${child.spawnargs.join(" ")}\n${err}`);
      error.code = code;
      error.signal = signal;
      error.killed = child.killed;
      error.cmd = child.spawnargs.join(" ");
      return callback?.(error, out, err);
    }
    callback?.(null, out, err);
  });
  if (options.input !== undefined) child._stdinWritable.end(options.input);
  return child;
}

export function execFile(file, args, options, callback) {
  if (typeof args === "function") {
    callback = args;
    args = [];
    options = {};
  } else if (typeof options === "function") {
    callback = options;
    options = Array.isArray(args) ? {} : args;
    if (!Array.isArray(args)) args = [];
  }
  const child = spawn(file, Array.isArray(args) ? args : [], options ?? {});
  return collect(child, options ?? {}, callback);
}

/** Splits a command line the way a simple POSIX shell would (quotes, no expansion). */
function splitCommand(command) {
  const words = [];
  let current = "";
  let quote = null;
  let started = false;
  for (let i = 0; i < command.length; i += 1) {
    const char = command[i];
    if (quote) {
      if (char === quote) quote = null;
      else if (char === "\\" && quote === '"' && i + 1 < command.length) current += command[++i];
      else current += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      started = true;
    } else if (char === "\\" && i + 1 < command.length) {
      current += command[++i];
      started = true;
    } else if (/\s/.test(char)) {
      if (started || current) words.push(current);
      current = "";
      started = false;
    } else {
      current += char;
      started = true;
    }
  }
  if (started || current) words.push(current);
  return words;
}

export function exec(command, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  // exec runs its command line through the shell, which here is the word splitter above.
  const child = spawn(String(command), [], { ...options, shell: options?.shell ?? true });
  return collect(child, options ?? {}, callback);
}

const customPromisify = (fn) =>
  function (...args) {
    let child;
    const promise = new Promise((resolve, reject) => {
      child = fn(...args, (error, stdout, stderr) => {
        if (error) {
          error.stdout = stdout;
          error.stderr = stderr;
          reject(error);
        } else resolve({ stdout, stderr });
      });
    });
    promise.child = child;
    return promise;
  };
execFile[promisify.custom] = customPromisify(execFile);
exec[promisify.custom] = customPromisify(exec);

function notSupported(name) {
  return () => {
    const error = new Error(
      `child_process.${name} is not supported in the sandbox: guests cannot block on the host; use the async form`,
    );
    error.code = "ERR_NOT_SUPPORTED";
    throw error;
  };
}

export const execSync = notSupported("execSync");
export const execFileSync = notSupported("execFileSync");
export const spawnSync = notSupported("spawnSync");
export const fork = notSupported("fork");
export { ChildProcess };

const childProcessModule = { spawn, exec, execFile, execSync, execFileSync, spawnSync, fork, ChildProcess };
for (const name of ["child_process", "node:child_process"]) sandboxBuiltins.set(name, childProcessModule);
export default childProcessModule;
