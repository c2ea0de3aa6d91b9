// A guest HTTP server driven from the host: start it, wait for it to listen, send requests,
// stop it. No host port is opened. Run: npx tsc -p . && node dist/examples/dev-server.js
import { NodeRuntime } from "../runtime/index.js";

const runtime = await NodeRuntime.create();
try {
  const server = await runtime.spawn(
    `
    import http from "node:http";
    let hits = 0;
    http.createServer((req, res) => {
      hits += 1;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ path: req.url, method: req.method, hits }));
    }).listen(3000, () => console.log("dev server listening on 3000"));
    `,
    { onStdout: (chunk) => process.stdout.write(`[guest] ${new TextDecoder().decode(chunk)}`) },
  );
  await runtime.waitForListener({ port: 3000 }, { timeoutMs: 10_000 });
  for (const path of ["/", "/users/1", "/health"]) {
    const response = await runtime.fetch(3000, { path });
    console.log(`GET ${path} → ${response.status} ${response.body}`);
  }
  server.kill();
  console.log(`server stopped with exit code ${await server.wait()}`);
} finally {
  await runtime.dispose();
}
