// Settings of the edge deployment: the Node service's config format (tenants, caps, env,
// timeouts) minus what only a Node host can do (operator tools, listening address,
// process limits), which is refused by name rather than ignored.
import { resolveServerConfig, ServerConfigError, type ResolvedServerConfig } from "../../host/service/server-config.js";

/** Server-config settings that have no meaning on the edge; naming one is a config error. */
const NODE_ONLY_SETTINGS = ["tools", "port", "host", "idleRuntimeMs", "instanceId"];
const EDGE_LIMITS = new Set(["outputBytes", "returnBytes", "fsBytes", "fsFiles"]);

function checkEdgeLimits(limits: Record<string, unknown> | undefined, where: string): void {
  for (const name of Object.keys(limits ?? {})) {
    if (!EDGE_LIMITS.has(name)) {
      throw new ServerConfigError(`SECURE_EXEC_CONFIG_JSON "${where}limits.${name}" is not available on the edge deployment (the platform sets CPU and memory limits)`);
    }
  }
}

/**
 * The edge service's settings from the Worker's variables `SECURE_EXEC_TOKENS` and
 * `SECURE_EXEC_CONFIG_JSON`, validated as the Node service validates its own.
 */
export function edgeConfigOf(tokens: string | undefined, configJson: string | undefined): ResolvedServerConfig {
  let raw: unknown = {};
  if (configJson !== undefined && configJson.trim() !== "") {
    try {
      raw = JSON.parse(configJson);
    } catch {
      throw new ServerConfigError("SECURE_EXEC_CONFIG_JSON is not valid JSON");
    }
  }
  if (typeof raw === "object" && raw !== null) {
    const settings = raw as { limits?: Record<string, unknown>; tenants?: Record<string, { limits?: Record<string, unknown>; tools?: unknown }> };
    for (const name of NODE_ONLY_SETTINGS) {
      if (name in settings) throw new ServerConfigError(`SECURE_EXEC_CONFIG_JSON "${name}" is not available on the edge deployment`);
    }
    checkEdgeLimits(settings.limits, "");
    for (const [tenant, tenantSettings] of Object.entries(settings.tenants ?? {})) {
      if (typeof tenantSettings === "object" && tenantSettings !== null && "tools" in tenantSettings) {
        throw new ServerConfigError(`SECURE_EXEC_CONFIG_JSON "tenants.${tenant}.tools" is not available on the edge deployment`);
      }
      checkEdgeLimits(tenantSettings?.limits, `tenants.${tenant}.`);
    }
  }
  return resolveServerConfig(raw, { tokens });
}

