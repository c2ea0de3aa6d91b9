// The only module that talks to Miniflare: it defines each kind of workerd process (the
// sandbox cell, a resident runner's static worker) as Miniflare workers and has Miniflare
// build workerd's configuration from them. The configuration is captured as Miniflare hands
// it to workerd (a binary Cap'n Proto message on stdin, with its command line), checked by
// letting that workerd start, and then cached (host/engine/workerd-config-cache.ts): processes are
// spawned from it directly (host/engine/workerd-spawn.ts), without Miniflare.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { getDirectSocketName, Miniflare, serializeConfig, type WorkerOptions } from "miniflare";
import { cellDefinition } from "./cell-definition.js";
import { compactTemplate } from "./compact-template.js";
import { workerdBinary, type BuiltConfig, type ConfigRequest, type StaticWorkerdOptions, type WorkerdPlan } from "./workerd-config-cache.js";
import { spawnWorkerd } from "./workerd-spawn.js";

/** The HOST and EGRESS address while building: replaced at each start by the host's own. */
const HOST_PLACEHOLDER = "127.0.0.1:9";
/**
 * Where Miniflare's own loopback service points once Miniflare is gone: nothing the sandbox
 * uses reaches it, and port 1 is privileged, so no other local user can listen there.
 */
export const DEAD_END_ADDRESS = "127.0.0.1:1";
const STDERR_TAIL_BYTES = 8192;

const STATIC_WORKER_NAME = "resident";
const REFUSE_WORKER_NAME = "no-network";

function cellWorkers(request: Extract<ConfigRequest, { kind: "cell" }>): WorkerOptions[] {
  return [
    {
      name: cellDefinition.supervisor.name,
      compatibilityDate: cellDefinition.compatibilityDate,
      // Module names carry no host path into stack traces.
      modulesRoot: "/",
      modules: [
        { type: "ESModule", path: `/${cellDefinition.supervisor.mainModule}`, contents: request.supervisorSource },
        ...Object.entries(request.guestTemplates).map(([name, contents]) => ({
          type: "Text" as const,
          path: `/${name}`,
          contents: compactTemplate(name, contents),
        })),
      ],
      workerLoaders: { [cellDefinition.bindings.loader]: {} },
      serviceBindings: {
        [cellDefinition.bindings.host]: { external: { address: HOST_PLACEHOLDER, http: {} } },
        // Proxy style: the request line carries the guest's full URL.
        [cellDefinition.bindings.egress]: { external: { address: HOST_PLACEHOLDER, http: { style: 1 } } },
      },
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    },
  ];
}

function staticWorkers(options: StaticWorkerdOptions): WorkerOptions[] {
  const refuseSource = `export default { fetch() { throw new Error(${JSON.stringify(options.denyNetworkMessage)}); } };`;
  return [
    {
      name: STATIC_WORKER_NAME,
      compatibilityDate: options.compatibilityDate,
      compatibilityFlags: options.compatibilityFlags,
      // Module names carry no host path into stack traces.
      modulesRoot: "/",
      modules: [
        { type: "ESModule", path: `/${options.mainModule.name}`, contents: options.mainModule.source },
        ...Object.entries(options.esModules ?? {}).map(([name, contents]) => ({
          type: "ESModule" as const,
          path: `/${name}`,
          contents,
        })),
        ...Object.entries(options.textModules ?? {}).map(([name, contents]) => ({
          type: "Text" as const,
          path: `/${name}`,
          contents,
        })),
      ],
      ...(options.unsafeEvalBinding ? { unsafeEvalBinding: options.unsafeEvalBinding } : {}),
      outboundService: REFUSE_WORKER_NAME,
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    },
    {
      name: REFUSE_WORKER_NAME,
      compatibilityDate: options.compatibilityDate,
      modules: [{ type: "ESModule", path: "/no-network.js", contents: refuseSource }],
      modulesRoot: "/",
    },
  ];
}

const quoted = (path: string) => `'${path.replace(/'/g, "'\\''")}'`;

/** Miniflare reads its workerd path and debug dump path from the environment: one build at a time. */
let previousBuild: Promise<unknown> = Promise.resolve();

/** Has Miniflare build workerd's configuration for `request`, and captures it. */
export function buildWorkerdConfig(request: ConfigRequest): Promise<BuiltConfig> {
  const workers = request.kind === "cell" ? cellWorkers(request) : staticWorkers(request.options);
  const v8Flags = request.kind === "cell" ? request.v8Flags : [];
  const building = previousBuild.then(() => capture(workers, v8Flags));
  previousBuild = building.catch(() => {});
  return building;
}

async function capture(workers: WorkerOptions[], v8Flags: string[]): Promise<BuiltConfig> {
  const dir = mkdtempSync(join(tmpdir(), "secure-exec-build-"));
  const configPath = join(dir, "config.bin");
  const argsPath = join(dir, "args");
  const jsonPath = join(dir, "config.json");
  const launcher = join(dir, "capture-workerd.sh");
  // Saves what Miniflare hands workerd, then lets workerd start from it, so a configuration
  // workerd rejects is never cached. setpriv: the kernel kills it if the host dies meanwhile.
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path));
  const exec = setpriv ? `exec ${quoted(setpriv)} --pdeathsig KILL -- ${quoted(workerdBinary())}` : `exec ${quoted(workerdBinary())}`;
  writeFileSync(
    launcher,
    `#!/bin/sh\ncat > ${quoted(configPath)} || exit 1\nfor arg in "$@"; do printf '%s\\0' "$arg"; done > ${quoted(argsPath)}\n${exec} "$@" < ${quoted(configPath)}\n`,
  );
  chmodSync(launcher, 0o700);
  const previousPath = process.env.MINIFLARE_WORKERD_PATH;
  const previousDebug = process.env.MINIFLARE_WORKERD_CONFIG_DEBUG;
  process.env.MINIFLARE_WORKERD_PATH = launcher;
  process.env.MINIFLARE_WORKERD_CONFIG_DEBUG = jsonPath;
  let stderrTail = "";
  let captured: BuiltConfig;
  let trimmed: BuiltConfig | undefined;
  const miniflare = new Miniflare({
    log: undefined,
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      stdout.resume();
      stderr.on("data", (chunk: Buffer) => {
        stderrTail = (stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
      });
    },
    workers,
  });
  try {
    try {
      await miniflare.ready;
    } catch (error) {
      throw new Error(`secure-exec: workerd did not start: ${error instanceof Error ? error.message : String(error)}${stderrTail ? `\n${stderrTail}` : ""}`);
    }
    const config = readFileSync(configPath);
    const args = readFileSync(argsPath, "utf8").split("\0").slice(0, -1);
    const described = JSON.parse(readFileSync(jsonPath, "utf8")) as DescribedConfig;
    const directSocket = getDirectSocketName(0, "default");
    captured = { plan: planOf(args, described, directSocket), config: new Uint8Array(config) };
    trimmed = trimToDirectSocket({ ...described, ...(v8Flags.length > 0 ? { v8Flags } : {}) }, args, directSocket);
  } finally {
    if (previousPath === undefined) delete process.env.MINIFLARE_WORKERD_PATH;
    else process.env.MINIFLARE_WORKERD_PATH = previousPath;
    if (previousDebug === undefined) delete process.env.MINIFLARE_WORKERD_CONFIG_DEBUG;
    else process.env.MINIFLARE_WORKERD_CONFIG_DEBUG = previousDebug;
    await miniflare.dispose().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  // The trimmed configuration is used only once a workerd has started from it.
  return (trimmed && (await startsUp(trimmed))) ? trimmed : captured;
}

interface DescribedService {
  name?: string;
  worker?: { cacheApiOutbound?: unknown };
  external?: { address?: string };
  disk?: unknown;
}

interface DescribedConfig {
  /** Miniflare sets none; the trimmed configuration carries the cell's own. */
  v8Flags?: string[];
  services?: DescribedService[];
  sockets?: { name?: string; service?: { name?: string } }[];
}

/**
 * Miniflare's configuration without what only its own entry socket reaches (its router
 * worker, ~180 KB of JavaScript workerd compiles at every start) and without its Cache API
 * services: the services reachable from the direct socket, encoded by Miniflare's own
 * serializer. Starting workerd from it takes ~55 ms instead of ~100 ms on this machine.
 * Undefined when the description does not encode.
 */
function trimToDirectSocket(described: DescribedConfig, args: string[], directSocket: string): BuiltConfig | undefined {
  // No Cache API either: guests get none ("No Cache was configured") and the supervisor uses
  // none, so Miniflare's cache services (~30 ms of every start, and a disk directory) go too.
  for (const service of described.services ?? []) delete service.worker?.cacheApiOutbound;
  const services = new Map((described.services ?? []).map((service) => [service.name, service]));
  const sockets = (described.sockets ?? []).filter((socket) => socket.name === directSocket);
  const kept = new Set<string>();
  const reach = (name: string | undefined): void => {
    const service = name === undefined ? undefined : services.get(name);
    if (!service || kept.has(name!)) return;
    kept.add(name!);
    // Every service a worker names (bindings, outbounds, Durable Object namespaces).
    const visit = (value: unknown): void => {
      if (typeof value === "string") reach(value);
      else if (Array.isArray(value)) value.forEach(visit);
      else if (value && typeof value === "object") Object.values(value).forEach(visit);
    };
    visit(service);
  };
  for (const socket of sockets) reach(socket.service?.name);
  const trimmed = { ...described, sockets, services: (described.services ?? []).filter((service) => kept.has(service.name!)) };
  const keptArgs = args.filter((arg) => {
    const named = /^--(?:socket-addr|external-addr|directory-path)=([^=]+)=/.exec(arg);
    if (!named) return true;
    return arg.startsWith("--socket-addr=") ? named[1] === directSocket : kept.has(named[1]!);
  });
  let config: Uint8Array;
  try {
    config = serializeConfig(trimmed as Parameters<typeof serializeConfig>[0]);
  } catch {
    return undefined;
  }
  return { plan: planOf(keptArgs, trimmed, directSocket), config };
}

async function startsUp(built: BuiltConfig): Promise<boolean> {
  try {
    const handle = await spawnWorkerd(built, { hostAddress: HOST_PLACEHOLDER });
    await handle.kill();
    return true;
  } catch {
    return false;
  }
}

/**
 * How to start workerd again from the captured configuration: Miniflare's command line, with
 * the addresses of its own (now gone) services dead-ended, plus what changes per process.
 */
function planOf(args: string[], described: DescribedConfig, directSocket: string): WorkerdPlan {
  if (args[0] !== "serve" || !args.includes("--binary") || !args.includes("--control-fd=3") || args.at(-1) !== "-") {
    throw new Error(`secure-exec: unexpected workerd command line from Miniflare: ${args.join(" ")}`);
  }
  if (!described.sockets?.some((socket) => socket.name === directSocket)) {
    throw new Error(`secure-exec: Miniflare's configuration has no socket ${directSocket}`);
  }
  const rewritten = args
    .filter((arg) => !arg.startsWith("--inspector-addr=") && !arg.startsWith("--debug-port=") && arg !== "--verbose")
    .map((arg) => {
      const external = /^--external-addr=(.+)=[^=]*$/.exec(arg);
      return external ? `--external-addr=${external[1]}=${DEAD_END_ADDRESS}` : arg;
    });
  const services = described.services ?? [];
  return {
    args: rewritten,
    directSocket,
    hostServices: services.filter((service) => service.external?.address === HOST_PLACEHOLDER).map((service) => service.name!),
    diskDirectories: services.filter((service) => service.disk !== undefined).map((service) => service.name!),
  };
}
