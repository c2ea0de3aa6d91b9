// HTTP resident sessions: one resident runner per session, owned by a tenant, ended by
// DELETE or after sitting idle.
import { randomUUID } from "node:crypto";
import type { ResidentRunner } from "../api/types.js";
import type { Tenant } from "./tenancy.js";

export const MAX_SESSIONS_PER_TENANT = 8;
export const SESSION_IDLE_MS = 10 * 60_000;

interface Session {
  id: string;
  tenant: string;
  runner: ResidentRunner;
  lastUsed: number;
  busy: boolean;
  /** Lets the tenant's runtime be disposed for idleness again. */
  release: () => void;
}

export class SessionRegistry {
  readonly maxPerTenant = MAX_SESSIONS_PER_TENANT;
  private readonly sessions = new Map<string, Session>();
  /** Slots taken by opens still starting their runner, by tenant. */
  private readonly opening = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;
  private disposed = false;

  constructor(
    private readonly idleMs = SESSION_IDLE_MS,
    /** Prefix of every id (`<instanceId>.<uuid>`): which host holds the session. */
    private readonly instanceId?: string,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, idleMs));
    this.sweeper.unref();
  }

  /** Sessions the tenant holds, counting those still opening. */
  count(tenant: string): number {
    let total = this.opening.get(tenant) ?? 0;
    for (const session of this.sessions.values()) if (session.tenant === tenant) total += 1;
    return total;
  }

  /** Opens a session; rejects when its runner cannot start or the registry was disposed meanwhile. */
  async open(tenant: Tenant): Promise<{ id: string } | { error: "too_many_sessions" }> {
    if (this.disposed) throw new Error("secure-exec: the session registry is shut down");
    if (this.count(tenant.name) >= MAX_SESSIONS_PER_TENANT) return { error: "too_many_sessions" };
    // The slot is taken before the first await, so concurrent opens cannot all pass the check.
    this.opening.set(tenant.name, (this.opening.get(tenant.name) ?? 0) + 1);
    try {
      const runtime = await tenant.runtime();
      const runner = await runtime.createResidentRunner();
      if (this.disposed) {
        await runner.dispose().catch(() => {});
        throw new Error("secure-exec: the session registry is shut down");
      }
      const id = this.instanceId === undefined ? randomUUID() : `${this.instanceId}.${randomUUID()}`;
      this.sessions.set(id, { id, tenant: tenant.name, runner, lastUsed: Date.now(), busy: false, release: tenant.hold() });
      return { id };
    } finally {
      const left = (this.opening.get(tenant.name) ?? 1) - 1;
      if (left > 0) this.opening.set(tenant.name, left);
      else this.opening.delete(tenant.name);
    }
  }

  /** The tenant's own session of that id (another tenant's ids do not exist for it). */
  get(tenant: string, id: string): Session | undefined {
    const session = this.sessions.get(id);
    return session && session.tenant === tenant ? session : undefined;
  }

  async close(tenant: string, id: string): Promise<boolean> {
    const session = this.get(tenant, id);
    if (!session) return false;
    this.sessions.delete(id);
    session.release();
    await session.runner.dispose().catch(() => {});
    return true;
  }

  forget(id: string): void {
    this.sessions.get(id)?.release();
    this.sessions.delete(id);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const session of all) session.release();
    await Promise.all(all.map((session) => session.runner.dispose().catch(() => {})));
  }

  private sweep(): void {
    const now = Date.now();
    for (const session of [...this.sessions.values()]) {
      if (!session.busy && now - session.lastUsed > this.idleMs) {
        this.sessions.delete(session.id);
        session.release();
        void session.runner.dispose().catch(() => {});
      }
    }
  }
}
