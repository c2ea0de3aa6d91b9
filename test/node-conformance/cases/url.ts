import type { ConformanceCase } from "../types.js";

export const title = "url";
export default [
  { name: "url: WHATWG URL parts", code: `const u = new URL("https://user:pw@example.com:8080/p/a?x=1&y=2#h");\nconsole.log(u.protocol, u.username, u.host, u.port, u.pathname, u.search, u.hash, u.origin);` },
  { name: "url: searchParams", code: `const u = new URL("http://x/?a=1&b=2&a=3"); u.searchParams.append("c", "4 5");\nconsole.log(u.searchParams.getAll("a"), u.searchParams.get("b"), u.href);` },
  { name: "url: relative resolution", code: `console.log(new URL("../c?d", "http://h/a/b/").href);` },
  { name: "url: invalid URL code", code: `try { new URL("not a url") } catch (e) { console.log(e.name, e.code) }` },
  { name: "url: URL.canParse", code: `console.log(URL.canParse("http://x"), URL.canParse("nope"));` },
  { name: "url: fileURLToPath and pathToFileURL", code: `import { fileURLToPath, pathToFileURL } from "node:url";\nconsole.log(fileURLToPath("file:///a/b%20c"), pathToFileURL("/x y").href);` },
  { name: "url: legacy parse", code: `import url from "node:url";\nconst p = url.parse("http://a.com:81/p?q=1#f", true); console.log(p.hostname, p.port, p.pathname, p.query.q, p.hash);` },
  { name: "url: format object", code: `import url from "node:url";\nconsole.log(url.format({ protocol: "https", hostname: "e.com", pathname: "/x", query: { a: 1 } }));` },
  { name: "url: resolve legacy", code: `import url from "node:url";\nconsole.log(url.resolve("http://a/b/c", "../d"), url.resolve("/one/two", "three"));` },
  { name: "url: URLSearchParams iteration and sort", code: `const p = new URLSearchParams({ z: "1", a: "2" }); p.sort();\nconsole.log([...p].join(";"), p.toString(), p.size);` },
  { name: "url: domainToASCII", code: `import { domainToASCII, domainToUnicode } from "node:url";\nconsole.log(domainToASCII("español.com"), domainToUnicode("xn--espaol-zwa.com"));` },
  { name: "url: URL identity", code: `import { pathToFileURL } from "node:url";\nconst u = new URL("http://x/"); class Sub extends URL {}\nconsole.log(u.constructor === URL, Object.getPrototypeOf(u) === URL.prototype, u instanceof URL, pathToFileURL("/a") instanceof URL, new Sub("http://y/") instanceof URL, URL.name, typeof URL.canParse);` },
  { name: "url: util.inspect of URL and URLSearchParams", code: `import { inspect, format } from "node:util";\nconsole.log(inspect(new URLSearchParams("a=1&b=2")), format("%o", new URLSearchParams()), inspect(new URL("http://h/p"), { depth: 0 }));` },
  { name: "url: inspect URL", code: `console.log(new URL("http://a.b/c"));` },
  { name: "url: urlToHttpOptions", code: `import { urlToHttpOptions } from "node:url";\nconst o = urlToHttpOptions(new URL("http://a:b@h:1/p?q")); console.log(o.hostname, o.port, o.path, o.auth);` },
  { name: "url: URL with unicode and percent-encoding", code: `const u = new URL("https://example.com/a b/ü?q=ä&x=1 2"); console.log(u.pathname, u.search, u.href);` },
  { name: "url: URL setters", code: `const u = new URL("http://a.com/x"); u.port = "8080"; u.pathname = "/y z"; u.hash = "h"; u.searchParams.set("k", "v w"); console.log(u.href, u.host);` },
  { name: "url: node:url URL is the global", code: `import { URL as U, URLSearchParams as P } from "node:url";\nconsole.log(U === URL, P === URLSearchParams);` },
  { name: "url: legacy parse of relative and auth", code: `import url from "node:url";\nconst p = url.parse("//user:pw@host/p", false, true); console.log(p.auth, p.host, p.pathname, url.parse("/a?b=1").query);` },
] satisfies ConformanceCase[];
