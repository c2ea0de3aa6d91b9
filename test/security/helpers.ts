// Shared by the adversarial suite: runtime bookkeeping, liveness checks, loopback targets.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { expect } from "vitest";
import { NodeRuntime, type NodeRuntimeOptions } from "../../runtime/index.js";

export async function createRuntime(options: NodeRuntimeOptions = {}): Promise<NodeRuntime> {
  return NodeRuntime.create(options);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 25 ms until it holds or `withinMs` passes; returns whether it held. */
export async function waitFor(condition: () => boolean, withinMs: number): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    if (condition()) return true;
    await sleep(25);
  }
  return condition();
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU ticks (1/100 s) a process has used, or undefined once it is gone. */
export function cpuTicks(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** CPU ticks (1/100 s) `pid` used over `ms`. */
export async function ticksOver(pid: number, ms: number): Promise<number> {
  const before = cpuTicks(pid) ?? 0;
  await sleep(ms);
  return (cpuTicks(pid) ?? before) - before;
}

/** The workerd process of a resident runner. */
export function runnerPid(runner: object): number {
  return (runner as { processId(): number }).processId();
}

/** A resident exec of `code` (ending with the value "ended") leaves work that gets its runner killed within `waitMs`. */
export async function expectKilledBetweenExecs(rt: NodeRuntime, code: string, waitMs: number): Promise<void> {
  const runner = await rt.createResidentRunner();
  try {
    const result = await runner.exec(code, { timeout: 10_000 });
    expect(result).toMatchObject({ exitCode: 0, value: "ended" });
    const pid = runnerPid(runner);
    // The watch's windows, and room for a loaded machine.
    expect(await waitFor(() => !isRunning(pid), waitMs)).toBe(true);
    await expect(runner.exec("1")).rejects.toThrow(/guest code kept running between execs/);
  } finally {
    await runner.dispose();
  }
}

/** The runtime still answers a trivial run correctly. */
export async function expectServing(rt: NodeRuntime): Promise<void> {
  const result = await rt.run("__return(6 * 7)", { timeout: 15_000 });
  expect(result.exitCode).toBe(0);
  expect(result.value).toBe(42);
}

/** A process of the runtime was lost (killed or crashed) since `lostBefore`, and the pool refilled. */
export async function expectProcessReplaced(rt: NodeRuntime, lostBefore: number): Promise<void> {
  expect(await waitFor(() => rt.stats().processesLost > lostBefore, 5_000)).toBe(true);
  expect(await waitFor(() => rt.processIds().length > 0, 5_000)).toBe(true);
}

/** Text that betrays the host: its paths, its package tree, its TypeScript sources. */
export const HOST_DETAIL = new RegExp(
  [
    "/work/",
    "node_modules",
    "\\.ts\\b",
    "file:///(?!workspace/)",
    escapeRegExp(process.cwd()),
    "/home/",
    "/root/",
    "/usr/lib/node",
  ].join("|"),
);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * A loopback HTTP server that records every TCP connection and every request it gets.
 * Egress tests assert that it saw nothing.
 */
export interface Tripwire {
  port: number;
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

export async function startTripwire(): Promise<Tripwire> {
  const sockets = new Set<Socket>();
  const tripwire: Tripwire = {
    port: 0,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((request: IncomingMessage, response) => {
    tripwire.requests.push(`${request.method} ${request.url}`);
    response.end("tripwire-secret");
  });
  server.on("connection", (socket: Socket) => {
    tripwire.connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  tripwire.port = (server.address() as AddressInfo).port;
  return tripwire;
}

let workerModulesDir: string | undefined;

/**
 * A node_modules folder with one package, `worker-modules`, re-exporting `cloudflare:workers`.
 * Guests cannot import workerd's own modules, but packages are host code and can: tests of
 * the defences behind that refusal (the raw HOST binding, the watch on idle processes) reach
 * them through it.
 */
export function workerModulesPackage(): string {
  if (workerModulesDir) return workerModulesDir;
  const root = mkdtempSync(join(tmpdir(), "secure-exec-worker-modules-"));
  const dir = join(root, "node_modules", "worker-modules");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "worker-modules", version: "1.0.0", type: "module", exports: "./index.js" }));
  writeFileSync(join(dir, "index.js"), 'export * from "cloudflare:workers";\n');
  process.once("exit", () => rmSync(root, { recursive: true, force: true }));
  workerModulesDir = join(root, "node_modules");
  return workerModulesDir;
}

/** Runs trivial runs on `rt` until `done` settles; the slowest one's wall time. */
export async function slowestWhile(rt: NodeRuntime, done: Promise<unknown>): Promise<number> {
  let settled = false;
  void done.finally(() => (settled = true)).catch(() => {});
  let slowest = 0;
  do {
    const started = performance.now();
    const result = await rt.run("__return(1)", { timeout: 60_000 });
    expect(result.value).toBe(1);
    slowest = Math.max(slowest, performance.now() - started);
  } while (!settled);
  return slowest;
}
