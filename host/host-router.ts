// Routes messages guests send through the HOST binding to the run that sent them.
// A run is known only by an unguessable token handed to its own isolate.
export type HostMessageHandler = (message: { name?: unknown; input?: unknown; kind?: unknown }) => Promise<unknown>;

const handlers = new Map<string, HostMessageHandler>();

export function registerRunToken(token: string, handler: HostMessageHandler): () => void {
  handlers.set(token, handler);
  return () => handlers.delete(token);
}

export async function routeHostRequest(body: string): Promise<string> {
  let message: { token?: unknown; name?: unknown; input?: unknown };
  try {
    message = JSON.parse(body) as typeof message;
  } catch {
    return JSON.stringify({ ok: false, error: "malformed host request" });
  }
  const handler = typeof message.token === "string" ? handlers.get(message.token) : undefined;
  if (!handler) return JSON.stringify({ ok: false, error: "this run has ended; host calls are closed" });
  try {
    return JSON.stringify(await handler(message));
  } catch (error) {
    return JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}
