// Per-tenant admission: a concurrency cap and a token-bucket rate. Shared by the Node
// service and the edge Worker (no Node APIs).

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

export interface AdmissionLimits {
  maxConcurrent: number;
  ratePerMinute: number | undefined;
}

export class AdmissionGate {
  /** Requests admitted and not yet finished (runs in flight, streaming or not). */
  inFlight = 0;
  private readonly rate: RateLimiter | undefined;

  constructor(
    private readonly tenantName: string,
    private readonly limits: AdmissionLimits,
    /** Called when the first request is admitted after idleness, and when the last one finishes. */
    private readonly onBusyChange?: (busy: boolean) => void,
  ) {
    this.rate = limits.ratePerMinute !== undefined ? new RateLimiter(limits.ratePerMinute) : undefined;
  }

  /** Checks the concurrency cap, then the rate limit; a rejected request consumes nothing. */
  admit(): Admission {
    if (this.inFlight >= this.limits.maxConcurrent) {
      return {
        ok: false,
        reason: "concurrency",
        retryAfterSeconds: 1,
        message: `tenant "${this.tenantName}" already has ${this.inFlight} runs in flight (limit ${this.limits.maxConcurrent})`,
      };
    }
    if (this.rate) {
      const taken = this.rate.take();
      if (!taken.ok) {
        return {
          ok: false,
          reason: "rate",
          retryAfterSeconds: taken.retryAfterSeconds,
          message: `tenant "${this.tenantName}" exceeded its rate of ${this.limits.ratePerMinute} runs per minute`,
        };
      }
    }
    this.inFlight += 1;
    if (this.inFlight === 1) this.onBusyChange?.(true);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight -= 1;
        if (this.inFlight === 0) this.onBusyChange?.(false);
      },
    };
  }
}
