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
    const server = createMcpToolsServer({ tenant, sessions: dependencies.sessions, observer: dependencies.observer, signal: clientSignal, logError: dependencies.logError });
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const close = () => void server.close().catch(() => {});
    clientSignal.addEventListener("abort", close, { once: true });
    await server.connect(transport);
    const response = await transport.handleRequest(request);
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
