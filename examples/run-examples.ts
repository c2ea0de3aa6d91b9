// `npm start`: runs the embedded examples through a real sandbox and prints what they did.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { NodeRuntime } from "../runtime/index.js";

const examplesDir = fileURLToPath(new URL(import.meta.url.includes("/dist/") ? "../../examples/" : "./", import.meta.url));

const runtime = await NodeRuntime.create({ env: { WHO: "secure-exec" } });
try {
  const started = performance.now();
  const hello = await runtime.run(readFileSync(`${examplesDir}hello.mjs`, "utf8"));
  console.log(`examples/hello.mjs → exit ${hello.exitCode} in ${(performance.now() - started).toFixed(1)} ms`);
  process.stdout.write(hello.stdout);
  console.log("value:", JSON.stringify(hello.value));

  const runaway = await runtime.exec("while (true) {}", { timeout: 200 });
  console.log(`a runaway guest → exit ${runaway.exitCode}: ${runaway.stderr.trim()}`);

  const after = await runtime.exec('console.log("the runtime keeps serving")');
  process.stdout.write(after.stdout);
} finally {
  await runtime.dispose();
}

// Agent integrations (docs/agents.md): Code Mode with SecureExecExecutor, and an MCP client of `secure-exec mcp`.
await import("./codemode-agent.js");
await import("./mcp-client.js");
