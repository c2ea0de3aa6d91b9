import type { ConformanceCase } from "../types.js";

export const title = "child_process";
export default [
  { name: "child_process: execFile node -e", code: `import { execFile } from "node:child_process";\nexecFile("node", ["-e", "console.log(6 * 7)"], (err, stdout, stderr) => console.log(err, JSON.stringify(stdout), JSON.stringify(stderr)));` },
  { name: "child_process: spawn node and collect", code: `import { spawn } from "node:child_process";\nconst c = spawn("node", ["-e", "process.stdout.write('out'); process.stderr.write('err'); process.exit(3)"]);\nlet o = "", e = ""; c.stdout.on("data", (d) => o += d); c.stderr.on("data", (d) => e += d); c.on("close", (code) => console.log(o, e, code));` },
  { name: "child_process: spawnSync node", code: `import { spawnSync } from "node:child_process";\nconst r = spawnSync("node", ["-e", "console.log('sync')"], { encoding: "utf8" }); console.log(r.status, r.stdout);` },
  { name: "child_process: execSync node", code: `import { execSync } from "node:child_process";\nconsole.log(execSync("node -e \\"console.log(1+2)\\"").toString().trim());` },
  { name: "child_process: stdin to child", code: `import { spawn } from "node:child_process";\nconst c = spawn("node", ["-e", "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(s.toUpperCase()))"]);\nc.stdout.on("data", (d) => process.stdout.write(d)); c.stdin.end("piped");` },
  { name: "child_process: stdio inherit forwards output", code: `import { spawn } from "node:child_process";\nconst c = spawn("node", ["-e", "console.log('inherited')"], { stdio: "inherit" }); c.on("exit", (code) => console.log("exit", code));` },
  { name: "child_process: shell true with node -e", code: `import { spawn } from "node:child_process";\nconst c = spawn("node -e \\"console.log('via shell')\\"", { shell: true }); c.stdout.on("data", (d) => process.stdout.write(d)); c.on("close", (code) => console.log("code", code));` },
  { name: "child_process: missing command ENOENT", code: `import { spawn } from "node:child_process";\nspawn("definitely-not-a-command-xyz").on("error", (e) => console.log(e.code, e.syscall));` },
  { name: "child_process: exec promisified", code: `import { exec } from "node:child_process"; import { promisify } from "node:util";\nconst { stdout } = await promisify(exec)("node -e \\"console.log('p')\\""); console.log(stdout.trim());` },
  { name: "child_process: nonzero exit rejects promisified execFile", code: `import { execFile } from "node:child_process"; import { promisify } from "node:util";\ntry { await promisify(execFile)("node", ["-e", "process.exit(2)"]) } catch (e) { console.log(e.code) }` },
  { name: "child_process: env passed to child", code: `import { execFileSync } from "node:child_process";\nconsole.log(execFileSync("node", ["-e", "console.log(process.env.CHILD_VAR)"], { env: { ...process.env, CHILD_VAR: "yes" }, encoding: "utf8" }).trim());` },
  { name: "child_process: exit event with code", code: `import { spawn } from "node:child_process";\nspawn("node", ["-e", "process.exit(4)"]).on("exit", (code, signal) => console.log(code, signal));` },
  { name: "child_process: stdio inherit child has no streams", code: `import { spawn } from "node:child_process";\nconst c = spawn("node", ["-e", "console.error('to stderr')"], { stdio: "inherit" }); console.log(c.stdout, c.stderr, c.stdin); c.on("close", (code) => console.log("closed", code));` },
  { name: "child_process: stdio array pipe inherit ignore", code: `import { spawn } from "node:child_process";\nconst c = spawn("node", ["-e", "console.log('o'); console.error('e')"], { stdio: ["ignore", "pipe", "inherit"] }); let o = ""; c.stdout.on("data", (d) => o += d); c.on("close", () => console.log(JSON.stringify(o), c.stdin));` },
  { name: "child_process: exec with quoted arguments", code: `import { exec } from "node:child_process";\nexec("node -e 'console.log(process.argv.slice(1).join(String.fromCharCode(124)))' 'a b' c", (e, out) => console.log(e, out.trim()));` },
  { name: "child_process: node -p has no script in argv", code: `import { execFile } from "node:child_process";
execFile("node", ["-p", "process.argv.slice(1).join(',')", "x", "y"], (e, out) => console.log(e, out.trim()));` },
  { name: "child_process: fork is refused or runs", code: `import { fork } from "node:child_process";\nconsole.log(typeof fork);` },
] satisfies ConformanceCase[];
