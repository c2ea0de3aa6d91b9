// Configuration of the HTTP service: tenants (bearer tokens and caps), operator tools,
// limits and the listening address. Read from a config module (`--config file.mjs`,
// default export) and from `SECURE_EXEC_TOKENS=tenant:token,...`; validated with zod so a
// bad file fails at start-up with the path of the bad value.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import type { RuntimeLimits, ToolDefinitions } from "../api/types.js";
import { limitsSchema } from "../api/options.js";
import { ToolDefinitionError, ToolGateway } from "../capabilities/tools/tool-gateway.js";
import * as toolDefinitionChecks from "../capabilities/tools/definition-checks.js";

/** Everything one tenant may be given. */
export interface TenantConfig {
  /** Bearer token that identifies the tenant (`Authorization: Bearer <token>`). */
  token: string;
  /** Runs in flight at once; more get 429. Default `ServerConfig.defaults.maxConcurrent`. */
  maxConcurrent?: number;
  /** Runs started per minute (token bucket, bursts up to this many); more get 429. Unlimited when absent. */
  ratePerMinute?: number;
  /** `process.env` defaults of every run of this tenant. */
  env?: Record<string, string>;
  /** Default and maximum wall-clock ms of one run of this tenant. */
  timeoutMs?: number;
  /** Runtime limits of this tenant's runtime (merged over `ServerConfig.limits`). */
  limits?: Partial<RuntimeLimits>;
  /** Operator tools only this tenant's runs get, besides `ServerConfig.tools` (same name: this one wins). */
  tools?: ToolDefinitions;
}

/** What a config module's default export holds. */
export interface ServerConfig {
  /** Tenants by name. None: one anonymous "default" tenant, no auth, loopback only. */
  tenants?: Record<string, TenantConfig>;
  /** Operator tools handed to every tenant's runtime. */
  tools?: ToolDefinitions;
  port?: number;
  host?: string;
  /** Runtime limits of every tenant's runtime. */
  limits?: Partial<RuntimeLimits>;
  /** Largest request body in bytes (default 1 MiB); more gets 413. */
  maxBodyBytes?: number;
  /** Default `timeout` of a run when neither the request nor the tenant sets one (default 30 000). */
  defaultTimeoutMs?: number;
  /** Largest `timeout` a request may ask for when the tenant sets no `timeoutMs` (default 300 000). */
  maxTimeoutMs?: number;
  /** Default `maxConcurrent` of tenants (default 16). */
  maxConcurrent?: number;
  /** A tenant's runtime idle this long is disposed (its workerd processes stop); 0 keeps it. Default 600 000. */
  idleRuntimeMs?: number;
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /**
   * Names this host among several behind one load balancer: session ids start with
   * `<instanceId>.`, so the balancer can route a session's requests to the host that holds it.
   */
  instanceId?: string;
}

export interface ResolvedTenant {
  name: string;
  token: string | undefined;
  maxConcurrent: number;
  ratePerMinute: number | undefined;
  env: Record<string, string>;
  /** Cap (and default) of a run's timeout. */
  timeoutCapMs: number;
  defaultTimeoutMs: number;
  limits: Partial<RuntimeLimits>;
  /** The config's tools with the tenant's own over them. */
  tools: ToolDefinitions | undefined;
}

export interface ResolvedServerConfig {
  /** True when tenants are configured (bearer auth on). */
  authenticated: boolean;
  tenants: ResolvedTenant[];
  tools: ToolDefinitions | undefined;
  port: number;
  host: string;
  maxBodyBytes: number;
  idleRuntimeMs: number;
  metricsToken: string | undefined;
  instanceId: string | undefined;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = "127.0.0.1";
export const ANONYMOUS_TENANT = "default";
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "localhost"]);

export class ServerConfigError extends Error {
  constructor(message: string) {
    super(`secure-exec: ${message}`);
    this.name = "ServerConfigError";
  }
}

const tenantName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
  message: 'tenant names use letters, digits, ".", "_" or "-" (at most 64), starting with a letter or digit',
});
const positiveInt = z.number().int().positive();
// Node timers overflow past 2^31 - 1 ms (about 24.8 days).
const timeoutMs = positiveInt.max(2_147_483_647);
const envRecord = z.record(z.string().regex(/^[^=\0]+$/, { message: 'env names must not contain "=" or NUL' }), z.string());
// Runtime limits are checked again (fully) by NodeRuntime.create; here only their shape.
const limitsShape = z.record(z.string(), z.number());

const tenantSchema = z.strictObject({
  token: z.string().min(1, { message: "must not be empty" }).regex(/^[\x21-\x7e]+$/, { message: "must be printable ASCII without spaces" }),
  maxConcurrent: positiveInt.max(10_000).optional(),
  ratePerMinute: positiveInt.optional(),
  env: envRecord.optional(),
  timeoutMs: timeoutMs.optional(),
  limits: limitsShape.optional(),
  tools: z.record(z.string(), z.unknown()).optional(),
});

const configSchema = z.strictObject({
  tenants: z.record(tenantName, tenantSchema).optional(),
  tools: z.record(z.string(), z.unknown()).optional(),
  port: z.number().int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  limits: limitsShape.optional(),
  maxBodyBytes: positiveInt.max(64 * 1024 * 1024).optional(),
  defaultTimeoutMs: timeoutMs.optional(),
  maxTimeoutMs: timeoutMs.optional(),
  maxConcurrent: positiveInt.max(10_000).optional(),
  idleRuntimeMs: z.number().int().min(0).optional(),
  metricsToken: z.string().min(1).optional(),
  instanceId: z.string().regex(/^[A-Za-z0-9-]{1,32}$/, { message: 'use 1 to 32 letters, digits or "-"' }).optional(),
});

function describeIssue(error: z.ZodError, where: string): string {
  const issue = error.issues[0]!;
  const path = issue.path.map(String).join(".");
  return `invalid ${where}${path ? ` "${path}"` : ""}: ${issue.message}`;
}

/** Parses `SECURE_EXEC_TOKENS` (`tenant:token,tenant2:token2`). */
export function parseTokenList(text: string): Record<string, string> {
  const tokens: Record<string, string> = {};
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const colon = entry.indexOf(":");
    if (colon <= 0 || colon === entry.length - 1) {
      throw new ServerConfigError(`SECURE_EXEC_TOKENS entry "${entry.slice(0, 40)}" is not of the form tenant:token`);
    }
    const name = entry.slice(0, colon).trim();
    const token = entry.slice(colon + 1).trim();
    if (!tenantName.safeParse(name).success) throw new ServerConfigError(`SECURE_EXEC_TOKENS: bad tenant name "${name.slice(0, 40)}"`);
    if (Object.hasOwn(tokens, name)) throw new ServerConfigError(`SECURE_EXEC_TOKENS names tenant "${name}" twice`);
    tokens[name] = token;
  }
  return tokens;
}

export interface ResolveOptions {
  /** `SECURE_EXEC_TOKENS`-style list; merged over `config.tenants` (adds tenants, replaces tokens). */
  tokens?: string;
  /** Overrides `config.port`. */
  port?: number;
  /** Overrides `config.host`. */
  host?: string;
  /** Overrides `config.instanceId`. */
  instanceId?: string;
}

/** Validates a config object and fills in defaults. Throws `ServerConfigError` naming the bad value. */
export function resolveServerConfig(input: unknown = {}, options: ResolveOptions = {}): ResolvedServerConfig {
  const parsed = configSchema.safeParse(options.instanceId === undefined ? (input ?? {}) : { ...(input as object), instanceId: options.instanceId });
  if (!parsed.success) throw new ServerConfigError(describeIssue(parsed.error, "server config"));
  const config = parsed.data;
  const tools = config.tools as ToolDefinitions | undefined;
  // Fail at start-up, not at a tenant's first run.
  const checkTools = (definitions: ToolDefinitions, tenant?: string): void => {
    try {
      new ToolGateway(undefined, toolDefinitionChecks).register(definitions);
    } catch (error) {
      if (!(error instanceof ToolDefinitionError)) throw error;
      const where = tenant === undefined ? "server config: " : `server config: tenants.${tenant}.`;
      throw new ServerConfigError(error.message.replace(/^secure-exec: /, where));
    }
  };
  if (tools) checkTools(tools);

  const tenantConfigs: Record<string, z.infer<typeof tenantSchema>> = { ...(config.tenants ?? {}) };
  if (options.tokens !== undefined && options.tokens.trim() !== "") {
    for (const [name, token] of Object.entries(parseTokenList(options.tokens))) {
      const parsedToken = tenantSchema.shape.token.safeParse(token);
      if (!parsedToken.success) throw new ServerConfigError(`SECURE_EXEC_TOKENS: token of tenant "${name}" ${parsedToken.error.issues[0]!.message}`);
      tenantConfigs[name] = { ...(tenantConfigs[name] ?? {}), token };
    }
  }

  const defaultTimeoutMs = config.defaultTimeoutMs ?? 30_000;
  const maxTimeoutMs = Math.max(config.maxTimeoutMs ?? 300_000, defaultTimeoutMs);
  const defaultConcurrent = config.maxConcurrent ?? 16;
  const baseLimits = (config.limits ?? {}) as Partial<RuntimeLimits>;
  // Runtimes check their limits again at creation; checking here fails at start-up instead.
  const checkLimits = (limits: Partial<RuntimeLimits>, tenant?: string): void => {
    const checked = limitsSchema.safeParse(limits);
    if (checked.success) return;
    const issue = checked.error.issues[0]!;
    const path = ["limits", ...issue.path.map(String)].join(".");
    throw new ServerConfigError(`invalid server config "${path}"${tenant ? ` (of tenant "${tenant}")` : ""}: ${issue.message}`);
  };
  checkLimits(baseLimits);
  const names = Object.keys(tenantConfigs);
  const seenTokens = new Map<string, string>();
  const tenants: ResolvedTenant[] = names.map((name) => {
    const tenant = tenantConfigs[name]!;
    const other = seenTokens.get(tenant.token);
    if (other !== undefined) throw new ServerConfigError(`tenants "${other}" and "${name}" have the same token`);
    seenTokens.set(tenant.token, name);
    const limits = { ...baseLimits, ...((tenant.limits ?? {}) as Partial<RuntimeLimits>) };
    checkLimits(limits, name);
    const tenantTools = tenant.tools as ToolDefinitions | undefined;
    const mergedTools = tenantTools ? { ...tools, ...tenantTools } : tools;
    if (tenantTools) checkTools(mergedTools!, name);
    const cap = tenant.timeoutMs ?? maxTimeoutMs;
    return {
      name,
      token: tenant.token,
      maxConcurrent: tenant.maxConcurrent ?? defaultConcurrent,
      ratePerMinute: tenant.ratePerMinute,
      env: tenant.env ?? {},
      timeoutCapMs: cap,
      defaultTimeoutMs: Math.min(tenant.timeoutMs ?? defaultTimeoutMs, cap),
      limits,
      tools: mergedTools,
    };
  });

  const host = options.host ?? config.host ?? DEFAULT_HOST;
  const authenticated = tenants.length > 0;
  if (!authenticated) {
    if (!LOOPBACK_HOSTS.has(host)) {
      throw new ServerConfigError(
        `no tenants are configured, so the server would run without authentication; it may then listen only on 127.0.0.1 (asked: ${host}). ` +
          "Configure tenants (--config with `tenants`, or SECURE_EXEC_TOKENS=tenant:token) to listen elsewhere",
      );
    }
    tenants.push({
      name: ANONYMOUS_TENANT,
      token: undefined,
      maxConcurrent: defaultConcurrent,
      ratePerMinute: undefined,
      env: {},
      timeoutCapMs: maxTimeoutMs,
      defaultTimeoutMs,
      limits: baseLimits,
      tools,
    });
  }

  const port = options.port ?? config.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ServerConfigError(`port must be an integer 0..65535 (got ${port})`);
  return {
    authenticated,
    tenants,
    tools,
    port,
    host,
    maxBodyBytes: config.maxBodyBytes ?? 1024 * 1024,
    idleRuntimeMs: config.idleRuntimeMs ?? 600_000,
    metricsToken: config.metricsToken,
    instanceId: config.instanceId,
  };
}

/** Imports a config module; its default export is the config object (or a function returning it). */
export async function loadConfigModule(path: string): Promise<unknown> {
  const url = pathToFileURL(resolve(path)).href;
  let loaded: { default?: unknown };
  try {
    loaded = (await import(url)) as { default?: unknown };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ServerConfigError(`cannot load config module ${path}: ${message}`);
  }
  let config = loaded.default;
  if (config === undefined) throw new ServerConfigError(`config module ${path} has no default export`);
  if (typeof config === "function") config = await (config as () => unknown)();
  if (typeof config !== "object" || config === null) throw new ServerConfigError(`the default export of ${path} must be an object`);
  return config;
}

/** Loads `--config` (if any) and `SECURE_EXEC_TOKENS`, applies overrides, validates. */
export async function loadServerConfig(options: ResolveOptions & { configPath?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ResolvedServerConfig> {
  const env = options.env ?? process.env;
  const raw = options.configPath ? await loadConfigModule(options.configPath) : {};
  return resolveServerConfig(raw, {
    tokens: options.tokens ?? env.SECURE_EXEC_TOKENS,
    port: options.port,
    host: options.host,
    instanceId: options.instanceId ?? env.SECURE_EXEC_INSTANCE_ID,
  });
}
