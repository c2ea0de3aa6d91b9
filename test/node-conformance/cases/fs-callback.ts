import type { ConformanceCase } from "../types.js";

export const title = "fs (callback)";
export default [
  { name: "fs-callback: writeFile readFile", code: `import fs from "node:fs";\nfs.writeFile("a", "cb", (e) => fs.readFile("a", "utf8", (e2, d) => console.log(e, e2, d)));` },
  { name: "fs-callback: readFile missing error", code: `import fs from "node:fs";\nfs.readFile("missing", (e, d) => console.log(e.code, e.errno, d));` },
  { name: "fs-callback: stat", code: `import fs from "node:fs";\nfs.writeFile("s", "abc", () => fs.stat("s", (e, st) => console.log(e, st.size, st.isFile())));` },
  { name: "fs-callback: readdir", code: `import fs from "node:fs";\nfs.mkdir("d", () => { fs.writeFileSync("d/x", ""); fs.readdir("d", (e, l) => console.log(e, l)); });` },
  { name: "fs-callback: mkdir recursive", code: `import fs from "node:fs";\nfs.mkdir("a/b/c", { recursive: true }, (e, first) => console.log(e, first));` },
  { name: "fs-callback: unlink missing", code: `import fs from "node:fs";\nfs.unlink("nope", (e) => console.log(e.code, e.syscall));` },
  { name: "fs-callback: exists without callback throws", code: `import fs from "node:fs";\ntry { fs.exists("x") } catch (e) { console.log(e.name, e.code) }` },
  { name: "fs-callback: exists with callback", code: `import fs from "node:fs";\nfs.exists("nope", (v) => console.log(v));` },
  { name: "fs-callback: readFile without callback throws", code: `import fs from "node:fs";\ntry { fs.readFile("x") } catch (e) { console.log(e.code) }` },
  { name: "fs-callback: close without callback", code: `import fs from "node:fs";\nconst fd = fs.openSync("c", "w"); fs.close(fd); console.log("closed without callback");` },
  { name: "fs-callback: open read close", code: `import fs from "node:fs";\nfs.writeFileSync("o", "open"); fs.open("o", "r", (e, fd) => { const b = Buffer.alloc(4); fs.read(fd, b, 0, 4, 0, (e2, n) => { console.log(n, b.toString()); fs.close(fd, (e3) => console.log("closed", e3)); }); });` },
  { name: "fs-callback: appendFile and rename", code: `import fs from "node:fs";\nfs.appendFile("ap", "x", () => fs.rename("ap", "ren", (e) => console.log(e, fs.readFileSync("ren", "utf8"))));` },
  { name: "fs-callback: access", code: `import fs from "node:fs";\nfs.access("missing", (e) => console.log(e.code));` },
  { name: "fs-callback: rm recursive", code: `import fs from "node:fs";\nfs.mkdirSync("r/s", { recursive: true }); fs.rm("r", { recursive: true }, (e) => console.log(e, fs.existsSync("r")));` },
  { name: "fs-callback: createWriteStream then createReadStream", code: `import fs from "node:fs";\nconst w = fs.createWriteStream("ws.txt"); w.write("one "); w.end("two", () => { let s = ""; fs.createReadStream("ws.txt", { encoding: "utf8" }).on("data", (c) => s += c).on("close", () => console.log(s)); });` },
  { name: "fs-callback: createReadStream start end", code: `import fs from "node:fs";\nfs.writeFileSync("se", "0123456789"); let s = ""; fs.createReadStream("se", { start: 2, end: 5 }).on("data", (c) => s += c).on("end", () => console.log(s));` },
  { name: "fs-callback: createReadStream missing emits error", code: `import fs from "node:fs";\nfs.createReadStream("missing").on("error", (e) => console.log("error", e.code));` },
  { name: "fs-callback: write stream events", code: `import fs from "node:fs";\nconst w = fs.createWriteStream("ev"); const seen = []; w.on("open", () => seen.push("open")); w.on("ready", () => seen.push("ready")); w.on("finish", () => seen.push("finish")); w.on("close", () => { seen.push("close"); console.log(seen.join(","), w.bytesWritten); }); w.end("abc");` },
  { name: "fs-callback: readFile with bad encoding throws", code: `import fs from "node:fs";\ntry { fs.readFile("x", "bogus", () => {}) } catch (e) { console.log(e.code) }` },
  { name: "fs-callback: statfs missing path", code: `import fs from "node:fs";\nfs.statfs("missing", (e) => console.log(e?.code));` },
  { name: "fs-callback: copyFile", code: `import fs from "node:fs";\nfs.writeFileSync("c1", "copy"); fs.copyFile("c1", "c2", (e) => console.log(e, fs.readFileSync("c2", "utf8")));` },
  { name: "fs-callback: mkdtemp", code: `import fs from "node:fs";\nfs.mkdtemp("pre-", (e, d) => console.log(e, d.startsWith("pre-")));` },
  { name: "fs-callback: promisify readFile", code: `import fs from "node:fs"; import { promisify } from "node:util";\nfs.writeFileSync("pr", "p"); console.log(await promisify(fs.readFile)("pr", "utf8"));` },
] satisfies ConformanceCase[];
