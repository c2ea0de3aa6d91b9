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
}

export class SessionRegistry {
  readonly maxPerTenant = MAX_SESSIONS_PER_TENANT;
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly idleMs = SESSION_IDLE_MS,
    /** Prefix of every id (`<instanceId>.<uuid>`): which host holds the session. */
    private readonly instanceId?: string,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, idleMs));
    this.sweeper.unref();
  }

  count(tenant: string): number {
    let total = 0;
    for (const session of this.sessions.values()) if (session.tenant === tenant) total += 1;
    return total;
  }

  async open(tenant: Tenant): Promise<{ id: string } | { error: "too_many_sessions" }> {
    if (this.count(tenant.name) >= MAX_SESSIONS_PER_TENANT) return { error: "too_many_sessions" };
    const runtime = await tenant.runtime();
    const runner = await runtime.createResidentRunner();
    const id = this.instanceId === undefined ? randomUUID() : `${this.instanceId}.${randomUUID()}`;
    this.sessions.set(id, { id, tenant: tenant.name, runner, lastUsed: Date.now(), busy: false });
    return { id };
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
    await session.runner.dispose().catch(() => {});
    return true;
  }

  forget(id: string): void {
    this.sessions.delete(id);
  }

  async dispose(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((session) => session.runner.dispose().catch(() => {})));
  }

  private sweep(): void {
    const now = Date.now();
    for (const session of [...this.sessions.values()]) {
      if (!session.busy && now - session.lastUsed > this.idleMs) {
        this.sessions.delete(session.id);
        void session.runner.dispose().catch(() => {});
      }
    }
  }
}
