// The edge deployment (wrangler.jsonc): the HTTP API of host/service/http-app.ts served by a Worker
// on Cloudflare's network. Each run is a dynamic worker from the LOADER binding, loaded by
// the same supervisor and prelude the Node host uses; the platform enforces CPU and memory.
// Tenants come from the same settings as the Node service, as Worker variables/secrets:
// SECURE_EXEC_TOKENS ("tenant:token,...") and SECURE_EXEC_CONFIG_JSON (JSON of a server config).
import { WorkerEntrypoint } from "cloudflare:workers";
import { limitsSchema } from "../../host/api/options.js";
import { AdmissionGate, type Admission } from "../../host/service/admission.js";
import { BearerTokens, type Authentication } from "../../host/service/bearer-auth.js";
import { createHttpApp, errorBody, type HttpApp, type HttpTenant } from "../../host/service/http-app.js";
import { ServerConfigError, type ResolvedTenant } from "../../host/service/server-config.js";
import type { ServiceBinding, WorkerLoader } from "./edge-bindings.js";
import { edgeConfigOf } from "./edge-config.js";
import { EdgeRuntime } from "./edge-runtime.js";

export interface EdgeEnv {
  LOADER: WorkerLoader;
  /** This Worker's own `EdgeHostCalls` entrypoint: what guests reach for host calls. */
  HOST: ServiceBinding;
  SECURE_EXEC_TOKENS?: string;
  SECURE_EXEC_CONFIG_JSON?: string;
}

/** Guests' host calls (tools, child processes): the edge has no host to run them on. */
export class EdgeHostCalls extends WorkerEntrypoint<EdgeEnv> {
  override async fetch(): Promise<Response> {
    return Response.json({ ok: false, error: "host tools and child processes are not available on the edge deployment" });
  }
}

class EdgeTenant implements HttpTenant {
  private readonly gate: AdmissionGate;

  constructor(
    readonly config: ResolvedTenant,
    private readonly engine: EdgeRuntime,
  ) {
    this.gate = new AdmissionGate(config.name, config);
  }

  get name(): string {
    return this.config.name;
  }

  admit(): Admission {
    return this.gate.admit();
  }

  runtime(): Promise<EdgeRuntime> {
    return Promise.resolve(this.engine);
  }
}

function buildApp(env: EdgeEnv): HttpApp<EdgeTenant> {
  const config = edgeConfigOf(env.SECURE_EXEC_TOKENS, env.SECURE_EXEC_CONFIG_JSON);
  const tokens = new BearerTokens<EdgeTenant>();
  const tenants = config.tenants.map((tenantConfig) => {
    const limits = limitsSchema.parse(tenantConfig.limits);
    const engine = new EdgeRuntime(
      { LOADER: env.LOADER, HOST: env.HOST },
      { env: tenantConfig.env, outputBytes: limits.outputBytes, returnBytes: limits.returnBytes, scratchFs: { bytes: limits.fsBytes, files: limits.fsFiles } },
    );
    const tenant = new EdgeTenant(tenantConfig, engine);
    if (tenantConfig.token !== undefined) tokens.add(tenantConfig.token, tenant);
    return tenant;
  });
  const ignore = (): void => {};
  return createHttpApp<EdgeTenant>({
    settings: config,
    authenticate: (authorization): Authentication<EdgeTenant> =>
      config.authenticated ? tokens.authenticate(authorization) : { ok: true, tenant: tenants[0]! },
    observer: { observeRun: ignore, observeRejection: ignore, observeResponse: ignore },
    unsupportedFields: {
      cpuTimeLimitMs: "on the edge the platform's CPU limit (limits.cpu_ms in wrangler.jsonc) applies to every run",
    },
    isShuttingDown: () => false,
    logError: (message, error) => console.error(message, error),
  });
}

// One app per isolate, rebuilt only if the Worker's settings change.
let built: { settings: string; app: HttpApp<EdgeTenant> } | { settings: string; error: string } | undefined;

export default {
  fetch(request: Request, env: EdgeEnv): Response | Promise<Response> {
    const settings = `${env.SECURE_EXEC_TOKENS ?? ""}\n${env.SECURE_EXEC_CONFIG_JSON ?? ""}`;
    if (built?.settings !== settings) {
      try {
        built = { settings, app: buildApp(env) };
      } catch (error) {
        if (!(error instanceof ServerConfigError)) throw error;
        built = { settings, error: error.message };
      }
    }
    if ("error" in built) return Response.json(errorBody("misconfigured", built.error), { status: 503 });
    return built.app.fetch(request);
  },
};
