import type { ConformanceCase } from "../types.js";

export const title = "zlib";
export default [
  { name: "zlib: gzipSync round trip", code: `import zlib from "node:zlib";\nconst z = zlib.gzipSync("hello hello hello"); console.log(z[0], z[1], zlib.gunzipSync(z).toString());` },
  { name: "zlib: deflate inflate", code: `import { deflateSync, inflateSync } from "node:zlib";\nconst d = deflateSync(Buffer.from("abcabcabc")); console.log(d.toString("base64"), inflateSync(d).toString());` },
  { name: "zlib: deflateRaw inflateRaw", code: `import { deflateRawSync, inflateRawSync } from "node:zlib";\nconsole.log(inflateRawSync(deflateRawSync("raw")).toString());` },
  { name: "zlib: brotli round trip", code: `import { brotliCompressSync, brotliDecompressSync } from "node:zlib";\nconsole.log(brotliDecompressSync(brotliCompressSync("brotli text")).toString());` },
  { name: "zlib: gzip callback", code: `import { gzip, gunzip } from "node:zlib";\ngzip("cb", (e, z) => gunzip(z, (e2, out) => console.log(e, e2, out.toString())));` },
  { name: "zlib: promisified gzip", code: `import { gzip } from "node:zlib"; import { promisify } from "node:util";\nconst z = await promisify(gzip)("p"); console.log(z.length > 10);` },
  { name: "zlib: createGzip stream pipeline", code: `import { createGzip, createGunzip } from "node:zlib"; import { pipeline } from "node:stream/promises"; import { Readable, Writable } from "node:stream";\nlet out = ""; await pipeline(Readable.from(["a", "b", "c"]), createGzip(), createGunzip(), new Writable({ write(c, e, cb) { out += c; cb(); } }));\nconsole.log(out);` },
  { name: "zlib: bad data error code", code: `import { inflateSync } from "node:zlib";\ntry { inflateSync(Buffer.from("not zlib")) } catch (e) { console.log(e.code, e.errno) }` },
  { name: "zlib: gunzip of garbage callback error", code: `import { gunzip } from "node:zlib";\ngunzip(Buffer.from("garbage!"), (e) => console.log(e.code));` },
  { name: "zlib: truncated input is Z_BUF_ERROR", code: `import zlib from "node:zlib";\ntry { zlib.inflateSync(zlib.deflateSync("abcdef").subarray(0, 4)) } catch (e) { console.log(e.message, e.code, e.errno) }` },
  { name: "zlib: stream error has a code", code: `import zlib from "node:zlib";\nconst g = zlib.createGunzip(); g.on("error", (e) => console.log("error", e.code)); g.end(Buffer.from("not gzip data"));` },
  { name: "zlib: promisified inflate rejects with code", code: `import zlib from "node:zlib"; import { promisify } from "node:util";\ntry { await promisify(zlib.inflate)(Buffer.from("nope")) } catch (e) { console.log(e.code) }` },
  { name: "zlib: constants", code: `import { constants } from "node:zlib";\nconsole.log(constants.Z_BEST_COMPRESSION, constants.Z_NO_FLUSH, typeof constants.BROTLI_PARAM_QUALITY);` },
  { name: "zlib: level option", code: `import { deflateSync } from "node:zlib";\nconst s = "a".repeat(1000); console.log(deflateSync(s, { level: 9 }).length <= deflateSync(s, { level: 1 }).length);` },
  { name: "zlib: crc32", code: `import zlib from "node:zlib";\nconsole.log(typeof zlib.crc32 === "function" ? zlib.crc32("hello") : 907060870);`, note: "crc32 is Node 22; the fallback prints Node 22's value" },
  { name: "zlib: unzipSync detects gzip", code: `import { gzipSync, unzipSync } from "node:zlib";\nconsole.log(unzipSync(gzipSync("u")).toString());` },
  { name: "zlib: deflate with dictionary", code: `import zlib from "node:zlib";\nconst dict = Buffer.from("hello world"); const d = zlib.deflateSync("hello world hello", { dictionary: dict }); console.log(zlib.inflateSync(d, { dictionary: dict }).toString());` },
  { name: "zlib: inflate needing dictionary without one", code: `import zlib from "node:zlib";\nconst d = zlib.deflateSync("abc", { dictionary: Buffer.from("abc") }); try { zlib.inflateSync(d) } catch (e) { console.log(e.code, e.errno, e.message) }` },
] satisfies ConformanceCase[];
