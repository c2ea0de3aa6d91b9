// Code Mode in a Node agent backend: the model writes one async function that calls the
// agent's tools; SecureExecExecutor runs it in a fresh sandbox (no network, a real
// timeout), while the tools themselves run here on the host.
// Run: npx tsc -p . && node dist/examples/codemode-agent.js
import { codeMcpServer } from "@cloudflare/codemode/mcp";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
// In your project: import { SecureExecExecutor } from "secure-exec/codemode";
import { SecureExecExecutor } from "../runtime/codemode.js";

const orders = [
  { id: 1, customer: "ada", amount: 30 },
  { id: 2, customer: "ada", amount: 12 },
  { id: 3, customer: "bob", amount: 99 },
];

const executor = new SecureExecExecutor({ timeout: 2_000 });
try {
  // 1. The executor on its own: providers are namespaces of host functions.
  const direct = await executor.execute(
    `async () => {
      const list = await shop.listOrders({ customer: "ada" });
      console.log("orders:", list.length);
      return { total: list.reduce((sum, order) => sum + order.amount, 0) };
    }`,
    [{ name: "shop", fns: { listOrders: async (input) => orders.filter((order) => order.customer === (input as { customer: string }).customer) } }],
  );
  console.log("execute →", JSON.stringify(direct));

  const runaway = await executor.execute("async () => { while (true) {} }", []);
  console.log("a busy loop →", runaway.error);

  // 2. Behind Code Mode's MCP wrapper: an MCP server's tools become one `code` tool.
  const upstream = new McpServer({ name: "shop", version: "1.0.0" });
  upstream.registerTool("list-orders", { description: "Orders of one customer", inputSchema: { customer: z.string() } }, async ({ customer }) => ({
    content: [{ type: "text", text: JSON.stringify(orders.filter((order) => order.customer === customer)) }],
  }));
  const codeServer = await codeMcpServer({ server: upstream, executor });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await codeServer.connect(serverSide);
  const client = new Client({ name: "agent", version: "1.0.0" });
  await client.connect(clientSide);
  const answer = await client.callTool({
    name: "code",
    arguments: { code: 'async () => (await codemode.list_orders({ customer: "bob" })).map((order) => order.id)' },
  });
  console.log("code tool →", (answer.content as { text: string }[])[0]!.text);
  await client.close();
} finally {
  await executor.dispose();
}
