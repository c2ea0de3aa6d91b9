// Prometheus metrics of the HTTP service. Each server owns its own registry, so several
// servers (tests, embedders) in one process do not collide.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { HttpObserver } from "./http-app.js";
import type { TenantRegistry } from "./tenancy.js";

export interface ServerMetrics extends HttpObserver {
  readonly registry: Registry;
  /** Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
}

export function createServerMetrics(
  tenants: TenantRegistry,
  options: { defaultMetrics?: boolean; sessions?: { count(tenant: string): number } } = {},
): ServerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: "secure_exec_host_" });

  const runs = new Counter({
    name: "secure_exec_runs_total",
    help: "Runs served over HTTP, by tenant, route and outcome",
    labelNames: ["tenant", "route", "outcome"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "secure_exec_run_duration_seconds",
    help: "Wall-clock duration of runs served over HTTP (admission to result)",
    labelNames: ["tenant", "route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const kills = new Counter({
    name: "secure_exec_kills_total",
    help: "Runs killed by a host limit (exit code 137), by best-effort reason",
    labelNames: ["tenant", "reason"] as const,
    registers: [registry],
  });
  const rejections = new Counter({
    name: "secure_exec_rejections_total",
    help: "Requests refused before running (401, 413, 4xx validation, 429)",
    labelNames: ["tenant", "reason"] as const,
    registers: [registry],
  });
  const sessionOpens = new Counter({
    name: "secure_exec_session_opens_total",
    help: "Resident sessions opened over HTTP (admitted opens), by tenant and outcome",
    labelNames: ["tenant", "outcome"] as const,
    registers: [registry],
  });
  const sessionOpenDuration = new Histogram({
    name: "secure_exec_session_open_duration_seconds",
    help: "Time to start a resident session's runner (admission to 201)",
    labelNames: ["tenant"] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const responses = new Counter({
    name: "secure_exec_http_responses_total",
    help: "HTTP responses by route pattern and status",
    labelNames: ["route", "status"] as const,
    registers: [registry],
  });

  const inFlight = new Gauge({
    name: "secure_exec_runs_in_flight",
    help: "Runs admitted and not finished, by tenant",
    labelNames: ["tenant"] as const,
    registers: [registry],
    collect() {
      inFlight.reset();
      for (const tenant of tenants.all()) inFlight.set({ tenant: tenant.name }, tenant.inFlight);
    },
  });
  const openSessions = new Gauge({
    name: "secure_exec_sessions",
    help: "Resident sessions held, by tenant (those still opening included)",
    labelNames: ["tenant"] as const,
    registers: [registry],
    collect() {
      openSessions.reset();
      if (!options.sessions) return;
      for (const tenant of tenants.all()) openSessions.set({ tenant: tenant.name }, options.sessions.count(tenant.name));
    },
  });
  const runtimes = new Gauge({
    name: "secure_exec_tenant_runtimes",
    help: "Tenants whose runtime is live (created lazily, disposed when idle)",
    registers: [registry],
    collect() {
      runtimes.set(tenants.all().filter((tenant) => tenant.stats() !== undefined).length);
    },
  });
  const processes = new Gauge({
    name: "secure_exec_pool_processes",
    help: "workerd sandbox processes of each tenant's runtime, by state",
    labelNames: ["tenant", "state"] as const,
    registers: [registry],
    collect() {
      processes.reset();
      for (const tenant of tenants.all()) {
        const stats = tenant.stats();
        if (!stats) continue;
        const byState = new Map<string, number>();
        for (const sandbox of stats.processes) byState.set(sandbox.state, (byState.get(sandbox.state) ?? 0) + 1);
        for (const [state, count] of byState) processes.set({ tenant: tenant.name, state }, count);
      }
    },
  });
  const rss = new Gauge({
    name: "secure_exec_pool_rss_bytes",
    help: "Resident memory of each tenant's workerd sandbox processes, summed",
    labelNames: ["tenant"] as const,
    registers: [registry],
    collect() {
      rss.reset();
      for (const tenant of tenants.all()) {
        const stats = tenant.stats();
        if (!stats) continue;
        const kb = stats.processes.reduce((sum, sandbox) => sum + (sandbox.rssKb ?? 0), 0);
        rss.set({ tenant: tenant.name }, kb * 1024);
      }
    },
  });
  const lost = new Gauge({
    name: "secure_exec_pool_processes_lost",
    help: "Sandbox processes of the live runtime killed or crashed (runaways, OOM); resets when the runtime is recycled",
    labelNames: ["tenant"] as const,
    registers: [registry],
    collect() {
      lost.reset();
      for (const tenant of tenants.all()) {
        const stats = tenant.stats();
        if (stats) lost.set({ tenant: tenant.name }, stats.processesLost);
      }
    },
  });
  const runtimeRuns = new Gauge({
    name: "secure_exec_runtime_runs",
    help: "Runs started by the live runtime of each tenant (SDK counter)",
    labelNames: ["tenant"] as const,
    registers: [registry],
    collect() {
      runtimeRuns.reset();
      for (const tenant of tenants.all()) {
        const stats = tenant.stats();
        if (stats) runtimeRuns.set({ tenant: tenant.name }, stats.runs);
      }
    },
  });

  return {
    registry,
    contentType: registry.contentType,
    observeRun(tenant, route, outcome, durationSeconds, killReason) {
      runs.inc({ tenant, route, outcome });
      duration.observe({ tenant, route }, durationSeconds);
      if (outcome === "killed") kills.inc({ tenant, reason: killReason ?? "other" });
    },
    observeRejection(tenant, reason) {
      rejections.inc({ tenant, reason });
    },
    observeSessionOpen(tenant, outcome, durationSeconds) {
      sessionOpens.inc({ tenant, outcome });
      sessionOpenDuration.observe({ tenant }, durationSeconds);
    },
    observeResponse(route, status) {
      responses.inc({ route, status: String(status) });
    },
    render() {
      return registry.metrics();
    },
  };
}
