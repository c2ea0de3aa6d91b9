import type { ConformanceCase } from "../types.js";

export const title = "fetch and web globals";
export default [
  { name: "web: globals exist", code: `console.log(["fetch", "Request", "Response", "Headers", "FormData", "Blob", "File", "URL", "URLSearchParams", "AbortController", "TextEncoder", "TextDecoder", "structuredClone", "atob", "btoa", "crypto", "performance", "WebSocket", "BroadcastChannel", "MessageChannel", "EventTarget", "DOMException", "CompressionStream"].map((n) => n + ":" + typeof globalThis[n]).join(" "));`, node22: { stdout: "fetch:function Request:function Response:function Headers:function FormData:function Blob:function File:function URL:function URLSearchParams:function AbortController:function TextEncoder:function TextDecoder:function structuredClone:function atob:function btoa:function crypto:object performance:object WebSocket:function BroadcastChannel:function MessageChannel:function EventTarget:function DOMException:function CompressionStream:function\n", reason: "WebSocket is a global from Node 22" } },
  { name: "web: Response json and text", code: `const r = new Response(JSON.stringify({ a: 1 }), { status: 201, headers: { "content-type": "application/json" } });\nconsole.log(r.status, r.ok, r.headers.get("content-type"), await r.json());` },
  { name: "web: Request clone and method", code: `const r = new Request("http://x/y", { method: "POST", body: "b" }); const c = r.clone(); console.log(r.method, r.url, await c.text());` },
  { name: "web: Headers iteration", code: `const h = new Headers({ B: "2", a: "1" }); h.append("a", "3"); console.log([...h], h.get("a"));` },
  { name: "web: Blob text and slice", code: `const b = new Blob(["hello ", "world"], { type: "text/plain" }); console.log(b.size, b.type, await b.slice(6).text());` },
  { name: "web: FormData", code: `const f = new FormData(); f.append("a", "1"); f.append("a", "2"); console.log(f.getAll("a"), f.has("b"));` },
  { name: "web: structuredClone", code: `const o = { d: new Date(0), m: new Map([[1, 2]]), s: new Set([3]), r: /x/g }; const c = structuredClone(o); console.log(c.d.getTime(), c.m.get(1), c.s.has(3), c.r.flags, c !== o);` },
  { name: "web: structuredClone of function throws", code: `try { structuredClone(() => {}) } catch (e) { console.log(e.name) }` },
  { name: "web: AbortSignal.timeout", code: `const keepAlive = setTimeout(() => {}, 1000); const s = AbortSignal.timeout(5); await new Promise((r) => s.addEventListener("abort", r)); console.log(s.aborted, s.reason.name); clearTimeout(keepAlive);`, note: "AbortSignal.timeout's timer does not keep a run alive" },
  { name: "web: AbortSignal.any", code: `const a = new AbortController(); const s = AbortSignal.any([a.signal]); a.abort("why"); console.log(s.aborted, s.reason);` },
  { name: "web: TextDecoder fatal", code: `try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])) } catch (e) { console.log(e.name) }` },
  { name: "web: atob btoa", code: `console.log(btoa("hi there"), atob("aGkgdGhlcmU="));` },
  { name: "web: MessageChannel", code: `const { port1, port2 } = new MessageChannel(); port2.onmessage = (e) => { console.log("got", e.data); port1.close(); port2.close(); }; port1.postMessage({ x: 1 });` },
  { name: "web: BroadcastChannel", code: `const a = new BroadcastChannel("c"), b = new BroadcastChannel("c"); b.onmessage = (e) => { console.log(e.data); a.close(); b.close(); }; a.postMessage("bc");` },
  { name: "web: BroadcastChannel errors and unref", code: `const c = new BroadcastChannel("u"); c.unref(); console.log(c.name, c.onmessage);
try { new BroadcastChannel() } catch (e) { console.log(e.name, e.code) }
const d = new BroadcastChannel("v"); d.close(); try { d.postMessage(1) } catch (e) { console.log(e.name, e.message) }
console.log(d, new BroadcastChannel("w").unref() instanceof EventTarget);` },
  { name: "web: BroadcastChannel does not echo to its sender", code: `const a = new BroadcastChannel("e"), b = new BroadcastChannel("e"), c = new BroadcastChannel("e");
a.onmessage = () => console.log("echo"); b.onmessage = (e) => console.log("b", e.data); c.addEventListener("message", (e) => { console.log("c", e.data.n, e.target === c); a.close(); b.close(); c.close(); });
a.postMessage({ n: 1 });` },
  { name: "web: DOMException", code: `const e = new DOMException("m", "AbortError"); console.log(e.name, e.code, e.message, e instanceof Error);` },
  { name: "web: CompressionStream round trip", code: `const s = new Blob(["zip me"]).stream().pipeThrough(new CompressionStream("gzip")).pipeThrough(new DecompressionStream("gzip")); console.log(await new Response(s).text());` },
  { name: "web: performance.now and timeOrigin", code: `console.log(typeof performance.now(), performance.now() >= 0, typeof performance.timeOrigin);` },
  { name: "web: navigator", code: `console.log(typeof globalThis.navigator, typeof globalThis.navigator?.hardwareConcurrency);`, node22: { stdout: "object number\n", reason: "navigator is a global from Node 21" } },
  { name: "web: Response.json static", code: `const r = Response.json({ k: 1 }); console.log(r.headers.get("content-type"), await r.text());` },
  { name: "web: fetch of data URL", code: `const r = await fetch("data:text/plain,hello"); console.log(r.status, await r.text());` },
  { name: "web: assigning globalThis.Response keeps output", code: `globalThis.Response = class Response {}; console.log("still printing");` },
] satisfies ConformanceCase[];
