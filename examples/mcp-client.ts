// An MCP client (the official SDK) talking to `secure-exec mcp` over stdio, as an agent's
// MCP host would: list the tools, run code, keep state in a session.
// Run: npx tsc -p . && node dist/examples/mcp-client.js
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

// In your project: { command: "npx", args: ["secure-exec", "mcp"] }
const cli = fileURLToPath(new URL(import.meta.url.includes("/dist/") ? "../host/cli.js" : "../dist/host/cli.js", import.meta.url));
const client = new Client({ name: "example-agent", version: "1.0.0" });
await client.connect(new StdioClientTransport({ command: process.execPath, args: [cli, "mcp"], stderr: "inherit" }));
try {
  const { tools } = await client.listTools();
  console.log("tools:", tools.map((tool) => tool.name).join(", "));

  const ran = await client.callTool({ name: "run_code", arguments: { code: 'console.log("2 + 2 =", 2 + 2); __return({ ok: true })' } });
  console.log("run_code →", JSON.stringify(ran.structuredContent));

  const session = await client.callTool({ name: "create_session", arguments: {} });
  const sessionId = (session.structuredContent as { sessionId: string }).sessionId;
  await client.callTool({ name: "session_exec", arguments: { sessionId, code: "globalThis.visits = 1" } });
  const again = await client.callTool({ name: "session_exec", arguments: { sessionId, code: "++visits" } });
  console.log("session_exec →", JSON.stringify((again.structuredContent as { value: unknown }).value));
  await client.callTool({ name: "close_session", arguments: { sessionId } });
} finally {
  await client.close();
}
