// Example config module for `secure-exec serve --config examples/server-config.example.mjs`.
// The default export may also be a (async) function returning this object.
// Tokens come from the environment here so that no secret lives in the file.

export default {
  port: 8080,
  // With tenants configured every /v1 request needs `Authorization: Bearer <token>`,
  // and the server may listen beyond 127.0.0.1 (--host 0.0.0.0).
  tenants: {
    acme: {
      token: process.env.ACME_TOKEN ?? "acme-dev-token",
      maxConcurrent: 8, // runs in flight at once; more get 429 + Retry-After
      ratePerMinute: 600, // runs started per minute (bursts up to this many)
      timeoutMs: 10_000, // default and cap of a run's wall-clock time
      env: { PLAN: "pro" }, // process.env defaults of this tenant's runs
      // Tools only acme's runs get, besides the shared `tools` below.
      tools: {
        "acme-quota": {
          description: "Remaining monthly quota of acme",
          inputSchema: { type: "object", additionalProperties: false },
          handler: () => ({ remaining: 1000 }),
        },
      },
    },
    globex: {
      token: process.env.GLOBEX_TOKEN ?? "globex-dev-token",
      maxConcurrent: 2,
      ratePerMinute: 60,
      limits: { memoryMb: 64 }, // runtime limits of this tenant's sandbox processes
    },
  },
  // Operator tools: given to every tenant's runtime; HTTP clients cannot add tools.
  tools: {
    "get-time": {
      description: "Current server time (ISO 8601)",
      inputSchema: { type: "object", additionalProperties: false },
      handler: () => new Date().toISOString(),
    },
    "lookup-plan": {
      description: "Plan of the calling tenant",
      inputSchema: { type: "object" },
      // The context says which tenant's guest made the call.
      handler: (_input, { tenant }) => ({ tenant, plan: tenant === "acme" ? "pro" : "free" }),
    },
  },
  // Defaults for everyone:
  maxBodyBytes: 1024 * 1024,
  defaultTimeoutMs: 30_000,
  maxTimeoutMs: 300_000,
  idleRuntimeMs: 600_000,
  // metricsToken: process.env.METRICS_TOKEN,
};
