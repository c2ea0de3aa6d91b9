// Permissions are checked where the resource is used, on one normalised name: a denied file
// stays unreadable through `node <file>` (in memory and in mounts, however the path is spelt,
// and through the host's own symlinks), and a denied command stays denied however it is spelt.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing } from "./helpers.js";

const MEMORY_SECRET = "MEMORY-SECRET-7f3a";
const MOUNT_SECRET = "MOUNT-SECRET-91bc";

let hostDir: string;
let rt: NodeRuntime;
beforeAll(async () => {
  hostDir = mkdtempSync(join(tmpdir(), "secure-exec-perm-"));
  for (const mount of ["ro", "rw"]) {
    mkdirSync(join(hostDir, mount, "secrets"), { recursive: true });
    writeFileSync(join(hostDir, mount, "secrets", "key.json"), `{"key":"${MOUNT_SECRET}"}`);
    // Links the operator made: another name for the secret file, and for its directory.
    symlinkSync(join(hostDir, mount, "secrets", "key.json"), join(hostDir, mount, "pub.json"));
    symlinkSync(join(hostDir, mount, "secrets"), join(hostDir, mount, "lib"));
    writeFileSync(join(hostDir, mount, "ok.js"), 'console.log("mounted script ran")');
    // A write-only drop box (its contents are not the guest's to read), and a link into it.
    mkdirSync(join(hostDir, mount, "drop"));
    writeFileSync(join(hostDir, mount, "drop", "inbox.txt"), MOUNT_SECRET);
    symlinkSync(join(hostDir, mount, "drop", "inbox.txt"), join(hostDir, mount, "pubdrop.txt"));
  }
  rt = await createRuntime({
    files: { "/secrets/key.json": `{"key":"${MEMORY_SECRET}"}`, "/workspace/ok.js": 'console.log("script ran")' },
    mounts: [
      { hostPath: join(hostDir, "ro"), guestPath: "/data" },
      { hostPath: join(hostDir, "rw"), guestPath: "/rw", readOnly: false },
    ],
    permissions: {
      fs: {
        default: "allow",
        rules: [
          { pattern: "/secrets*", action: "deny" },
          { pattern: "/data/secrets*", action: "deny" },
          { pattern: "read:/data/drop*", action: "deny" },
          { pattern: "/rw/secrets*", action: "deny" },
        ],
      },
    },
  });
});
afterAll(async () => {
  await rt?.dispose();
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
});

/** Runs `node <file>` as a guest child and reports what came back. */
async function nodeFile(file: string, cwd = "/workspace"): Promise<{ code: unknown; out: string }> {
  const result = await rt.run(
    `
    import { execFile } from "node:child_process";
    execFile("node", [${JSON.stringify(file)}], { cwd: ${JSON.stringify(cwd)} }, (error, stdout, stderr) => {
      __return({ code: error ? error.code : 0, out: stdout + stderr });
    });
  `,
    { timeout: 20_000 },
  );
  expect(result.exitCode).toBe(0);
  return result.value as { code: unknown; out: string };
}

describe("permissions.fs holds for node <file>", () => {
  it.each([
    ["/secrets/key.json", "/workspace"],
    ["secrets/key.json", "/"],
    ["../secrets/key.json", "/workspace"],
    ["/workspace/../secrets/key.json", "/workspace"],
    ["//secrets//./key.json", "/workspace"],
  ])("an in-memory file denied by the policy: node %s (cwd %s)", async (file, cwd) => {
    const { code, out } = await nodeFile(file, cwd);
    expect(out).not.toContain(MEMORY_SECRET);
    expect(code).toBe(1);
    expect(out).toMatch(/EACCES: permission denied/);
  });

  it.each(["/data/secrets/key.json", "/data/pub.json", "/data/lib/key.json", "/data/../data/secrets/key.json", "/data/lib/none/deeper/key.json"])(
    "a mounted file denied by the policy, directly or through a host link: node %s",
    async (file) => {
      const { code, out } = await nodeFile(file);
      expect(out).not.toContain(MOUNT_SECRET);
      expect(code).toBe(1);
      expect(out).toMatch(/EACCES: permission denied/);
    },
  );

  it("allowed scripts still run, in memory and in a mount", async () => {
    expect(await nodeFile("ok.js")).toEqual({ code: 0, out: "script ran\n" });
    expect(await nodeFile("/data/ok.js")).toEqual({ code: 0, out: "mounted script ran\n" });
  });

  it("a host link does not ship a denied mounted file's contents in the snapshot", async () => {
    const result = await rt.run(`
      import fs from "node:fs";
      const seen = [];
      for (const path of ["/data/pub.json", "/data/lib/key.json", "/rw/pub.json"]) {
        try { seen.push(fs.readFileSync(path, "utf8")); } catch (error) { seen.push(error.code); }
      }
      __return(seen);
    `);
    expect(result.exitCode).toBe(0);
    expect(JSON.stringify(result.value)).not.toContain(MOUNT_SECRET);
    // What the policy denies both reading and writing where it really is does not exist for the guest.
    expect(result.value).toEqual(["ENOENT", "ENOENT", "ENOENT"]);
  });

  it("reading through a host link into a read-denied directory fails with EACCES", async () => {
    const result = await rt.run(`
      import fs from "node:fs";
      const seen = [];
      for (const path of ["/data/pubdrop.txt", "/data/drop/inbox.txt"]) {
        try { seen.push(fs.readFileSync(path, "utf8")); } catch (error) { seen.push(error.code); }
      }
      __return(seen);
    `);
    expect(result.value).toEqual(["EACCES", "EACCES"]);
    expect((await nodeFile("/data/pubdrop.txt")).out).toMatch(/EACCES/);
  });

  it("a write through a host link to a denied path is refused on write-back", async () => {
    const result = await rt.exec(`
      import fs from "node:fs";
      try { fs.writeFileSync("/rw/pub.json", "OVERWRITTEN"); } catch (error) { console.log(error.code); }
      try { fs.writeFileSync("/rw/lib/key.json", "OVERWRITTEN"); } catch (error) { console.log(error.code); }
    `);
    expect(result.exitCode).toBe(0);
    expect(readFileSync(join(hostDir, "rw", "secrets", "key.json"), "utf8")).toBe(`{"key":"${MOUNT_SECRET}"}`);
    await expectServing(rt);
  });
});

describe("what permissions.fs denies both reading and writing is not shipped at all", () => {
  it("a guest reading its raw snapshot finds neither names nor sizes, and the directory holding them stays", async () => {
    const own = await createRuntime({
      files: { "/box/inner/key.json": `{"key":"${MEMORY_SECRET}"}`, "/box/readme.txt": "hi", "/box/drop/old.txt": "x" },
      permissions: {
        fs: {
          default: "allow",
          rules: [
            { pattern: "/box/inner*", action: "deny" },
            // Write-only: the guest needs the name to write there.
            { pattern: "read:/box/drop*", action: "deny" },
          ],
        },
      },
    });
    try {
      const result = await own.run(`
        import fs from "node:fs";
        import { bridge } from "./secure-exec-bridge.js";
        const raw = JSON.stringify(bridge.fsSnapshot.files) + JSON.stringify(bridge.fsSnapshot.dirs);
        const outcomes = [];
        for (const attempt of [() => fs.rmSync("/box", { recursive: true }), () => fs.rmdirSync("/box"), () => fs.renameSync("/box", "/moved")]) {
          try { attempt(); outcomes.push("done"); } catch (error) { outcomes.push(error.code); }
        }
        __return({ inner: raw.includes("inner"), drop: raw.includes("old.txt"), listing: fs.readdirSync("/box"), outcomes });
      `);
      expect(result.exitCode).toBe(0);
      expect(result.value).toEqual({ inner: false, drop: true, listing: ["drop", "readme.txt"], outcomes: ["EACCES", "ENOTEMPTY", "EACCES"] });
      expect(new TextDecoder().decode(await own.readFile("/box/inner/key.json"))).toContain(MEMORY_SECRET);
    } finally {
      await own.dispose();
    }
  });

  it("the same holds in mounts, for the directory and for what a host link leads to", async () => {
    const result = await rt.run(`
      import fs from "node:fs";
      import { bridge } from "./secure-exec-bridge.js";
      const raw = JSON.stringify(bridge.fsSnapshot.files) + JSON.stringify(bridge.fsSnapshot.dirs);
      __return({ secrets: raw.includes("/data/secrets") || raw.includes("/rw/secrets"), link: raw.includes("/data/pub.json"), data: fs.readdirSync("/data") });
    `);
    expect(result.value).toEqual({ secrets: false, link: false, data: ["drop", "ok.js", "pubdrop.txt"] });
  });
});

describe("permissions.childProcess holds however the command is spelt", () => {
  let denied: NodeRuntime;
  beforeAll(async () => {
    denied = await createRuntime({
      tools: {
        "get-weather": { description: "Weather", inputSchema: { type: "object" }, handler: () => ({ tempC: 21 }), commandAliases: ["weather"] },
      },
      permissions: {
        childProcess: {
          default: "allow",
          rules: [
            { pattern: "node", action: "deny" },
            { pattern: "get-weather", action: "deny" },
          ],
        },
      },
    });
  });
  afterAll(async () => {
    await denied?.dispose();
  });

  it.each(["node", "/usr/bin/node", "./node", "x/node", "../../node", "/node", "a/b/c/node", "get-weather", "bin/get-weather", "/x/get-weather", "weather", "bin/weather"])(
    "a denied command stays denied: %s",
    async (command) => {
      const result = await denied.run(
        `
        import { execFile } from "node:child_process";
        execFile(${JSON.stringify(command)}, ["-e", "console.log('CHILD-RAN')"], (error, stdout, stderr) => {
          __return({ code: error ? error.code : 0, out: stdout + stderr });
        });
      `,
        { timeout: 20_000 },
      );
      expect(result.exitCode).toBe(0);
      const value = result.value as { code: unknown; out: string };
      expect(value.out).not.toContain("CHILD-RAN");
      expect(value.out).not.toContain("tempC");
      expect(value.code).toBe("EACCES");
    },
  );

  it("a spelling that names no command is not a command", async () => {
    const result = await denied.run(`
      import { execFile } from "node:child_process";
      execFile("node/", ["-e", "console.log('CHILD-RAN')"], (error, stdout) => __return({ code: error?.code, out: stdout }));
    `);
    expect(result.value).toEqual({ code: "ENOENT", out: "" });
  });

  it("an allowed command runs under any spelling (the same name is used to dispatch)", async () => {
    const result = await rt.run(`
      import { execFile } from "node:child_process";
      import { promisify } from "node:util";
      const run = promisify(execFile);
      __return([(await run("/usr/bin/node", ["-e", "console.log(1)"])).stdout, (await run("x/node", ["-p", "2"])).stdout]);
    `);
    expect(result.value).toEqual(["1\n", "2\n"]);
  });
});
