// The HTTP service on Node (SPEC §3): the API's routes (host/service/http-app.ts) over tenants that
// each own a NodeRuntime, resident sessions and Prometheus metrics, served by
// @hono/node-server. The host process only moves bytes: guests run in workerd processes of
// their tenant's runtime, so a runaway guest never stalls this event loop, /healthz or
// another tenant.
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import { createHttpApp, type HttpApp } from "./http-app.js";
import { createServerMetrics, type ServerMetrics } from "./metrics.js";
import { resolveServerConfig, type ResolvedServerConfig } from "./server-config.js";
import { TenantRegistry, type Tenant } from "./tenancy.js";
import { SESSION_IDLE_MS, SessionRegistry } from "./sessions.js";
import { createMcpHttpHandler } from "../mcp/http.js";

export { API_VERSION, execRequestSchema, openApiDocument, type ErrorBody, type ErrorCode, type ExecRequest, type StreamEvent } from "./http-app.js";

export interface ServerApp {
  app: HttpApp<Tenant>;
  tenants: TenantRegistry;
  metrics: ServerMetrics;
  config: ResolvedServerConfig;
  /** Disposes every tenant's runtime (in-flight runs end with 503 / an error event). */
  dispose(): Promise<void>;
}

export interface ServerAppOptions {
  /** Collect Node process metrics (`secure_exec_host_*`) too. Default true. */
  defaultMetrics?: boolean;
  /** Where unexpected errors are reported. Default `console.error`. */
  logError?: (message: string, error: unknown) => void;
}

/** Builds the Hono app and its tenants from a resolved config. */
export function createServerApp(config: ResolvedServerConfig, options: ServerAppOptions = {}): ServerApp {
  const tenants = new TenantRegistry(config);
  const sessions = new SessionRegistry(SESSION_IDLE_MS, config.instanceId);
  const metrics = createServerMetrics(tenants, { defaultMetrics: options.defaultMetrics, sessions });
  let shuttingDown = false;
  const logError = options.logError ?? ((message: string, error: unknown) => console.error(message, error));
  const app = createHttpApp({
    settings: config,
    authenticate: (authorization) => tenants.authenticate(authorization),
    observer: metrics,
    metrics,
    sessions,
    isShuttingDown: () => shuttingDown,
    logError,
    mcp: createMcpHttpHandler({ sessions, observer: metrics, logError }),
  });
  return {
    app,
    tenants,
    metrics,
    config,
    async dispose() {
      shuttingDown = true;
      await sessions.dispose();
      await tenants.dispose();
    },
  };
}

export interface RunningServer extends ServerApp {
  server: Server;
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  port: number;
  host: string;
  /** Stops accepting, disposes the tenants' runtimes, closes connections. */
  close(): Promise<void>;
}

/** Starts the service (port 0 picks a free port). Accepts a raw `ServerConfig` or a resolved one. */
export async function startServer(
  config: ResolvedServerConfig | Parameters<typeof resolveServerConfig>[0],
  options: ServerAppOptions = {},
): Promise<RunningServer> {
  const resolved = isResolved(config) ? config : resolveServerConfig(config);
  const serverApp = createServerApp(resolved, options);
  const server = await new Promise<Server>((resolve, reject) => {
    const created = serve({ fetch: serverApp.app.fetch, port: resolved.port, hostname: resolved.host }) as Server;
    const onError = (error: Error) => reject(error);
    created.once("error", onError);
    created.once("listening", () => {
      created.off("error", onError);
      resolve(created);
    });
  }).catch(async (error: unknown) => {
    await serverApp.dispose();
    throw error;
  });
  // Keep-alive connections may outlive a request by a few seconds; never hold the host open.
  server.keepAliveTimeout = 5_000;
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    ...serverApp,
    server,
    port: address.port,
    host: resolved.host,
    url: `http://${urlHost}:${address.port}`,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await serverApp.dispose();
        server.closeIdleConnections();
        const grace = setTimeout(() => server.closeAllConnections(), 2_000);
        grace.unref();
        await closed;
        clearTimeout(grace);
      })();
      return closing;
    },
  };
}

function isResolved(config: unknown): config is ResolvedServerConfig {
  return typeof config === "object" && config !== null && "authenticated" in config && Array.isArray((config as { tenants?: unknown }).tenants);
}
