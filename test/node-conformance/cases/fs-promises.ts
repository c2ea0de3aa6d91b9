import type { ConformanceCase } from "../types.js";

export const title = "fs (promises)";
export default [
  { name: "fs-promises: writeFile readFile", code: `import fs from "node:fs/promises";\nawait fs.writeFile("a", "prom"); console.log(await fs.readFile("a", "utf8"));` },
  { name: "fs-promises: fs.promises is fs/promises", code: `import fs from "node:fs"; import fsp from "node:fs/promises";\nconsole.log(fs.promises.readFile === fsp.readFile);` },
  { name: "fs-promises: readFile missing rejects", code: `import { readFile } from "node:fs/promises";\ntry { await readFile("missing") } catch (e) { console.log(e.code, e.syscall) }` },
  { name: "fs-promises: mkdir readdir rm", code: `import fs from "node:fs/promises";\nawait fs.mkdir("d/e", { recursive: true }); await fs.writeFile("d/f", ""); console.log((await fs.readdir("d")).sort()); await fs.rm("d", { recursive: true }); console.log(await fs.access("d").catch((e) => e.code));` },
  { name: "fs-promises: stat", code: `import { stat, writeFile } from "node:fs/promises";\nawait writeFile("s", "1234"); const s = await stat("s"); console.log(s.size, s.isFile());` },
  { name: "fs-promises: FileHandle read write", code: `import { open } from "node:fs/promises";\nconst fh = await open("fh", "w+"); await fh.write("handle"); const { bytesRead, buffer } = await fh.read(Buffer.alloc(6), 0, 6, 0); console.log(bytesRead, buffer.toString(), typeof fh.fd); await fh.close();` },
  { name: "fs-promises: FileHandle readFile writeFile", code: `import { open } from "node:fs/promises";\nconst fh = await open("fw", "w+"); await fh.writeFile("whole"); await fh.close(); const r = await open("fw"); console.log(await r.readFile("utf8")); await r.close();` },
  { name: "fs-promises: FileHandle close event", code: `import { open } from "node:fs/promises";\nconst fh = await open("ce", "w"); fh.on("close", () => console.log("close event")); await fh.close(); console.log("after close");` },
  { name: "fs-promises: FileHandle writeFile of a stream", code: `import { open } from "node:fs/promises"; import { Readable } from "node:stream";\nconst fh = await open("st", "w"); await fh.writeFile(Readable.from(["a", "b"])); await fh.close(); const r = await open("st"); console.log(await r.readFile("utf8")); await r.close();` },
  { name: "fs-promises: writeFile of async iterable", code: `import { writeFile, readFile } from "node:fs/promises";\nasync function* gen() { yield "x"; yield "y"; } await writeFile("ai", gen()); console.log(await readFile("ai", "utf8"));` },
  { name: "fs-promises: FileHandle stat and truncate", code: `import { open } from "node:fs/promises";\nconst fh = await open("tt", "w+"); await fh.write("abcdef"); await fh.truncate(2); console.log((await fh.stat()).size); await fh.close();` },
  { name: "fs-promises: FileHandle readLines", code: `import { open, writeFile } from "node:fs/promises";\nawait writeFile("rl", "a\\nb\\nc\\n"); const fh = await open("rl"); const lines = []; for await (const l of fh.readLines()) lines.push(l); console.log(lines);` },
  { name: "fs-promises: FileHandle createReadStream", code: `import { open, writeFile } from "node:fs/promises";\nawait writeFile("rs", "stream me"); const fh = await open("rs"); let s = ""; for await (const c of fh.createReadStream({ encoding: "utf8" })) s += c; console.log(s);` },
  { name: "fs-promises: appendFile copyFile rename unlink", code: `import fs from "node:fs/promises";\nawait fs.appendFile("x", "1"); await fs.appendFile("x", "2"); await fs.copyFile("x", "y"); await fs.rename("y", "z"); await fs.unlink("x"); console.log(await fs.readFile("z", "utf8"));` },
  { name: "fs-promises: mkdtemp and realpath", code: `import fs from "node:fs/promises";\nconst d = await fs.mkdtemp("mt-"); console.log((await fs.realpath(d)).endsWith(d));` },
  { name: "fs-promises: opendir async iterate", code: `import fs from "node:fs/promises";\nawait fs.mkdir("od"); await fs.writeFile("od/a", ""); await fs.writeFile("od/b", ""); const names = []; for await (const e of await fs.opendir("od")) names.push(e.name); console.log(names.sort());` },
  { name: "fs-promises: readFile bad encoding rejects", code: `import fs from "node:fs/promises";\nawait fs.writeFile("be", "x"); try { await fs.readFile("be", "utf-9") } catch (e) { console.log(e.code) }` },
  { name: "fs-promises: statfs missing path rejects", code: `import fs from "node:fs/promises";\ntry { await fs.statfs("missing"); console.log("no error") } catch (e) { console.log(e.code) }` },
  { name: "fs-promises: cp recursive", code: `import fs from "node:fs/promises";\nawait fs.mkdir("a/b", { recursive: true }); await fs.writeFile("a/b/c", "deep"); await fs.cp("a", "z", { recursive: true }); console.log(await fs.readFile("z/b/c", "utf8"));` },
  { name: "fs-promises: constants export", code: `import { constants } from "node:fs/promises";\nconsole.log(constants.R_OK, constants.COPYFILE_EXCL);` },
  { name: "fs-promises: open missing with r rejects", code: `import { open } from "node:fs/promises";\ntry { await open("none", "r") } catch (e) { console.log(e.code) }` },
] satisfies ConformanceCase[];
