// Guest HTTP servers as a run capability: a guest that listens on a port is reachable from
// the host through `rt.fetch(port, …)`; no host port is opened.
import type { GuestFetchRequest, GuestFetchResponse, ListenerInfo, ListenerQuery, WaitForListenerOptions } from "../../api/types.js";
import type { RunControl } from "../../engine/run-executor.js";
import type { RunCapability, RunContribution, RunSetup } from "../capability.js";

export class GuestServersCapability implements RunCapability {
  readonly name = "http";
  /**
   * Guests listening on each port, in the order they started listening. The first one holds
   * the port until it stops; a later guest on the same port (another run's) waits behind it
   * and never receives the holder's requests. (Each isolate refuses a second listen of its
   * own with EADDRINUSE; across runs the host cannot answer the guest's listen, so it queues.)
   */
  private readonly listeners = new Map<number, { pid: number; control: RunControl }[]>();
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(private readonly closedError: () => Error) {}

  prepareRun(setup: RunSetup): RunContribution {
    const { control } = setup;
    return {
      request: {
        onListenerChange: (port, listening) => {
          const claimants = this.listeners.get(port) ?? [];
          const mine = claimants.findIndex((claimant) => claimant.control === control);
          if (listening) {
            if (mine === -1) claimants.push({ pid: setup.pid, control });
            this.listeners.set(port, claimants);
          } else if (mine !== -1) {
            claimants.splice(mine, 1);
            if (claimants.length === 0) this.listeners.delete(port);
          }
          this.wakeWaiters();
        },
      },
    };
  }

  ports(): number[] {
    return [...this.listeners.keys()];
  }

  find(query: ListenerQuery): ListenerInfo | undefined {
    const listener = this.listeners.get(query.port)?.[0];
    return listener ? { port: query.port, pid: listener.pid } : undefined;
  }

  async fetch(port: number, request: GuestFetchRequest): Promise<GuestFetchResponse> {
    const listener = this.listeners.get(port)?.[0];
    if (!listener) throw new Error(`secure-exec: no guest is listening on port ${port}`);
    const body =
      request.body === undefined
        ? undefined
        : (typeof request.body === "string" ? Buffer.from(request.body) : Buffer.from(request.body)).toString("base64");
    const reply = (await listener.control.deliver({
      kind: "http-request",
      port,
      method: (request.method ?? "GET").toUpperCase(),
      path: request.path ?? "/",
      headers: request.headers ?? {},
      body,
    })) as { ok: boolean; error?: string; status?: number; statusText?: string; headers?: Record<string, string>; body?: string };
    if (!reply.ok) throw new Error(`secure-exec: guest server on port ${port} failed: ${reply.error ?? "no response"}`);
    return {
      status: reply.status ?? 200,
      statusText: reply.statusText ?? "",
      headers: reply.headers ?? {},
      body: Buffer.from(reply.body ?? "", "base64").toString("utf8"),
    };
  }

  /** Resolves once a guest listens on `port`; rejects after `timeoutMs`, on abort, or when closed. */
  waitFor(query: ListenerQuery, options: WaitForListenerOptions): Promise<ListenerInfo> {
    const found = this.find(query);
    if (found) return Promise.resolve(found);
    return new Promise<ListenerInfo>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        this.waiters.delete(check);
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const check = () => {
        const listener = this.find(query);
        if (listener) {
          cleanup();
          resolve(listener);
        } else if (this.closed) {
          cleanup();
          reject(this.closedError());
        }
      };
      const onAbort = () => {
        cleanup();
        reject(options.signal?.reason ?? new DOMException("This operation was aborted", "AbortError"));
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new Error(`secure-exec: no guest listened on port ${query.port} within ${options.timeoutMs} ms`));
        }, options.timeoutMs);
      }
      this.waiters.add(check);
    });
  }

  /** Pending waits reject; the runtime is going away. */
  close(): void {
    this.closed = true;
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
