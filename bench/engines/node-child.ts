// Peer: a `node -e` child process per run — the OS process is the boundary.
// Host calls travel over Node's IPC channel, the returned value over stdout.
import { spawn } from "node:child_process";
import type { Workload } from "../workloads.js";
import { MIB, errorText, processRssKb, type ColdStart, type Engine, type GuestOutput, type ResidentSession, type RunOptions } from "./engine.js";

const RETURN_MARK = "\u001eRET:";

function wrap(body: string, usesHost: boolean): string {
  const host = usesHost
    ? [
        `let __seq = 0; const __pending = new Map();`,
        `process.on("message", (m) => { const r = __pending.get(m.id); __pending.delete(m.id); r(m.result); });`,
        `const hostAdd = (a, b) => new Promise((resolve) => { const id = ++__seq; __pending.set(id, resolve); process.send({ id, a, b }); });`,
      ]
    : [];
  return [
    `const print = (x) => console.log(x);`,
    `const ret = (v) => process.stdout.write(${JSON.stringify(RETURN_MARK)} + JSON.stringify(v));`,
    ...host,
    `(async () => {\n${body}\n})().then(() => { if (process.connected) process.disconnect(); }, (e) => { console.error(e); process.exit(1); });`,
  ].join("\n");
}

interface HostMessage {
  id: number;
  a: number;
  b: number;
}

/** Minimal environment: the child sees nothing of the host's. */
function childEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin" };
}

export class NodeChildEngine implements Engine {
  readonly key = "node_child_process";
  readonly label = "node -e (child process)";
  readonly isolation = "new Node.js process per run (OS process boundary, no other sandboxing)";
  readonly notes = ["node -e: host calls go over Node's IPC channel; the time limit is a SIGKILL from a host timer"];

  private constructor(readonly firstRunMs: number) {}

  static async create(firstWorkload: Workload): Promise<NodeChildEngine> {
    const started = performance.now();
    const engine = new NodeChildEngine(0);
    const output = await engine.run(firstWorkload);
    firstWorkload.check(output);
    return Object.assign(engine, { firstRunMs: performance.now() - started });
  }

  run(workload: Workload, options: RunOptions = {}): Promise<GuestOutput> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ["-e", wrap(workload.body, workload.usesHost)], {
        stdio: workload.usesHost ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
        env: childEnv(),
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
      if (workload.usesHost) {
        child.on("message", (message: HostMessage) => {
          child.send({ id: message.id, result: message.a + message.b });
        });
      }
      let timedOut = false;
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              child.kill("SIGKILL");
            }, options.timeoutMs);
      child.on("error", (error) => {
        if (timer) clearTimeout(timer);
        resolve({ stdout: "", value: undefined, ok: false, error: errorText(error) });
      });
      child.on("close", (code) => {
        if (timer) clearTimeout(timer);
        const text = Buffer.concat(stdout).toString("utf8");
        const mark = text.lastIndexOf(RETURN_MARK);
        const printed = mark === -1 ? text : text.slice(0, mark);
        if (timedOut || code !== 0) {
          const why = timedOut ? "killed at the time limit" : `exit ${code}: ${Buffer.concat(stderr).toString("utf8").slice(0, 300)}`;
          resolve({ stdout: printed, value: undefined, ok: false, error: why });
          return;
        }
        const value = mark === -1 ? undefined : (JSON.parse(text.slice(mark + RETURN_MARK.length)) as unknown);
        resolve({ stdout: printed, value, ok: true });
      });
    });
  }

  async coldStart(): Promise<ColdStart> {
    const started = performance.now();
    const output = await this.run({ id: "cold", body: `print(1);`, usesHost: false, check: () => {} });
    if (!output.ok || output.stdout !== "1\n") throw new Error(`node -e cold start: ${output.error ?? output.stdout}`);
    return { totalMs: performance.now() - started };
  }

  async openResident(): Promise<ResidentSession | null> {
    return null;
  }

  /** `count` children alive at once (each waits for its stdin to close); their RSS summed. */
  async rssPerConcurrentRunMb(count: number): Promise<number | null> {
    const script = `process.stdout.write("ready\\n"); process.stdin.resume(); process.stdin.on("end", () => process.exit(0));`;
    const children = Array.from({ length: count }, () =>
      spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "ignore"], env: childEnv() }),
    );
    try {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve, reject) => {
              child.stdout?.once("data", () => resolve());
              child.once("error", reject);
              child.once("exit", () => reject(new Error("child exited early")));
            }),
        ),
      );
      let totalKb = 0;
      for (const child of children) totalKb += (child.pid === undefined ? undefined : processRssKb(child.pid)) ?? 0;
      return (totalKb * 1024) / MIB / count;
    } finally {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once("exit", () => resolve());
              child.stdin?.end();
              setTimeout(() => child.kill("SIGKILL"), 2_000).unref();
            }),
        ),
      );
    }
  }

  extras(): Record<string, number | null> {
    return {};
  }

  async dispose(): Promise<void> {}
}
