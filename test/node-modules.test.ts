import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

const nodeModules = fileURLToPath(new URL("../node_modules", import.meta.url));

let rt: NodeRuntime;
beforeAll(async () => {
  rt = await NodeRuntime.create({ nodeModules });
});
afterAll(async () => {
  await rt.dispose();
});

describe("nodeModules", () => {
  it("imports an ES module package (hono) with static import", async () => {
    const result = await rt.exec(`
      import { Hono } from "hono";
      const app = new Hono();
      app.get("/hello/:name", (c) => c.json({ hello: c.req.param("name") }));
      const response = await app.request("/hello/guest");
      console.log(response.status, JSON.stringify(await response.json()));
    `);
    expect(result).toEqual({ stdout: '200 {"hello":"guest"}\n', stderr: "", exitCode: 0 });
  });

  it("imports CommonJS packages, statically and with import()", async () => {
    const result = await rt.exec(`
      import equal from "fast-deep-equal";
      const { Command } = await import("commander");
      const program = new Command().option("-n, --name <name>");
      program.parse(["node", "x", "--name", "ann"]);
      console.log(equal({ a: [1, 2] }, { a: [1, 2] }), equal({ a: 1 }, { a: 2 }), program.opts().name);
    `);
    expect(result).toEqual({ stdout: "true false ann\n", stderr: "", exitCode: 0 });
  });

  it("fails an unknown package with a clear 'cannot find' error", async () => {
    const result = await rt.exec('import thing from "no-such-package-anywhere";');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/ERR_MODULE_NOT_FOUND.*Cannot find package 'no-such-package-anywhere'/);
  });

  it("without nodeModules, packages cannot be imported", async () => {
    const bare = await NodeRuntime.create();
    try {
      const result = await bare.exec('import { Hono } from "hono";');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/Cannot find package 'hono'/);
    } finally {
      await bare.dispose();
    }
  });

  it("rejects a nodeModules path that is not a directory at create()", async () => {
    await expect(NodeRuntime.create({ nodeModules: "/definitely/not/here" })).rejects.toThrow(
      /"nodeModules": \/definitely\/not\/here is not a directory/,
    );
  });
});

describe("sandbox builtins beyond imports", () => {
  it("process.getBuiltinModule returns the sandbox's fs and child_process", async () => {
    const own = await NodeRuntime.create({ files: { "/workspace/a.txt": "hello vfs" } });
    try {
      const result = await own.exec(`
        const fs = process.getBuiltinModule("node:fs");
        console.log(fs.readFileSync("/workspace/a.txt", "utf8"));
        const { execFile } = process.getBuiltinModule("child_process");
        execFile("node", ["-e", "console.log(7)"], (error, stdout) => console.log(stdout.trim()));
      `);
      expect(result).toEqual({ stdout: "hello vfs\n7\n", stderr: "", exitCode: 0 });
    } finally {
      await own.dispose();
    }
  });
});
