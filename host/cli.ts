#!/usr/bin/env node
// `secure-exec` command line: run a file in the sandbox, or serve the HTTP API.
import { readFile } from "node:fs/promises";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { ExecOptions } from "./api/types.js";
import { API_VERSION } from "./api/version.js";
// The runtime and the server (HTTP stack, schemas, metrics) load only when a command needs
// them, so --help, usage errors and one-shot runs do not pay for what they do not use.

/** Exit code of usage errors and of failures of the CLI itself (not of the guest). */
export const EXIT_USAGE = 2;

class CliError extends Error {}

function positiveInteger(what: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number <= 0) {
      throw new InvalidArgumentError(`${what} must be a positive integer (got "${value}")`);
    }
    return number;
  };
}

function port(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || number > 65535) throw new InvalidArgumentError(`port must be an integer 0..65535 (got "${value}")`);
  return number;
}

function collectEnv(value: string, previous: Record<string, string>): Record<string, string> {
  const equals = value.indexOf("=");
  if (equals <= 0) throw new InvalidArgumentError(`--env takes KEY=VALUE (got "${value}")`);
  return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** Resolves once the chunk is flushed (or the stream failed): output keeps its order and backpressure. */
function writeAsync(stream: NodeJS.WriteStream, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve();
    stream.write(data, () => resolve());
  });
}

interface RunFlags {
  timeout?: number;
  env: Record<string, string>;
  stdin?: string;
  stdinFile?: string;
  cwd?: string;
  json?: boolean;
}

async function runCommand(file: string, flags: RunFlags): Promise<number> {
  if (flags.stdin !== undefined && flags.stdinFile !== undefined) throw new CliError("use either --stdin or --stdin-file, not both");
  if (file === "-" && flags.stdinFile === "-") throw new CliError("the code and the guest's stdin cannot both come from standard input");
  if (flags.cwd !== undefined && !flags.cwd.startsWith("/")) throw new CliError(`--cwd must be an absolute path (got "${flags.cwd}")`);

  const readSource = async (path: string, what: string): Promise<string> => {
    if (path === "-") return readStdin();
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(`cannot read ${what} ${path}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`);
    }
  };
  // A one-shot run needs one sandbox process, no spare and no warm-up run. It starts first:
  // workerd boots on another core while the sources are read.
  process.env.SECURE_EXEC_SPARE_PROCESSES ??= "0";
  process.env.SECURE_EXEC_WARMUP ??= "0";
  // Options built from flags commander has checked: the option schemas are not loaded.
  const sdk = import("../runtime/node-runtime.js");
  const creating = sdk.then(({ NodeRuntime, checkedRuntimeOptions }) => NodeRuntime.create(checkedRuntimeOptions({ processes: 1 })));
  creating.catch(() => {});
  let code: string;
  let stdin: string | undefined;
  try {
    code = await readSource(file, "file");
    stdin = flags.stdinFile !== undefined ? await readSource(flags.stdinFile, "stdin file") : flags.stdin;
  } catch (error) {
    await creating.then((runtime) => runtime.dispose(), () => {});
    throw error;
  }
  const runtime = await creating;
  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // A reader that goes away (`| head`) ends the run, as SIGPIPE would.
  let brokenPipe = false;
  const onOutputError = () => {
    brokenPipe = true;
    interrupted.abort();
  };
  process.stdout.once("error", onOutputError);
  // Output is written in order; pending writes are awaited before exiting.
  let writes = Promise.resolve();
  const forward = (stream: NodeJS.WriteStream) => (chunk: Uint8Array) => {
    const copy = Uint8Array.from(chunk);
    writes = writes.then(() => writeAsync(stream, copy));
  };
  try {
    const options: ExecOptions = (await sdk).checkedExecOptions({ env: flags.env, signal: interrupted.signal });
    if (flags.timeout !== undefined) options.timeout = flags.timeout;
    if (stdin !== undefined) options.stdin = stdin;
    if (flags.cwd !== undefined) options.cwd = flags.cwd;
    if (!flags.json) {
      options.onStdout = forward(process.stdout);
      options.onStderr = forward(process.stderr);
    }
    let result;
    try {
      result = await runtime.run(code, options);
    } catch (error) {
      if (brokenPipe) return 141;
      if (interrupted.signal.aborted) {
        await writes;
        process.stderr.write("secure-exec: interrupted; the guest was killed\n");
        return 130;
      }
      throw error;
    }
    await writes;
    if (brokenPipe) return 141;
    if (flags.json) await writeAsync(process.stdout, `${JSON.stringify(result)}\n`);
    return result.exitCode;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await runtime.dispose();
  }
}

interface ServeFlags {
  port?: number;
  host?: string;
  config?: string;
  demo?: string;
}

/** `serve --demo <file>`: one run through the server's own API, so a new user sees it work. */
async function runDemo(serverUrl: string, file: string, token: string | undefined): Promise<void> {
  const code = await readFile(file, "utf8");
  const started = performance.now();
  const response = await fetch(new URL("/v1/run", serverUrl), {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ code }),
  });
  const result = (await response.json()) as { stdout?: string; stderr?: string; exitCode?: number; value?: unknown };
  const elapsed = (performance.now() - started).toFixed(1);
  process.stdout.write(`demo: POST /v1/run with ${file} → HTTP ${response.status}, exit ${result.exitCode} in ${elapsed} ms\n`);
  if (result.stdout) process.stdout.write(`${result.stdout.replace(/\n$/, "").replace(/^/gm, "  | ")}\n`);
  if (result.value !== undefined) process.stdout.write(`  value: ${JSON.stringify(result.value)}\n`);
}

async function serveCommand(flags: ServeFlags): Promise<number> {
  const { loadServerConfig } = await import("./service/server-config.js");
  const config = await loadServerConfig({ configPath: flags.config ?? process.env.SECURE_EXEC_CONFIG, port: flags.port, host: flags.host });
  const { startServer } = await import("./service/server.js");
  let server;
  try {
    server = await startServer(config);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new CliError(`${config.host}:${config.port} is already in use; pick another --port`);
    if (code === "EADDRNOTAVAIL") throw new CliError(`cannot listen on ${config.host}: no such local address`);
    throw error;
  }
  const who = config.authenticated
    ? `tenants: ${config.tenants.map((tenant) => tenant.name).join(", ")}`
    : "no tenants configured: unauthenticated, loopback only";
  process.stdout.write(`secure-exec listening on ${server.url} (${who})\n`);
  if (flags.demo) {
    await runDemo(server.url, flags.demo, config.tenants[0]?.token).catch((error: unknown) =>
      process.stderr.write(`secure-exec: demo run failed: ${error instanceof Error ? error.message : String(error)}\n`),
    );
  }
  // SIGINT/SIGTERM close gracefully: in-flight runs end, every workerd process is stopped.
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.stderr.write(`secure-exec: ${signal} received, shutting down\n`);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await server.close();
  return 0;
}

interface McpFlags {
  config?: string;
  tenant?: string;
}

/** `mcp`: MCP over stdio until the client closes stdin or a signal arrives. */
async function mcpCommand(flags: McpFlags): Promise<number> {
  const { loadServerConfig } = await import("./service/server-config.js");
  const config = await loadServerConfig({ configPath: flags.config ?? process.env.SECURE_EXEC_CONFIG });
  // stdout is the MCP channel: any stray console output of the host goes to stderr.
  for (const method of ["log", "info", "debug"] as const) console[method] = console.error;
  const { serveMcpOverStdio } = await import("./mcp/stdio.js");
  const served = await serveMcpOverStdio(config, { tenant: flags.tenant });
  const stop = () => void served.stop();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await served.closed;
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  return 0;
}

export function buildProgram(onResult: (code: number) => void): Command {
  const program = new Command();
  program
    .name("secure-exec")
    .description("Run untrusted JavaScript in workerd sandboxes, or serve the secure-exec HTTP API.")
    .version(API_VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program
    .command("run")
    .description("Run a JavaScript file (an ES module) in a fresh sandbox; exits with the guest's exit code")
    .argument("<file>", 'the guest code; "-" reads it from standard input')
    .addOption(new Option("-t, --timeout <ms>", "wall-clock limit; on expiry the guest is killed and the exit code is 137").argParser(positiveInteger("--timeout")))
    .addOption(new Option("-e, --env <KEY=VALUE>", "set an environment variable of the guest (repeatable)").argParser(collectEnv).default({}, "none"))
    .option("--stdin <text>", "text piped to the guest's process.stdin")
    .option("--stdin-file <path>", 'file piped to the guest\'s process.stdin ("-": this command\'s standard input)')
    .option("--cwd <path>", "process.cwd() of the guest (absolute; default /workspace)")
    .option("--json", "print {stdout, stderr, exitCode, value} as JSON instead of streaming the output")
    .addHelpText(
      "after",
      `
The guest sees no host files, network or environment: only what --env and --stdin give it.
Exit codes: the guest's own; 137 when a limit killed it; 130 when interrupted;
${EXIT_USAGE} for usage errors or when the file cannot be read.

Examples:
  $ secure-exec run script.mjs --timeout 5000 --env NAME=world
  $ echo 'console.log(1 + 1)' | secure-exec run -
  $ secure-exec run wc.mjs --stdin "some text"`,
    )
    .action(async (file: string, flags: RunFlags) => onResult(await runCommand(file, flags)));

  program
    .command("serve")
    .description("Start the HTTP API (POST /v1/exec, /v1/run, GET /healthz, /metrics, /openapi.json)")
    .addOption(new Option("-p, --port <n>", "port to listen on (0 picks a free one; default: config port, else 8080)").argParser(port))
    .option("-H, --host <address>", "address to listen on (default: config host, else 127.0.0.1)")
    .option("-c, --config <file>", "config module (.mjs) whose default export is { tenants?, tools?, port?, ... } (or env SECURE_EXEC_CONFIG)")
    .option("--demo <file>", "once listening, run this file through the API and print the result")
    .addHelpText(
      "after",
      `
Tenants: from the config module's \`tenants\`, and/or SECURE_EXEC_TOKENS=tenant:token,...
Without tenants the server has no authentication and may only listen on 127.0.0.1.
See docs/http-api.md.

Examples:
  $ secure-exec serve --port 8080
  $ SECURE_EXEC_TOKENS=acme:s3cret secure-exec serve --host 0.0.0.0 --port 8080
  $ secure-exec serve --config ./server-config.mjs`,
    )
    .action(async (flags: ServeFlags) => onResult(await serveCommand(flags)));

  program
    .command("mcp")
    .description("Serve the MCP tools (run_code, sessions, files) over stdio, for an MCP client to spawn")
    .option("-c, --config <file>", "config module (.mjs) as for serve: operator tools, limits, timeouts (or env SECURE_EXEC_CONFIG)")
    .option("--tenant <name>", "which tenant of the config serves (default: the first)")
    .addHelpText(
      "after",
      `
Tools: run_code, create_session, session_exec, close_session, write_file, read_file, list_files.
stdout carries MCP messages only. See docs/agents.md.

Example MCP client entry:
  { "command": "npx", "args": ["-y", "secure-exec", "mcp"] }`,
    )
    .action(async (flags: McpFlags) => onResult(await mcpCommand(flags)));

  return program;
}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  let exitCode = 0;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return EXIT_USAGE;
    }
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof CliError || (error instanceof Error && error.name === "ServerConfigError")) {
      process.stderr.write(`secure-exec: ${error.message.replace(/^secure-exec: /, "")}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof Error && error.name === "InvalidOptionsError") {
      process.stderr.write(`${error.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`secure-exec: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // A closed stdout/stderr (EPIPE) is handled where it matters; it must never crash the command.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
  const code = await main();
  // Let stdout/stderr drain (pipes are asynchronous), then exit even if a handle lingers.
  await Promise.all([writeAsync(process.stdout, ""), writeAsync(process.stderr, "")]);
  process.exit(code);
}
