// An AI-agent backend's "code mode": model-written code runs in the sandbox and reaches the
// host only through the tools handed to it. Run: npx tsc -p . && node dist/examples/agent-tools.js
import { NodeRuntime } from "../runtime/index.js";

const orders = [
  { id: 1, customer: "ada", amount: 30 },
  { id: 2, customer: "ada", amount: 12 },
  { id: 3, customer: "bob", amount: 99 },
];

const runtime = await NodeRuntime.create({
  tools: {
    "list-orders": {
      description: "Orders of one customer",
      inputSchema: { type: "object", properties: { customer: { type: "string" } }, required: ["customer"] },
      handler: ({ customer }: { customer: string }) => orders.filter((order) => order.customer === customer),
    },
  },
  limits: { timeoutMs: 5_000 },
});

// What a model might write:
const modelWrittenCode = `
const list = await callHostTool("list-orders", { customer: "ada" });
const total = list.reduce((sum, order) => sum + order.amount, 0);
console.log("orders:", list.length);
__return({ total });
`;

try {
  const result = await runtime.run<{ total: number }>(modelWrittenCode);
  console.log(result.stdout.trim(), "→", result.value, "exit", result.exitCode);
} finally {
  await runtime.dispose();
}
