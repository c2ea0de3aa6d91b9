// Declarations for the edge Worker's TypeScript: the parts of the Workers runtime it uses,
// and the supervisor module it shares with the Node host.

/** The Worker Loader binding (`worker_loaders` in wrangler.jsonc). */
export interface WorkerLoader {
  get(id: string, getCode: () => unknown): { getEntrypoint(): { fetch(input: string | Request, init?: RequestInit): Promise<Response> } };
}

/** A service binding. */
export interface ServiceBinding {
  fetch(input: string | Request, init?: RequestInit): Promise<Response>;
}

/** What the supervisor needs: the same bindings a sandbox cell gives it (config.capnp). */
export interface SupervisorBindings {
  LOADER: WorkerLoader;
  HOST: ServiceBinding;
  EGRESS?: ServiceBinding;
}
