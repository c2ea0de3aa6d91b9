import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await NodeRuntime.create({
    env: { FROM_RUNTIME: "yes" },
    tools: {
      "get-weather": {
        description: "Weather",
        inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        handler: ({ city }: { city: string }) => ({ city, tempC: 21 }),
        commandAliases: ["weather"],
      },
    },
  });
});
afterAll(async () => {
  await rt.dispose();
});

describe("guest node:child_process", () => {
  it("runs node -e through execFile (promise form) as another guest", async () => {
    const result = await rt.run(`
      import { execFile } from "node:child_process";
      import { promisify } from "node:util";
      const { stdout, stderr } = await promisify(execFile)("node", ["-e", "console.log(6 * 7); console.error('note'); console.log(process.env.FROM_RUNTIME)"]);
      __return({ stdout, stderr });
    `);
    expect(result.value).toEqual({ stdout: "42\nyes\n", stderr: "note\n" });
  });

  it("runs exec with a callback, node -p and node --version", async () => {
    const result = await rt.exec(`
      import { exec } from "node:child_process";
      exec("node -p '1 + 2'", (error, stdout) => console.log("p:", stdout.trim()));
      exec("node --version", (error, stdout) => console.log("v:", /^v\\d+\\./.test(stdout)));
    `);
    expect(result.stdout.split("\n").sort().join("\n")).toBe("\np: 3\nv: true");
  });

  it("passes exit codes through, with stdin, stdout and events as in Node", async () => {
    const result = await rt.exec(`
      import { spawn } from "node:child_process";
      const child = spawn("node", ["-e", "let s=''; process.stdin.on('data', d => s += d); process.stdin.on('end', () => { console.log(s.toUpperCase()); process.exit(4) })"]);
      const events = [];
      child.on("spawn", () => events.push("spawn"));
      child.stdout.on("data", (d) => events.push("stdout:" + String(d).trim()));
      child.on("exit", (code) => events.push("exit:" + code));
      child.on("close", (code) => { events.push("close:" + code); console.log(events.join(",")) });
      child.stdin.write("abc");
      child.stdin.end();
    `);
    expect(result.stdout).toBe("spawn,stdout:ABC,exit:4,close:4\n");
  });

  it("runs tool commands by key or alias", async () => {
    const result = await rt.exec(`
      import { execFile } from "node:child_process";
      import { promisify } from "node:util";
      const run = promisify(execFile);
      console.log((await run("get-weather", ["--json", JSON.stringify({ city: "Tokyo" })])).stdout.trim());
      try { await run("weather", ["--json", "{}"]) } catch (e) { console.log(e.code, e.stdout.trim()) }
    `);
    const [ok, failed] = result.stdout.trim().split("\n");
    expect(JSON.parse(ok!)).toEqual({ ok: true, result: { city: "Tokyo", tempC: 21 } });
    expect(failed).toMatch(/^1 \{"ok":false,"error":"invalid input for tool/);
  });

  it("fails unknown commands with ENOENT, and sync forms with a clear error", async () => {
    const result = await rt.exec(`
      import cp from "node:child_process";
      cp.execFile("ls", ["-la"], (error) => console.log(error.code, error.syscall));
      try { cp.execSync("node -v") } catch (e) { console.log(e.code) }
      try { cp.spawnSync("node", ["-v"]) } catch (e) { console.log(e.code) }
    `);
    expect(result.stdout).toBe("ERR_NOT_SUPPORTED\nERR_NOT_SUPPORTED\nENOENT spawn ls\n");
  });

  it("fails a spawn whose env is over the env caps with E2BIG, as a kernel would", async () => {
    const result = await rt.exec(`
      import cp from "node:child_process";
      const env = {};
      for (let i = 0; i < 5000; i++) env["K" + i] = "v";
      cp.execFile("node", ["-e", "1"], { env }, (error) => console.log(error.code, error.message));
    `);
    expect(result.stdout).toMatch(/^E2BIG .*has 5000 entries; the limit is 4096 per env/);
  });

  it("kills a child with a signal", async () => {
    const result = await rt.exec(`
      import { spawn } from "node:child_process";
      const child = spawn("node", ["-e", "setInterval(() => {}, 1000)"]);
      child.on("spawn", () => child.kill("SIGTERM"));
      child.on("exit", (code, signal) => console.log(code, signal));
    `);
    expect(result.stdout).toBe("null SIGTERM\n");
  });

  it("is gated by the childProcess permission", async () => {
    const own = await NodeRuntime.create({ permissions: { childProcess: { default: "deny", rules: [{ pattern: "node", action: "allow" }] } } });
    try {
      const result = await own.exec(`
        import { execFile } from "node:child_process";
        execFile("node", ["-e", "console.log('allowed')"], (e, out) => console.log(out.trim()));
        execFile("get-weather", [], (e) => console.log(e.code));
      `);
      expect(result.stdout.trim().split("\n").sort()).toEqual(["EACCES", "allowed"]);
    } finally {
      await own.dispose();
    }
  });
});

describe("node <file> and the env permission", () => {
  it("runs a script from the runtime's files, or one the guest just wrote", async () => {
    const own = await NodeRuntime.create({ files: { "/workspace/seeded.mjs": "console.log('seeded', process.argv.length > 1)" } });
    try {
      const result = await own.exec(`
        import { writeFileSync } from "node:fs";
        import { execFile } from "node:child_process";
        import { promisify } from "node:util";
        const run = promisify(execFile);
        writeFileSync("fresh.mjs", "import os from 'node:os'; console.log('fresh', os.platform())");
        console.log((await run("node", ["seeded.mjs"])).stdout.trim());
        console.log((await run("node", ["/workspace/fresh.mjs"])).stdout.trim());
        try { await run("node", ["missing.mjs"]) } catch (e) { console.log(e.code, /MODULE_NOT_FOUND/.test(e.stderr)) }
      `);
      expect(result.stdout).toBe("seeded true\nfresh linux\n1 true\n");
    } finally {
      await own.dispose();
    }
  });

  it("the env permission hides variables from guests", async () => {
    const own = await NodeRuntime.create({
      env: { PUBLIC_NAME: "ok", SECRET_TOKEN: "hidden" },
      permissions: { env: { default: "allow", rules: [{ pattern: "SECRET_*", action: "deny" }] } },
    });
    try {
      const result = await own.run("__return(process.env)", { env: { SECRET_CALL: "also hidden", OTHER: "x" } });
      expect(result.value).toEqual({ PUBLIC_NAME: "ok", OTHER: "x" });
    } finally {
      await own.dispose();
    }
  });
});
