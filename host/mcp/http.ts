// `/mcp` on the HTTP service: MCP's Streamable HTTP transport in stateless mode. Each POST
// gets a fresh McpServer for the request's tenant (already authenticated by the app's bearer
// middleware), so nothing is kept per MCP connection; resident sessions live in the
// service's SessionRegistry and are found again by their id. GET (a standalone event
// stream) and DELETE have nothing to serve without MCP sessions: 405.
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { HttpObserver } from "../service/http-app.js";
import type { SessionRegistry } from "../service/sessions.js";
import type { Tenant } from "../service/tenancy.js";
import { createMcpToolsServer } from "./tools.js";
import { envSizeProblem } from "../api/options-core.js";

export interface McpHttpDependencies {
  sessions: SessionRegistry;
  observer?: Pick<HttpObserver, "observeRun" | "observeRejection" | "observeSessionOpen">;
  logError?: (message: string, error: unknown) => void;
}

export type McpHttpHandler = (tenant: Tenant, request: Request, clientSignal: AbortSignal) => Promise<Response>;

export function createMcpHttpHandler(dependencies: McpHttpDependencies): McpHttpHandler {
  return async (tenant, request, clientSignal) => {
    if (request.method !== "POST") {
      return Response.json(
        { jsonrpc: "2.0", error: { code: -32000, message: `${request.method} is not allowed on /mcp: this server is stateless; POST JSON-RPC messages` }, id: null },
        { status: 405, headers: { Allow: "POST" } },
      );
    }
    // The body is parsed here so that env records are sized before the SDK's schema, which
    // costs the event loop ~1.5 µs per entry (tens of thousands fit the body cap).
    let message: unknown;
    try {
      message = JSON.parse(await request.text());
    } catch {
      return Response.json({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error: the body is not JSON" }, id: null }, { status: 400 });
    }
    const refused = oversizedEnvReplies(message);
    if (refused) return Response.json(refused.length === 1 ? refused[0] : refused);
    const server = createMcpToolsServer({ tenant, sessions: dependencies.sessions, observer: dependencies.observer, signal: clientSignal, logError: dependencies.logError });
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const close = () => void server.close().catch(() => {});
    clientSignal.addEventListener("abort", close, { once: true });
    await server.connect(transport);
    const response = await transport.handleRequest(request, { parsedBody: message });
    if (!response.body) {
      clientSignal.removeEventListener("abort", close);
      close();
      return response;
    }
    // Close the per-request server once its response stream has been read to the end.
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          clientSignal.removeEventListener("abort", close);
          close();
        } else controller.enqueue(value);
      },
      cancel(reason) {
        void reader.cancel(reason);
        close();
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** JSON-RPC errors for a body whose tool calls carry an env over the env caps, or undefined. */
function oversizedEnvReplies(body: unknown): unknown[] | undefined {
  const messages = Array.isArray(body) ? body : [body];
  let oversized = false;
  const replies = messages.flatMap((message: unknown) => {
    if (typeof message !== "object" || message === null) return [];
    const { id, method, params } = message as { id?: unknown; method?: unknown; params?: { name?: unknown; arguments?: { env?: unknown } } };
    const problem = method === "tools/call" ? envSizeProblem(params?.arguments?.env) : undefined;
    if (problem) oversized = true;
    if (id === undefined) return [];
    const text = problem ? `Invalid arguments for tool ${String(params?.name)}: "env" ${problem}` : "not run: another message of this request was refused";
    return [{ jsonrpc: "2.0", id, error: { code: -32602, message: text } }];
  });
  return oversized ? replies : undefined;
}
