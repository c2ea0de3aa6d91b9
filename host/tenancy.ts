// Tenants of the HTTP service: who a bearer token is, and each tenant's own runtime,
// concurrency cap and rate limit. Tenants never share a runtime, so they never share a
// workerd process: one tenant's runaway guest cannot stall another's runs.
import { createHash, timingSafeEqual } from "node:crypto";
import { NodeRuntime } from "../runtime/index.js";
import type { RuntimeStats } from "../runtime/index.js";
import type { ToolDefinitions } from "../runtime/types.js";
import type { ResolvedServerConfig, ResolvedTenant } from "./server-config.js";

export type Admission =
  | { ok: true; release: () => void }
  | { ok: false; reason: "concurrency" | "rate"; retryAfterSeconds: number; message: string };

/** Token bucket: holds up to `perMinute` starts, refilled continuously. */
class RateLimiter {
  private tokens: number;
  private updatedAt = performance.now();
  private readonly perMs: number;

  constructor(private readonly perMinute: number) {
    this.tokens = perMinute;
    this.perMs = perMinute / 60_000;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.perMinute, this.tokens + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }

  /** Takes one token, or answers how many seconds until one is available. */
  take(): { ok: true } | { ok: false; retryAfterSeconds: number } {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - this.tokens) / this.perMs / 1000)) };
  }
}

export class Tenant {
  /** Requests admitted and not yet finished (runs in flight, streaming or not). */
  inFlight = 0;
  private readonly rate: RateLimiter | undefined;
  private runtimePromise: Promise<NodeRuntime> | undefined;
  private live: NodeRuntime | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private disposed = false;

  constructor(
    readonly config: ResolvedTenant,
    private readonly tools: ToolDefinitions | undefined,
    private readonly idleRuntimeMs: number,
  ) {
    this.rate = config.ratePerMinute !== undefined ? new RateLimiter(config.ratePerMinute) : undefined;
  }

  get name(): string {
    return this.config.name;
  }

  /** Checks the concurrency cap, then the rate limit; a rejected request consumes nothing. */
  admit(): Admission {
    if (this.inFlight >= this.config.maxConcurrent) {
      return {
        ok: false,
        reason: "concurrency",
        retryAfterSeconds: 1,
        message: `tenant "${this.name}" already has ${this.inFlight} runs in flight (limit ${this.config.maxConcurrent})`,
      };
    }
    if (this.rate) {
      const taken = this.rate.take();
      if (!taken.ok) {
        return {
          ok: false,
          reason: "rate",
          retryAfterSeconds: taken.retryAfterSeconds,
          message: `tenant "${this.name}" exceeded its rate of ${this.config.ratePerMinute} runs per minute`,
        };
      }
    }
    this.inFlight += 1;
    this.cancelIdleTimer();
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight -= 1;
        if (this.inFlight === 0) this.armIdleTimer();
      },
    };
  }

  /** The tenant's runtime, created on first use; a failed creation is retried by the next request. */
  runtime(): Promise<NodeRuntime> {
    if (this.disposed) return Promise.reject(new Error(`secure-exec: tenant "${this.name}" is shut down`));
    if (!this.runtimePromise) {
      const creating = NodeRuntime.create({
        env: this.config.env,
        tenant: this.name,
        tools: this.tools,
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
      if (this.inFlight > 0 || !this.live) return;
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

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export type Authentication =
  | { ok: true; tenant: Tenant }
  | { ok: false; message: string };

export class TenantRegistry {
  private readonly tenants = new Map<string, Tenant>();
  private readonly digests: { digest: Buffer; tenant: Tenant }[] = [];
  readonly authenticated: boolean;

  constructor(config: ResolvedServerConfig) {
    this.authenticated = config.authenticated;
    for (const tenantConfig of config.tenants) {
      const tenant = new Tenant(tenantConfig, config.tools, config.idleRuntimeMs);
      this.tenants.set(tenant.name, tenant);
      if (tenantConfig.token !== undefined) this.digests.push({ digest: digest(tenantConfig.token), tenant });
    }
  }

  get(name: string): Tenant | undefined {
    return this.tenants.get(name);
  }

  all(): Tenant[] {
    return [...this.tenants.values()];
  }

  /** Maps an `Authorization` header to a tenant; without configured tenants everyone is "default". */
  authenticate(authorization: string | undefined): Authentication {
    if (!this.authenticated) return { ok: true, tenant: this.all()[0]! };
    if (authorization === undefined || authorization.trim() === "") {
      return { ok: false, message: "missing bearer token: send Authorization: Bearer <token>" };
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match) return { ok: false, message: "malformed Authorization header: expected Bearer <token>" };
    const presented = digest(match[1]!);
    let found: Tenant | undefined;
    // Compare against every tenant so timing says nothing about which token is close.
    for (const entry of this.digests) {
      if (timingSafeEqual(entry.digest, presented)) found = entry.tenant;
    }
    return found ? { ok: true, tenant: found } : { ok: false, message: "unknown bearer token" };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.all().map((tenant) => tenant.dispose()));
  }
}
