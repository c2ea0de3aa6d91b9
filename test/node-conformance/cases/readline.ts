import type { ConformanceCase } from "../types.js";

export const title = "readline";
export default [
  { name: "readline: line events from stdin", code: `import readline from "node:readline";\nconst rl = readline.createInterface({ input: process.stdin });\nconst lines = []; rl.on("line", (l) => lines.push(l)); rl.on("close", () => console.log(lines));`, stdin: "one\ntwo\nthree\n" },
  { name: "readline: last line without newline", code: `import { createInterface } from "node:readline";\nconst rl = createInterface({ input: process.stdin, crlfDelay: Infinity }); rl.on("line", (l) => console.log(JSON.stringify(l)));`, stdin: "a\r\nb" },
  { name: "readline: async iterator", code: `import readline from "node:readline";\nlet n = 0; for await (const line of readline.createInterface({ input: process.stdin })) n += Number(line);\nconsole.log(n);`, stdin: "1\n2\n3\n" },
  { name: "readline: question", code: `import readline from "node:readline";\nconst rl = readline.createInterface({ input: process.stdin, output: process.stdout });\nrl.question("name? ", (a) => { console.log("hello " + a); rl.close(); });`, stdin: "Ann\n" },
  { name: "readline/promises: question", code: `import readline from "node:readline/promises";\nconst rl = readline.createInterface({ input: process.stdin, output: process.stdout });\nconst a = await rl.question("age? "); console.log(Number(a) + 1); rl.close();`, stdin: "41\n" },
  { name: "readline: over a Readable of strings", code: `import { createInterface } from "node:readline"; import { Readable } from "node:stream";\nconst rl = createInterface({ input: Readable.from(["x\\ny", "\\nz\\n"]) }); const out = []; for await (const l of rl) out.push(l); console.log(out.join("|"));` },
  { name: "readline: close event without input", code: `import { createInterface } from "node:readline";\nconst rl = createInterface({ input: process.stdin }); rl.on("close", () => console.log("closed"));`, stdin: "" },
  { name: "readline: pause and resume counts", code: `import { createInterface } from "node:readline";\nconst rl = createInterface({ input: process.stdin }); let c = 0; rl.on("line", () => c++); rl.on("close", () => console.log(c));`, stdin: "a\nb\nc\nd\n" },
  { name: "readline: events.once line", code: `import { createInterface } from "node:readline"; import { once } from "node:events";\nconst rl = createInterface({ input: process.stdin }); const [first] = await once(rl, "line"); console.log(first); rl.close();`, stdin: "first\nsecond\n" },
  { name: "readline: exports", code: `import readline from "node:readline";\nconsole.log(typeof readline.clearLine, typeof readline.cursorTo, typeof readline.emitKeypressEvents, typeof readline.Interface);` },
] satisfies ConformanceCase[];
