// Routes messages guests send through the HOST binding to the run that sent them.
// A run is known only by an unguessable token handed to its own isolate.
/** A message a guest sent through the HOST binding (every field is the guest's to set). */
export type GuestHostMessage = { name?: unknown; input?: unknown; kind?: unknown; [key: string]: unknown };
export type HostMessageHandler = (message: GuestHostMessage) => Promise<unknown>;

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

let endpoint: Promise<string> | undefined;

/** Largest message a guest may send the host (tool input is capped lower, at 1 MiB). */
const MAX_HOST_MESSAGE_BYTES = 8 * 1024 * 1024;

/**
 * A keep-alive HTTP endpoint on loopback that workerd reaches as an external service:
 * about half the round trip of a Miniflare function binding. Unguessable run tokens, not
 * the socket, are what authorise a call.
 */
export function hostEndpointAddress(): Promise<string> {
  endpoint ??= (async () => {
    const { createServer } = await import("node:http");
    const { handleEgress } = await import("../capabilities/network/egress.js");
    // Proxy-style requests from workerd carry no Host header.
    const server = createServer({ requireHostHeader: false }, (request, response) => {
      // Proxy-style requests (absolute URL) are guest fetches; the rest are host calls.
      if (/^https?:\/\//i.test(request.url ?? "")) {
        void handleEgress(request, response);
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      let refused = false;
      request.on("data", (chunk: Buffer) => {
        if (refused) return;
        received += chunk.byteLength;
        // A guest can reach this endpoint with any body: never buffer without bound.
        if (received > MAX_HOST_MESSAGE_BYTES) {
          refused = true;
          chunks.length = 0;
          response.writeHead(413, { "content-type": "application/json", connection: "close" });
          response.end(JSON.stringify({ ok: false, code: "ERR_TOOL_LIMIT", error: `host message exceeds ${MAX_HOST_MESSAGE_BYTES} bytes` }));
          request.destroy();
          return;
        }
        chunks.push(chunk);
      });
      request.on("end", () => {
        if (refused) return;
        void routeHostRequest(Buffer.concat(chunks).toString("utf8")).then((reply) => {
          response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(reply) });
          response.end(reply);
        });
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    server.unref();
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("secure-exec: host endpoint has no port");
    return `127.0.0.1:${address.port}`;
  })();
  return endpoint;
}
