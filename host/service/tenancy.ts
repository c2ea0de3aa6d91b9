// Tenants of the HTTP service: who a bearer token is, and each tenant's own runtime,
// concurrency cap and rate limit. Tenants never share a runtime, so they never share a
// workerd process: one tenant's runaway guest cannot stall another's runs.
import { NodeRuntime } from "../../runtime/index.js";
import type { RuntimeStats } from "../../runtime/index.js";
import { AdmissionGate, type Admission } from "./admission.js";
import { BearerTokens, type Authentication } from "./bearer-auth.js";
import type { ResolvedServerConfig, ResolvedTenant } from "./server-config.js";

export class Tenant {
  private readonly gate: AdmissionGate;
  private runtimePromise: Promise<NodeRuntime> | undefined;
  private live: NodeRuntime | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** Resident sessions held: the runtime they live in is not disposed for idleness. */
  private holds = 0;

  constructor(
    readonly config: ResolvedTenant,
    private readonly idleRuntimeMs: number,
  ) {
    this.gate = new AdmissionGate(config.name, config, (busy) => {
      if (busy) this.cancelIdleTimer();
      else if (this.holds === 0) this.armIdleTimer();
    });
  }

  get name(): string {
    return this.config.name;
  }

  /** Requests admitted and not yet finished (runs in flight, streaming or not). */
  get inFlight(): number {
    return this.gate.inFlight;
  }

  /** Checks the concurrency cap, then the rate limit; a rejected request consumes nothing. */
  admit(): Admission {
    return this.gate.admit();
  }

  /** Keeps the runtime from idle disposal until the returned function is called (a session). */
  hold(): () => void {
    this.holds += 1;
    this.cancelIdleTimer();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      if (this.holds === 0 && this.inFlight === 0) this.armIdleTimer();
    };
  }

  /** The tenant's runtime, created on first use; a failed creation is retried by the next request. */
  runtime(): Promise<NodeRuntime> {
    if (this.disposed) return Promise.reject(new Error(`secure-exec: tenant "${this.name}" is shut down`));
    if (!this.runtimePromise) {
      const creating = NodeRuntime.create({
        env: this.config.env,
        tenant: this.name,
        tools: this.config.tools,
        limits: this.config.limits,
      });
      this.runtimePromise = creating;
      creating.then(
        (runtime) => {
          if (this.disposed || this.runtimePromise !== creating) {
            void runtime.dispose();
            return;
          }
          this.live = runtime;
        },
        () => {
          if (this.runtimePromise === creating) this.runtimePromise = undefined;
        },
      );
    }
    return this.runtimePromise;
  }

  /** Stats of the live runtime (none before the first run or after idle disposal). */
  stats(): RuntimeStats | undefined {
    return this.live?.stats();
  }

  private cancelIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private armIdleTimer(): void {
    this.cancelIdleTimer();
    if (this.idleRuntimeMs <= 0 || !this.runtimePromise) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.inFlight > 0 || this.holds > 0 || !this.live) return;
      const runtime = this.live;
      this.live = undefined;
      this.runtimePromise = undefined;
      void runtime.dispose();
    }, this.idleRuntimeMs);
    this.idleTimer.unref();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.cancelIdleTimer();
    const pending = this.runtimePromise;
    this.runtimePromise = undefined;
    this.live = undefined;
    if (!pending) return;
    const runtime = await pending.catch(() => undefined);
    await runtime?.dispose();
  }
}

export class TenantRegistry {
  private readonly tenants = new Map<string, Tenant>();
  private readonly tokens = new BearerTokens<Tenant>();
  readonly authenticated: boolean;

  constructor(config: ResolvedServerConfig) {
    this.authenticated = config.authenticated;
    for (const tenantConfig of config.tenants) {
      const tenant = new Tenant(tenantConfig, config.idleRuntimeMs);
      this.tenants.set(tenant.name, tenant);
      if (tenantConfig.token !== undefined) this.tokens.add(tenantConfig.token, tenant);
    }
  }

  get(name: string): Tenant | undefined {
    return this.tenants.get(name);
  }

  all(): Tenant[] {
    return [...this.tenants.values()];
  }

  /** Maps an `Authorization` header to a tenant; without configured tenants everyone is "default". */
  authenticate(authorization: string | undefined): Authentication<Tenant> {
    if (!this.authenticated) return { ok: true, tenant: this.all()[0]! };
    return this.tokens.authenticate(authorization);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.all().map((tenant) => tenant.dispose()));
  }
}
