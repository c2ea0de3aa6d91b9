// `secure-exec mcp`: the MCP tools over stdio for one tenant of a server config (the MCP
// client that spawned the process is its only user, so there is no token). stdout carries
// MCP messages only; diagnostics go to stderr.
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { ResolvedServerConfig } from "../service/server-config.js";
import { SESSION_IDLE_MS, SessionRegistry } from "../service/sessions.js";
import { TenantRegistry } from "../service/tenancy.js";
import { createMcpToolsServer } from "./tools.js";

export interface StdioMcpOptions {
  /** Tenant of the config whose runtime, caps and tools serve (default: the first). */
  tenant?: string;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

/** Serves until the client closes stdin (or `stop` is called); then disposes every sandbox. */
export async function serveMcpOverStdio(config: ResolvedServerConfig, options: StdioMcpOptions = {}): Promise<{ closed: Promise<void>; stop(): Promise<void> }> {
  const tenants = new TenantRegistry(config);
  const tenant = options.tenant === undefined ? tenants.all()[0] : tenants.get(options.tenant);
  if (!tenant) {
    await tenants.dispose();
    const names = tenants.all().map((entry) => entry.name).join(", ");
    throw new Error(`secure-exec: no tenant "${options.tenant}" in the config (tenants: ${names})`);
  }
  const sessions = new SessionRegistry(SESSION_IDLE_MS, config.instanceId);
  const server = createMcpToolsServer({
    tenant,
    sessions,
    logError: (message, error) => process.stderr.write(`${message}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`),
  });
  const input = (options.input ?? process.stdin) as typeof process.stdin;
  const output = (options.output ?? process.stdout) as typeof process.stdout;
  const transport = new StdioServerTransport(input, output);
  let stopping: Promise<void> | undefined;
  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const stop = (): Promise<void> => {
    if (stopping) return stopping;
    let release: () => void = () => {};
    // Set before closing: closing the server closes the transport, whose onclose calls stop again.
    stopping = new Promise<void>((resolve) => (release = resolve));
    void (async () => {
      await server.close().catch(() => {});
      await sessions.dispose();
      await tenants.dispose();
      markClosed();
      release();
    })();
    return stopping;
  };
  // The SDK's stdio transport does not watch for end-of-input: the client going away ends us.
  input.once("end", () => void stop());
  input.once("close", () => void stop());
  transport.onclose = () => void stop();
  await server.connect(transport);
  // Start the sandbox runtime now, so the first run_code does not wait for it (a failed start is retried by that call).
  tenant.runtime().catch(() => {});
  return { closed, stop };
}
