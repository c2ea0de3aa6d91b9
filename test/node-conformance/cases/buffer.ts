import type { ConformanceCase } from "../types.js";

export const title = "Buffer";
export default [
  { name: "buffer: from string encodings", code: `const b = Buffer.from("héllo");\nconsole.log(b.length, b.toString("hex"), b.toString("base64"), b.toString("latin1"));` },
  { name: "buffer: base64url and hex decoding", code: `console.log(Buffer.from("aGk_", "base64url").toString(), Buffer.from("48656c6c6f", "hex").toString());` },
  { name: "buffer: alloc fill and compare", code: `const a = Buffer.alloc(4, 1); const b = Buffer.alloc(4, 2);\nconsole.log(Buffer.compare(a, b), a.equals(Buffer.from([1,1,1,1])), a.fill("ab").toString());` },
  { name: "buffer: concat and slice", code: `const c = Buffer.concat([Buffer.from("ab"), Buffer.from("cd")]);\nconsole.log(c.toString(), c.subarray(1, 3).toString(), c.slice(-1).toString());` },
  { name: "buffer: read and write integers", code: `const b = Buffer.alloc(8);\nb.writeUInt32BE(0xdeadbeef, 0); b.writeInt16LE(-2, 4);\nconsole.log(b.readUInt32BE(0).toString(16), b.readInt16LE(4), b.readUInt8(0));` },
  { name: "buffer: bigint and float", code: `const b = Buffer.alloc(16);\nb.writeBigInt64LE(-5n); b.writeDoubleBE(1.5, 8);\nconsole.log(b.readBigInt64LE(), b.readDoubleBE(8));` },
  { name: "buffer: inspect", code: `console.log(Buffer.from("abc"));\nconsole.log([Buffer.alloc(2)]);` },
  { name: "buffer: toJSON", code: `console.log(JSON.stringify(Buffer.from([1, 2, 3])));` },
  { name: "buffer: indexOf includes", code: `const b = Buffer.from("hello world");\nconsole.log(b.indexOf("o"), b.lastIndexOf("o"), b.includes("wor"), b.indexOf(Buffer.from("ld")));` },
  { name: "buffer: byteLength", code: `console.log(Buffer.byteLength("€"), Buffer.byteLength("aGk=", "base64"), Buffer.isBuffer(new Uint8Array(1)), Buffer.isEncoding("utf-8"));` },
  { name: "buffer: out of range read has code", code: `try { Buffer.alloc(2).readUInt32LE(0) } catch (e) { console.log(e.name, e.code) }` },
  { name: "buffer: swap16 and reverse", code: `const b = Buffer.from([1, 2, 3, 4]);\nconsole.log(b.swap16(), Buffer.from([1,2,3]).reverse());` },
  { name: "buffer: from ArrayBuffer shares memory", code: `const ab = new ArrayBuffer(4); const b = Buffer.from(ab, 1, 2); b[0] = 9;\nconsole.log(new Uint8Array(ab)[1], b.byteOffset, b.length);` },
  { name: "buffer: node:buffer exports", code: `import { Buffer as B, constants, kMaxLength, atob, btoa, Blob } from "node:buffer";\nconsole.log(B === Buffer, typeof constants.MAX_LENGTH, kMaxLength > 0, atob(btoa("hi")), typeof Blob);` },
  { name: "buffer: write returns bytes written", code: `const b = Buffer.alloc(5);\nconsole.log(b.write("héllo"), b.toString());` },
  { name: "buffer: invalid encoding throws", code: `try { Buffer.from("x", "nope") } catch (e) { console.log(e.name, e.code) }` },
  { name: "buffer: toString ranges and utf16le", code: `const b = Buffer.from("hello world"); console.log(b.toString("utf8", 6), b.toString("utf8", 0, 5), Buffer.from("hi", "utf16le").length, Buffer.from("aGVsbG8", "base64").toString());` },
  { name: "buffer: compare and sort buffers", code: `const list = [Buffer.from("b"), Buffer.from("a"), Buffer.from("c")].sort(Buffer.compare); console.log(list.map(String).join(""), Buffer.from("a").compare(Buffer.from("b")));` },
  { name: "buffer: copy and fill ranges", code: `const a = Buffer.from("abcdef"); const b = Buffer.alloc(4, "."); a.copy(b, 1, 2, 4); console.log(b.toString(), a.fill("z", 4).toString());` },
  { name: "buffer: Blob and File from buffer", code: `import { Blob, File } from "node:buffer";\nconst f = new File([Buffer.from("data")], "a.txt", { type: "text/plain" }); console.log(f.name, f.size, f.type, await new Blob([f]).text());` },
] satisfies ConformanceCase[];
