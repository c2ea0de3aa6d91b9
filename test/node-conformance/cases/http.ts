import type { ConformanceCase } from "../types.js";

export const title = "http";
export default [
  { name: "http: STATUS_CODES and METHODS", code: `import http from "node:http";\nconsole.log(http.STATUS_CODES[404], http.METHODS.includes("PATCH"), typeof http.Agent);` },
  { name: "http: server listen and close", code: `import http from "node:http";\nconst s = http.createServer(); s.listen(0, () => { console.log(typeof s.address().port, s.listening); s.close(() => console.log("closed")); });` },
  { name: "http: get own server", code: `import http from "node:http";\nconst s = http.createServer((req, res) => { res.setHeader("x-k", "v"); res.end("hi " + req.url); });\ns.listen(0, () => { http.get("http://127.0.0.1:" + s.address().port + "/path", (res) => { let b = ""; res.on("data", (c) => b += c); res.on("end", () => { console.log(res.statusCode, res.headers["x-k"], b); s.close(); }); }); });` },
  { name: "http: request POST to own server", code: `import http from "node:http";\nconst s = http.createServer((req, res) => { let b = ""; req.on("data", (c) => b += c); req.on("end", () => { res.writeHead(201, { "content-type": "text/plain" }); res.end(req.method + ":" + b); }); });\ns.listen(0, () => { const r = http.request({ port: s.address().port, host: "127.0.0.1", method: "POST", path: "/" }, (res) => { let b = ""; res.on("data", (c) => b += c); res.on("end", () => { console.log(res.statusCode, b); s.close(); }); }); r.end("body"); });` },
  { name: "http: fetch own server", code: `import http from "node:http";\nconst s = http.createServer((req, res) => res.end(JSON.stringify({ m: req.method })));\nawait new Promise((r) => s.listen(0, r)); const res = await fetch("http://127.0.0.1:" + s.address().port + "/"); console.log(res.status, await res.json()); s.close();` },
  { name: "http: refused request emits error", code: `import http from "node:http";\nconst r = http.get("http://127.0.0.1:1/", () => console.log("response?")); r.on("error", (e) => console.log("error", e.code));` },
  { name: "http: refused fetch rejects", code: `try { await fetch("http://127.0.0.1:1/") } catch (e) { console.log(e.name, e.message) }` },
  { name: "http: createServer request handler sees headers", code: `import http from "node:http";\nconst s = http.createServer((req, res) => { res.end(req.headers["x-test"] ?? "none"); });\ns.listen(0, () => { http.get({ port: s.address().port, host: "127.0.0.1", headers: { "X-Test": "yes" } }, (res) => { res.setEncoding("utf8"); res.on("data", (d) => { console.log(d); s.close(); }); }); });` },
  { name: "http: validateHeaderName", code: `import http from "node:http";\ntry { http.validateHeaderName("bad header") } catch (e) { console.log(e.code) }` },
  { name: "https: module shape", code: `import https from "node:https";\nconsole.log(typeof https.request, typeof https.get, typeof https.Agent);` },
  { name: "http2: constants", code: `import http2 from "node:http2";\nconsole.log(http2.constants.HTTP2_HEADER_STATUS);` },
] satisfies ConformanceCase[];
