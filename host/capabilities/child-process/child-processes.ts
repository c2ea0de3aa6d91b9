// Guest `node:child_process`, host side: `node` and tool commands become further guests
// (same runtime, same permissions and limits); their output and exit are delivered to the
// parent's isolate in order. Anything else is ENOENT.
import { randomUUID } from "node:crypto";
import { envSizeProblem } from "../../api/options-core.js";
import { RunHandle, type RunControl, type RunOutcome } from "../../engine/run-executor.js";
import type { ToolCallScope, ToolGateway } from "../tools/tool-gateway.js";
import type { RunFamily } from "../capability.js";
import { signalName, signalNumber } from "./signals.js";

export const MAX_CHILD_DEPTH = 4;
/** Child processes one top-level run may start, its children's children included. */
export const MAX_CHILDREN_PER_RUN = 64;

/**
 * What a top-level run shares with every child guest it causes, however deep: tool calls
 * (`limits.toolCalls`, and the calls in flight) and child processes are counted once for
 * the whole tree, so spawning children never multiplies a limit.
 */

/**
 * The one name a guest's command is known by: its base name (`/usr/bin/node`, `./node` and
 * `x/node` are all `node`). The permission policy and the dispatch both use it, so no
 * spelling of a command reaches what its name is denied. A name with NUL is no command.
 */
export function commandName(command: string): string {
  if (command.includes("\0")) return "";
  return command.slice(command.lastIndexOf("/") + 1);
}

export interface ChildGuestOptions {
  env: Record<string, string>;
  cwd?: string;
  argv: string[];
  eval?: boolean;
  depth: number;
  family: RunFamily;
  control: RunHandle;
  signal: AbortSignal;
  onStdout: (chunk: Uint8Array) => void;
  onStderr: (chunk: Uint8Array) => void;
}

/** Starts a child guest in the parent's runtime; resolves when it ends. */
export type ChildGuestStarter = (code: string, options: ChildGuestOptions) => Promise<RunOutcome>;

interface ChildRecord {
  control?: RunControl;
  exited: boolean;
  killedBy?: string;
}

export interface ChildProcessHost {
  parent: RunControl;
  /** Working directory of the parent guest, for relative script paths. */
  cwd: string;
  /** Source of a script in the runtime's filesystem as the guest may read it (`permissions.fs` applies). */
  readScript: (path: string) => ScriptSource;
  parentSignal: AbortSignal;
  depth: number;
  /** Shared by the whole tree of the top-level run (the tool scope counts its calls). */
  family: RunFamily;
  startGuest: ChildGuestStarter;
  tools: ToolGateway;
  toolScope: ToolCallScope;
  isAllowed: (command: string) => boolean;
  baseEnv: Record<string, string>;
}

type Reply = { ok: true; childId?: string } | { ok: false; code: string; error: string };

/** A script's source, or why the guest cannot have it (missing, or denied by `permissions.fs`). */
export type ScriptSource = string | undefined | { denied: string };


export class GuestChildProcesses {
  private readonly children = new Map<string, ChildRecord>();
  /** One per running child. The parent's signal gets one listener for all of them, not one each. */
  private readonly childSignals = new Set<AbortController>();

  constructor(private readonly host: ChildProcessHost) {
    host.parentSignal.addEventListener(
      "abort",
      () => {
        for (const child of this.childSignals) child.abort(host.parentSignal.reason);
      },
      { once: true },
    );
  }

  /** A signal that aborts with the parent's, held only while `work` runs. */
  private async withChildSignal<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const child = new AbortController();
    if (this.host.parentSignal.aborted) child.abort(this.host.parentSignal.reason);
    this.childSignals.add(child);
    try {
      return await work(child.signal);
    } finally {
      this.childSignals.delete(child);
    }
  }

  async handle(message: Record<string, unknown>): Promise<Reply> {
    if (message.kind === "child-spawn") return this.spawn(message);
    const child = typeof message.childId === "string" ? this.children.get(message.childId) : undefined;
    if (!child || child.exited) return { ok: true };
    if (message.kind === "child-stdin" && typeof message.data === "string") {
      await child.control?.deliver({ kind: "stdin", data: message.data });
    } else if (message.kind === "child-stdin-end") {
      await child.control?.deliver({ kind: "stdin-end" });
    } else if (message.kind === "child-kill") {
      let number = 15;
      try {
        number = signalNumber(typeof message.signal === "string" && /^\d+$/.test(message.signal) ? Number(message.signal) : String(message.signal ?? "SIGTERM"));
      } catch {
        // an unknown signal name from the guest ends the child with SIGTERM
      }
      child.killedBy = signalName(number);
      child.control?.kill(128 + number);
    }
    return { ok: true };
  }

  private spawn(message: Record<string, unknown>): Reply {
    const requested = typeof message.command === "string" ? message.command.slice(0, 4096) : "";
    const command = commandName(requested);
    const args = Array.isArray(message.args) ? message.args.map(String) : [];
    // A tool's alias is the tool too: a rule on either name holds.
    const toolName = command === "" ? undefined : this.host.tools.nameOf(command);
    if (!this.host.isAllowed(command) || (toolName !== undefined && toolName !== command && !this.host.isAllowed(toolName))) {
      return { ok: false, code: "EACCES", error: `spawn ${requested} EACCES: denied by the childProcess permission policy` };
    }
    if (this.host.depth >= MAX_CHILD_DEPTH || this.host.family.children >= MAX_CHILDREN_PER_RUN) {
      return { ok: false, code: "EAGAIN", error: `spawn ${requested} EAGAIN: child process limit reached` };
    }
    // What a kernel answers an env too large to exec.
    const envProblem = envSizeProblem(message.env);
    if (envProblem) return { ok: false, code: "E2BIG", error: `spawn ${requested} E2BIG: the env ${envProblem}` };
    const childId = randomUUID();
    const record: ChildRecord = { exited: false };
    let program: (() => Promise<{ code: number | null; signal?: string }>) | undefined;
    const emitter = this.ordered(childId);

    if (command === "node") {
      const script = message.script as { path?: unknown; source?: unknown } | undefined;
      const cwd = typeof message.cwd === "string" ? message.cwd : this.host.cwd;
      const plan = planNodeInvocation(args, (file) => {
        const path = file.startsWith("/") ? file : `${cwd.replace(/\/$/, "")}/${file}`;
        if (script && script.path === path && typeof script.source === "string") return script.source;
        return this.host.readScript(path);
      });
      if ("error" in plan) {
        program = async () => {
          emitter("stderr", plan.error);
          return { code: plan.exitCode };
        };
      } else {
        program = async () => {
          const control = new RunHandle();
          record.control = control;
          const env = { ...this.host.baseEnv, ...(message.env as Record<string, string> | undefined) };
          const outcome = await this.withChildSignal((signal) =>
            this.host.startGuest(plan.code, {
              env,
              cwd: typeof message.cwd === "string" ? message.cwd : undefined,
              argv: plan.argv,
              eval: plan.eval,
              depth: this.host.depth + 1,
              family: this.host.family,
              control,
              signal,
              onStdout: (chunk) => emitter("stdout", chunk),
              onStderr: (chunk) => emitter("stderr", chunk),
            }),
          );
          return record.killedBy ? { code: null, signal: record.killedBy } : { code: outcome.exitCode };
        };
      }
    } else if (command !== "" && this.host.tools.has(command)) {
      program = async () => {
        const jsonIndex = args.indexOf("--json");
        let input: unknown = null;
        if (jsonIndex !== -1) {
          try {
            input = JSON.parse(args[jsonIndex + 1] ?? "null");
          } catch {
            emitter("stdout", `${JSON.stringify({ ok: false, error: "--json must be followed by a JSON value" })}\n`);
            return { code: 2 };
          }
        }
        const reply = await this.host.tools.call(command, input, this.host.toolScope);
        emitter("stdout", `${JSON.stringify(reply.ok ? { ok: true, result: reply.result } : { ok: false, error: reply.error })}\n`);
        return { code: reply.ok ? 0 : 1 };
      };
    } else {
      return { ok: false, code: "ENOENT", error: `spawn ${requested} ENOENT` };
    }

    this.host.family.children += 1;
    this.children.set(childId, record);
    void program()
      .catch((error: unknown) => {
        emitter("stderr", `${error instanceof Error ? error.message : String(error)}\n`);
        return { code: 1 } as { code: number | null; signal?: string };
      })
      .then((result) => {
        record.exited = true;
        emitter("exit", result);
      });
    return { ok: true, childId };
  }

  /** Deliveries of one child go out one after another, so the parent sees them in order. */
  private ordered(childId: string) {
    let queue: Promise<unknown> = Promise.resolve();
    return (kind: "stdout" | "stderr" | "exit", payload: string | Uint8Array | { code: number | null; signal?: string }) => {
      queue = queue.then(() => {
        if (kind === "exit") {
          const result = payload as { code: number | null; signal?: string };
          return this.host.parent.deliver({ kind: "child-exit", childId, code: result.code, signal: result.signal ?? null });
        }
        const bytes = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload as Uint8Array);
        return this.host.parent.deliver({ kind: "child-output", childId, stream: kind, data: bytes.toString("base64") });
      }).catch(() => undefined);
    };
  }
}

/** `eval`: the code came from `-e`/`-p`, so `process.argv` has no script path, as in Node. */
type NodePlan = { code: string; argv: string[]; eval?: boolean } | { error: string; exitCode: number };

/** What `node <args>` runs: `-e/--eval`, `-p/--print`, `--version`, or a script file. */
export function planNodeInvocation(args: string[], readScript: (file: string) => ScriptSource = () => undefined): NodePlan {
  const [first, second, ...rest] = args;
  if (first === "-e" || first === "--eval") {
    if (second === undefined) return { error: "node: -e requires an argument\n", exitCode: 9 };
    return { code: second, argv: rest, eval: true };
  }
  if (first === "-p" || first === "--print") {
    if (second === undefined) return { error: "node: -p requires an argument\n", exitCode: 9 };
    return { code: `console.log(await (async () => (${second}))());`, argv: rest, eval: true };
  }
  if (first === "-v" || first === "--version") return { code: "console.log(process.version)", argv: [] };
  if (first === undefined) return { error: "node: no script given (use -e <code> or a file)\n", exitCode: 9 };
  if (first.startsWith("-")) return { error: `node: bad option: ${first}\n`, exitCode: 9 };
  const source = readScript(first);
  if (typeof source === "object") {
    return { error: `node:internal/fs/utils\n\nError: EACCES: permission denied, open '${source.denied}'\n    code: 'EACCES'\n`, exitCode: 1 };
  }
  if (source === undefined) {
    return {
      error: `node:internal/modules/cjs/loader\n  throw err;\n\nError: Cannot find module '${first}'\n    code: 'MODULE_NOT_FOUND'\n`,
      exitCode: 1,
    };
  }
  return { code: source, argv: [second, ...rest].filter((arg): arg is string => arg !== undefined) };
}
