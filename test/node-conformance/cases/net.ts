import type { ConformanceCase } from "../types.js";

export const title = "dns, net, tls, dgram";
export default [
  { name: "net: isIP family", code: `import net from "node:net";\nconsole.log(net.isIP("1.2.3.4"), net.isIP("::1"), net.isIP("x"), net.isIPv4("10.0.0.1"), net.isIPv6("10.0.0.1"));` },
  { name: "net: BlockList", code: `import { BlockList } from "node:net";\nconst b = new BlockList(); b.addSubnet("10.0.0.0", 8); console.log(b.check("10.1.2.3"), b.check("11.0.0.1"));` },
  { name: "net: connect refused emits error", code: `import net from "node:net";\nconst s = net.connect(1, "127.0.0.1"); s.on("error", (e) => console.log("error", e.code));` },
  { name: "net: createConnection refused with callback not called", code: `import net from "node:net";\nconst s = net.createConnection({ port: 1, host: "localhost" }, () => console.log("connected?")); s.on("error", (e) => console.log(e.code, e.syscall, e.port)); s.on("close", (hadError) => console.log("close", hadError));` },
  { name: "net: server listen and connect", code: `import net from "node:net";\nconst srv = net.createServer((sock) => { sock.end("hi from server"); });\nsrv.listen(0, "127.0.0.1", () => { const c = net.connect(srv.address().port, "127.0.0.1"); let d = ""; c.on("data", (x) => d += x); c.on("end", () => { console.log(d); srv.close(); }); });` },
  { name: "dns: lookup localhost", code: `import dns from "node:dns";\ndns.lookup("localhost", (err, address, family) => console.log(err, typeof address, [4, 6].includes(family)));` },
  { name: "dns: lookup of an IP literal with all", code: `import dns from "node:dns";\ndns.lookup("10.1.2.3", { all: true }, (err, list) => console.log(err, list));` },
  { name: "dns: promises lookup localhost family 4", code: `import { lookup } from "node:dns/promises";\nconsole.log(await lookup("localhost", { family: 4 }));` },
  { name: "dns: promises lookup of invalid name", code: `import dns from "node:dns/promises";\ntry { await dns.lookup("name.invalid") } catch (e) { console.log(e.code) }` },
  { name: "tls: constants", code: `import tls from "node:tls";\nconsole.log(tls.DEFAULT_MIN_VERSION, typeof tls.connect, typeof tls.createSecureContext);` },
  { name: "dgram: socket send", code: `import dgram from "node:dgram";\nconst s = dgram.createSocket({ type: "udp4" }); s.send("x", 9, "127.0.0.1", (err) => { console.log("sent", err); s.close(); });` },
  { name: "dgram: createSocket bind", code: `import dgram from "node:dgram";\nconst s = dgram.createSocket("udp4"); s.on("error", (e) => console.log("error", e.code)); s.bind(0, "127.0.0.1", () => { console.log("bound", typeof s.address().port); s.close(); });` },
] satisfies ConformanceCase[];
