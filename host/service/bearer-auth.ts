// Bearer tokens → tenants, compared in constant time. Shared by the Node service and the
// edge Worker (node:crypto is part of workerd's Node compatibility).
import { createHash, timingSafeEqual } from "node:crypto";

function digest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

/** Constant-time comparison of two secrets (via fixed-length digests). */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

export type Authentication<Tenant> = { ok: true; tenant: Tenant } | { ok: false; message: string };

export class BearerTokens<Tenant> {
  private readonly entries: { digest: Buffer; tenant: Tenant }[] = [];

  add(token: string, tenant: Tenant): void {
    this.entries.push({ digest: digest(token), tenant });
  }

  /** Maps an `Authorization` header to the tenant whose token it carries. */
  authenticate(authorization: string | undefined): Authentication<Tenant> {
    if (authorization === undefined || authorization.trim() === "") {
      return { ok: false, message: "missing bearer token: send Authorization: Bearer <token>" };
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match) return { ok: false, message: "malformed Authorization header: expected Bearer <token>" };
    const presented = digest(match[1]!);
    let found: Tenant | undefined;
    // Compare against every tenant so timing says nothing about which token is close.
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presented)) found = entry.tenant;
    }
    return found !== undefined ? { ok: true, tenant: found } : { ok: false, message: "unknown bearer token" };
  }
}
