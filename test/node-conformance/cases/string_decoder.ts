import type { ConformanceCase } from "../types.js";

export const title = "string_decoder";
export default [
  { name: "string_decoder: split multibyte", code: `import { StringDecoder } from "node:string_decoder";\nconst d = new StringDecoder("utf8"); const e = Buffer.from("€");\nconsole.log(JSON.stringify(d.write(e.subarray(0, 1))), d.write(e.subarray(1)), JSON.stringify(d.end()));` },
  { name: "string_decoder: base64", code: `import { StringDecoder } from "node:string_decoder";\nconst d = new StringDecoder("base64"); console.log(d.write(Buffer.from("ab")) + d.end(Buffer.from("c")));` },
  { name: "string_decoder: hex and utf16le", code: `import { StringDecoder } from "node:string_decoder";\nconsole.log(new StringDecoder("hex").write(Buffer.from([255, 1])), new StringDecoder("utf16le").write(Buffer.from("hi", "utf16le")));` },
  { name: "string_decoder: incomplete at end", code: `import { StringDecoder } from "node:string_decoder";\nconst d = new StringDecoder("utf8"); d.write(Buffer.from([0xe2, 0x82])); console.log(JSON.stringify(d.end()));` },
] satisfies ConformanceCase[];
