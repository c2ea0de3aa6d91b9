// The one class the edge Worker takes from the Workers runtime.
declare module "cloudflare:workers" {
  export abstract class WorkerEntrypoint<Env = unknown> {
    protected readonly env: Env;
    fetch?(request: Request): Response | Promise<Response>;
  }
}
