// The virtual filesystem end to end (real workerd): guest node:fs in its sync, callback,
// promise and stream forms, persistence between runs, isolation between runtimes, the byte
// and file caps, mounts (read-only, writable, escape attempts) and permissions.fs.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../runtime/index.js";

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8");

// Runtimes are created together up front: each one costs a sandbox process.
let rt: NodeRuntime;
/** Small caps; also the "other runtime" of the isolation test and the owner of a growing mount. */
let small: NodeRuntime;
/** Mounts (read-only, writable) and a permissions.fs policy. */
let mounted: NodeRuntime;
/** permissions.fs: "deny". */
let locked: NodeRuntime;
let base: string;
let growing: string;

beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), "secure-exec-fs-"));
  mkdirSync(path.join(base, "ro/sub"), { recursive: true });
  mkdirSync(path.join(base, "rw"));
  mkdirSync(path.join(base, "outside"));
  writeFileSync(path.join(base, "outside/secret.txt"), "host secret");
  writeFileSync(path.join(base, "ro/hello.txt"), "hello from the host");
  writeFileSync(path.join(base, "ro/sub/deep.txt"), "deep");
  writeFileSync(path.join(base, "rw/existing.txt"), "existing");
  symlinkSync("/etc", path.join(base, "ro/etc-link"));
  symlinkSync("../outside/secret.txt", path.join(base, "ro/secret-link"));
  symlinkSync("hello.txt", path.join(base, "ro/inner-link"));
  symlinkSync("/etc", path.join(base, "rw/etc-link"));
  symlinkSync("../outside", path.join(base, "rw/out-dir"));
  growing = mkdtempSync(path.join(tmpdir(), "secure-exec-grow-"));
  [rt, small, mounted, locked] = await Promise.all([
    NodeRuntime.create({ files: { "/data/seed.txt": "seeded", "/data/bin.dat": new Uint8Array([0, 1, 2, 255]) } }),
    NodeRuntime.create({ limits: { fsBytes: 64 * 1024, fsFiles: 50 }, mounts: [{ hostPath: growing, guestPath: "/g" }] }),
    NodeRuntime.create({
      mounts: [
        { hostPath: path.join(base, "ro"), guestPath: "/mnt/ro" },
        { hostPath: path.join(base, "rw"), guestPath: "/mnt/rw", readOnly: false },
      ],
      files: { "/secrets/key.pem": "PRIVATE", "/config/app.json": '{"a":1}', "/public/readme.txt": "read me" },
      permissions: {
        fs: {
          default: "allow",
          rules: [
            { pattern: "/secrets*", action: "deny" },
            { pattern: "write:/config/*", action: "deny" },
          ],
        },
      },
    }),
    NodeRuntime.create({ files: { "/a.txt": "a" }, permissions: { fs: "deny" } }),
  ]);
});
afterAll(async () => {
  await Promise.all([rt, small, mounted, locked].map((runtime) => runtime?.dispose()));
  for (const dir of [base, growing]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("files, rt.writeFile/readFile/readDir and persistence", () => {
  it("the guest reads seeded files and files the host wrote; the host reads what the guest wrote", async () => {
    await rt.writeFile("/data/from-host.txt", "host says hi");
    const result = await rt.exec(`
      import fs from "node:fs";
      console.log(fs.readFileSync("/data/seed.txt", "utf8"));
      console.log(fs.readFileSync("/data/from-host.txt", "utf8"));
      console.log([...fs.readFileSync("/data/bin.dat")].join(","));
      fs.writeFileSync("/data/from-guest.txt", "guest says hi");
    `);
    expect(result).toEqual({ stdout: "seeded\nhost says hi\n0,1,2,255\n", stderr: "", exitCode: 0 });
    expect(text(await rt.readFile("/data/from-guest.txt"))).toBe("guest says hi");
    expect(await rt.readDir("/data")).toEqual(["bin.dat", "from-guest.txt", "from-host.txt", "seed.txt"]);
    expect(await rt.readDir("/")).toEqual(["data", "tmp", "workspace"]);
  });

  it("what one run writes, renames and deletes, the next run sees", async () => {
    await rt.exec(`
      import fs from "node:fs";
      fs.mkdirSync("/p/a/b", { recursive: true });
      fs.writeFileSync("/p/a/b/one.txt", "1");
      fs.writeFileSync("/p/gone.txt", "x");
    `);
    await rt.exec(`
      import fs from "node:fs";
      fs.renameSync("/p/a", "/p/moved");
      fs.unlinkSync("/p/gone.txt");
      fs.mkdirSync("/p/empty");
    `);
    const result = await rt.run(`
      import fs from "node:fs";
      __return({ list: fs.readdirSync("/p", { recursive: true }), one: fs.readFileSync("/p/moved/b/one.txt", "utf8") });
    `);
    expect(result.value).toEqual({ list: ["empty", "moved", "moved/b", "moved/b/one.txt"], one: "1" });
    expect(await rt.readDir("/p")).toEqual(["empty", "moved"]);
  });

  it("concurrent runs merge their changes; a spawned guest's land when it exits", async () => {
    await Promise.all(
      [0, 1, 2].map((i) =>
        rt.exec(`import fs from "node:fs"; fs.mkdirSync("/conc", { recursive: true }); fs.writeFileSync("/conc/${i}.txt", "${i}"); await new Promise((r) => setTimeout(r, 20));`),
      ),
    );
    expect(await rt.readDir("/conc")).toEqual(["0.txt", "1.txt", "2.txt"]);
    const guest = await rt.spawn('import fs from "node:fs"; process.stdin.on("data", (d) => fs.appendFileSync("/conc/log.txt", d));');
    await guest.writeStdin("a");
    await guest.writeStdin("b");
    await guest.closeStdin();
    expect(await guest.wait()).toBe(0);
    expect(text(await rt.readFile("/conc/log.txt"))).toBe("ab");
  });

  it("two runtimes never see each other's files", async () => {
    const other = small;
    await other.exec('import fs from "node:fs"; fs.mkdirSync("/data"); fs.writeFileSync("/data/mine.txt", "other runtime")');
    const result = await rt.exec('import fs from "node:fs"; console.log(fs.existsSync("/data/mine.txt"), fs.existsSync("/data/seed.txt"))');
    expect(result.stdout).toBe("false true\n");
    expect(await other.readDir("/data")).toEqual(["mine.txt"]);
    await expect(other.readFile("/data/seed.txt")).rejects.toThrow(/ENOENT/);
    await other.exec('import fs from "node:fs"; fs.rmSync("/data", { recursive: true })');
  });

  it("host API errors are Node-like", async () => {
    await expect(rt.readFile("/nope.txt")).rejects.toThrow("ENOENT: no such file or directory, open '/nope.txt'");
    await expect(rt.readFile("/data")).rejects.toThrow(/EISDIR/);
    await expect(rt.readDir("/data/seed.txt")).rejects.toThrow(/ENOTDIR/);
    await expect(rt.writeFile("relative.txt", "x")).rejects.toThrow(/absolute/);
  });
});

describe("guest node:fs", () => {
  it("sync forms: write, read, list with file types, stat, mkdir, rename, copy, append, rm, exists, access, realpath", async () => {
    const result = await rt.run(`
      import fs from "node:fs";
      const out = {};
      fs.mkdirSync("/s/deep/er", { recursive: true });
      fs.writeFileSync("/s/a.txt", "alpha");
      fs.appendFileSync("/s/a.txt", "-beta");
      fs.copyFileSync("/s/a.txt", "/s/deep/copy.txt");
      fs.renameSync("/s/deep/copy.txt", "/s/deep/er/moved.txt");
      out.read = fs.readFileSync("/s/deep/er/moved.txt", "utf8");
      out.list = fs.readdirSync("/s");
      out.types = fs.readdirSync("/s", { withFileTypes: true }).map((d) => [d.name, d.isFile(), d.isDirectory(), d.parentPath]);
      const st = fs.statSync("/s/a.txt");
      out.stat = [st.isFile(), st.isDirectory(), st.size, st.mtime instanceof Date, st.mtimeMs > 0, (st.mode & 0o170000) === 0o100000];
      const ls = fs.lstatSync("/s/deep");
      out.lstat = [ls.isFile(), ls.isDirectory(), ls.isSymbolicLink()];
      out.exists = [fs.existsSync("/s/a.txt"), fs.existsSync("/s/none")];
      fs.accessSync("/s/a.txt", fs.constants.R_OK | fs.constants.W_OK);
      out.realpath = fs.realpathSync("/s/deep/er/../../a.txt");
      out.mkdirFirst = fs.mkdirSync("/s/n1/n2", { recursive: true });
      out.mkdirAgain = String(fs.mkdirSync("/s/n1/n2", { recursive: true }));
      fs.rmSync("/s/deep", { recursive: true });
      fs.rmdirSync("/s/n1/n2");
      fs.unlinkSync("/s/a.txt");
      out.after = fs.readdirSync("/s");
      fs.rmSync("/s/missing", { force: true });
      __return(out);
    `);
    expect(result.stderr).toBe("");
    expect(result.value).toEqual({
      read: "alpha-beta",
      list: ["a.txt", "deep"],
      types: [
        ["a.txt", true, false, "/s"],
        ["deep", false, true, "/s"],
      ],
      stat: [true, false, 10, true, true, true],
      lstat: [false, true, false],
      exists: [true, false],
      realpath: "/s/a.txt",
      mkdirFirst: "/s/n1",
      mkdirAgain: "undefined",
      after: ["n1"],
    });
  });

  it("errors carry Node's message, code, errno, syscall and path", async () => {
    const result = await rt.run(`
      import fs from "node:fs";
      const attempt = (fn) => { try { fn(); return "no error"; } catch (e) { return { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, dest: e.dest }; } };
      fs.mkdirSync("/e/full", { recursive: true });
      fs.writeFileSync("/e/full/x", "x");
      fs.writeFileSync("/e/file", "f");
      __return([
        attempt(() => fs.readFileSync("/x")),
        attempt(() => fs.mkdirSync("/e")),
        attempt(() => fs.readFileSync("/e")),
        attempt(() => fs.writeFileSync("/e", "x")),
        attempt(() => fs.readdirSync("/e/file")),
        attempt(() => fs.writeFileSync("/e/file/below", "x")),
        attempt(() => fs.rmdirSync("/e/full")),
        attempt(() => fs.renameSync("/e/none", "/e/other")),
        attempt(() => fs.mkdirSync("/nope/a")),
        attempt(() => fs.rmSync("/e/full")),
      ]);
    `);
    const errors = result.value as Record<string, unknown>[];
    expect(errors[0]).toEqual({ message: "ENOENT: no such file or directory, open '/x'", code: "ENOENT", errno: -2, syscall: "open", path: "/x" });
    expect(errors[1]).toMatchObject({ message: "EEXIST: file already exists, mkdir '/e'", code: "EEXIST", syscall: "mkdir" });
    expect(errors[2]).toMatchObject({ message: "EISDIR: illegal operation on a directory, read", code: "EISDIR" });
    expect(errors[3]).toMatchObject({ message: "EISDIR: illegal operation on a directory, open '/e'", code: "EISDIR" });
    expect(errors[4]).toMatchObject({ message: "ENOTDIR: not a directory, scandir '/e/file'", code: "ENOTDIR" });
    expect(errors[5]).toMatchObject({ code: "ENOTDIR", syscall: "open", path: "/e/file/below" });
    expect(errors[6]).toMatchObject({ message: "ENOTEMPTY: directory not empty, rmdir '/e/full'", code: "ENOTEMPTY" });
    expect(errors[7]).toMatchObject({ message: "ENOENT: no such file or directory, rename '/e/none' -> '/e/other'", dest: "/e/other" });
    expect(errors[8]).toMatchObject({ code: "ENOENT", syscall: "mkdir", path: "/nope/a" });
    expect(errors[9]).toMatchObject({ code: "ERR_FS_EISDIR" });
  });

  it("relative paths resolve against process.cwd() (runtime default, per-call cwd, chdir)", async () => {
    const result = await rt.exec(
      `
      import fs from "node:fs";
      fs.writeFileSync("rel.txt", "in cwd");
      console.log(fs.readFileSync("/workspace/rel.txt", "utf8"));
      fs.mkdirSync("sub");
      process.chdir("sub");
      fs.writeFileSync("../up.txt", "up");
      console.log(fs.readdirSync(".").length, fs.readdirSync("..").sort().join(","));
      try { fs.readFileSync("missing.txt"); } catch (e) { console.log(e.message); }
    `,
      { cwd: "/workspace" },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("in cwd\n0 rel.txt,sub,up.txt\nENOENT: no such file or directory, open 'missing.txt'\n");
    const perCall = await rt.exec('import fs from "node:fs"; fs.writeFileSync("x.txt", "1"); console.log(fs.readdirSync("/data").includes("x.txt"))', { cwd: "/data" });
    expect(perCall.stdout).toBe("true\n");
  });

  it("callback forms, fs.promises, node:fs/promises and util.promisify", async () => {
    const result = await rt.exec(`
      import fs from "node:fs";
      import { readFile, writeFile, mkdir, readdir, stat, rm, appendFile, copyFile, rename, access, open } from "node:fs/promises";
      import { promisify } from "node:util";
      await mkdir("/cb/x", { recursive: true });
      await writeFile("/cb/x/p.txt", "promised");
      await appendFile("/cb/x/p.txt", "!");
      await copyFile("/cb/x/p.txt", "/cb/x/q.txt");
      await rename("/cb/x/q.txt", "/cb/q.txt");
      await access("/cb/q.txt");
      console.log(await readFile("/cb/q.txt", "utf8"), await readdir("/cb"), (await stat("/cb/x")).isDirectory());
      const handle = await open("/cb/fh.txt", "w+");
      await handle.write("via handle");
      const { bytesRead, buffer } = await handle.read(Buffer.alloc(3), 0, 3, 4);
      await handle.close();
      console.log(bytesRead, buffer.toString());
      await fs.promises.rm("/cb/x", { recursive: true });
      await rm("/cb/fh.txt");
      fs.readFile("/cb/q.txt", "utf8", (err, data) => {
        console.log("cb", err, data);
        fs.stat("/cb/none", (err) => {
          console.log("cb err", err.code);
          fs.exists("/cb/q.txt", (yes) => console.log("exists", yes));
        });
      });
      console.log("promisified", await promisify(fs.readdir)("/cb"), await promisify(fs.exists)("/cb"));
      await readFile("/cb/none").catch((e) => console.log("rejected", e.code, e.syscall));
    `);
    expect(result.stderr).toBe("");
    // Callbacks run on later microtasks: their order against the awaits is not fixed.
    expect(result.stdout.split("\n").sort()).toEqual(
      [
        "",
        "3 han",
        "cb err ENOENT",
        "cb null promised!",
        "exists true",
        "promised! [ 'q.txt', 'x' ] true",
        "promisified [ 'q.txt' ] true",
        "rejected ENOENT open",
      ],
    );
  });

  it("file descriptors, createWriteStream, createReadStream and pipe", async () => {
    // An fs error nobody catches ends the run like any uncaught exception.
    const uncaught = await rt.exec('import fs from "node:fs"; fs.openSync("/st/fd.txt", "w")');
    expect(uncaught.exitCode).toBe(1);
    expect(uncaught.stderr).toMatch(/ENOENT: no such file or directory, open '\/st\/fd.txt'/);
    const ok = await rt.exec(`
      import fs from "node:fs";
      import { pipeline } from "node:stream/promises";
      fs.mkdirSync("/st");
      const fd = fs.openSync("/st/fd.txt", "w");
      fs.writeSync(fd, "0123456789");
      fs.closeSync(fd);
      const rfd = fs.openSync("/st/fd.txt", "r");
      const buf = Buffer.alloc(4);
      console.log(fs.readSync(rfd, buf, 0, 4, 3), buf.toString(), fs.fstatSync(rfd).size);
      fs.closeSync(rfd);
      const out = fs.createWriteStream("/st/stream.txt");
      for (let i = 0; i < 1000; i++) out.write("line " + i + "\\n");
      out.end();
      await new Promise((resolve) => out.on("finish", resolve));
      let chunks = 0, length = 0;
      for await (const chunk of fs.createReadStream("/st/stream.txt", { highWaterMark: 1024 })) { chunks++; length += chunk.length; }
      console.log(chunks > 1, length, fs.statSync("/st/stream.txt").size);
      await pipeline(fs.createReadStream("/st/stream.txt", { start: 5, end: 9 }), fs.createWriteStream("/st/copy.txt"));
      console.log(JSON.stringify(fs.readFileSync("/st/copy.txt", "utf8")));
      fs.createReadStream("/st/none").on("error", (e) => console.log("stream error", e.code));
    `);
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe('4 3456 10\ntrue 8890 8890\n"0\\nlin"\nstream error ENOENT\n');
    expect(text(await rt.readFile("/st/stream.txt")).split("\n")[999]).toBe("line 999");
  });

  it("guests that never import fs ship no snapshot and still run", async () => {
    const result = await rt.exec('console.log("no fs here")');
    expect(result.stdout).toBe("no fs here\n");
  });
});

describe("byte and file caps", () => {
  it("a guest that fills the filesystem gets ENOSPC at write time; what fit persists and later runs work", async () => {
    const result = await small.run(`
      import fs from "node:fs";
      let written = 0, error;
      try {
        for (let i = 0; ; i++) { fs.writeFileSync("/fill-" + i, Buffer.alloc(10 * 1024, 7)); written++; }
      } catch (e) { error = { code: e.code, syscall: e.syscall, message: e.message }; }
      let appendError;
      try { for (;;) fs.appendFileSync("/fill-0", "more bytes"); } catch (e) { appendError = e.code; }
      __return({ written, error, appendError, left: fs.statfsSync("/").bavail });
    `);
    expect(result.stderr).toBe("");
    const value = result.value as { written: number; error: { code: string; syscall: string; message: string }; appendError: string };
    expect(value.written).toBe(6);
    expect(value.error.code).toBe("ENOSPC");
    expect(value.error.message).toMatch(/^ENOSPC: no space left on device, write '\/fill-6' \(limits.fsBytes = 65536 bytes/);
    expect(value.appendError).toBe("ENOSPC");
    const files = (await small.readDir("/")).filter((name) => name.startsWith("fill-"));
    expect(files).toHaveLength(6);
    // The next run knows the remaining budget too, and can free space and write again.
    const next = await small.exec(`
      import fs from "node:fs";
      try { fs.writeFileSync("/one-more", Buffer.alloc(10 * 1024)); } catch (e) { console.log(e.code); }
      for (let i = 0; i < 6; i++) fs.unlinkSync("/fill-" + i);
      fs.writeFileSync("/one-more", Buffer.alloc(10 * 1024));
      console.log("ok");
    `);
    expect(next).toEqual({ stdout: "ENOSPC\nok\n", stderr: "", exitCode: 0 });
    await expect(small.writeFile("/host-big", new Uint8Array(60 * 1024))).rejects.toThrow(/ENOSPC.*limits.fsBytes/);
    await small.exec('import fs from "node:fs"; fs.unlinkSync("/one-more")');
  });

  it("the file-count cap gives ENOSPC too (directories count)", async () => {
    const result = await small.run(`
      import fs from "node:fs";
      let made = 0;
      try { for (let i = 0; ; i++) { fs.mkdirSync("/d" + i); made++; } } catch (e) { __return({ made, code: e.code, message: e.message }); }
    `);
    const value = result.value as { made: number; code: string; message: string };
    expect(value.code).toBe("ENOSPC");
    expect(value.message).toMatch(/limits.fsFiles = 50/);
    // `/workspace` and `/tmp` exist from the start and count.
    expect(value.made).toBe(48);
    await small.exec('import fs from "node:fs"; for (let i = 0; i < 48; i++) fs.rmdirSync("/d" + i)');
  });

  it("the host re-checks what a run hands back: a guest that bypasses node:fs cannot exceed the cap", async () => {
    const result = await small.exec(`
      import fs from "node:fs";
      import { bridge } from "./secure-exec-bridge.js";
      fs.existsSync("/");
      const big = Buffer.alloc(200 * 1024, 1).toString("base64");
      const many = {};
      for (let i = 0; i < 100; i++) many["/many-" + i] = "eA==";
      bridge.fsChanges = () => ({ writes: { "/huge": big, "/small": "aGk=", ...many }, deletes: ["/"], dirs: ["relative", "/../x"] });
    `);
    expect(result.exitCode).toBe(0);
    const names = await small.readDir("/");
    expect(names).not.toContain("huge");
    expect(names).toContain("small");
    expect(names.filter((name) => name.startsWith("many-")).length).toBeLessThanOrEqual(50);
    const usage = await small.run('import fs from "node:fs"; const s = fs.statfsSync("/"); __return(s.files - s.ffree)');
    expect(usage.value as number).toBeLessThanOrEqual(50);
    await small.exec('import fs from "node:fs"; for (const n of fs.readdirSync("/")) if (n.startsWith("many-") || n === "small") fs.unlinkSync("/" + n)');
  });
});

describe("mounts", () => {
  it("projects host directories in; links inside the mount work, links out do not exist", async () => {
    const result = await mounted.run(`
      import fs from "node:fs";
      __return({
        root: fs.readdirSync("/mnt"),
        ro: fs.readdirSync("/mnt/ro"),
        hello: fs.readFileSync("/mnt/ro/hello.txt", "utf8"),
        inner: fs.readFileSync("/mnt/ro/inner-link", "utf8"),
        deep: fs.readFileSync("/mnt/ro/sub/deep.txt", "utf8"),
        rw: fs.readdirSync("/mnt/rw"),
      });
    `);
    expect(result.value).toEqual({
      root: ["ro", "rw"],
      ro: ["hello.txt", "inner-link", "sub"],
      hello: "hello from the host",
      inner: "hello from the host",
      deep: "deep",
      rw: ["existing.txt"],
    });
    expect(await mounted.readDir("/mnt/ro")).toEqual(["hello.txt", "inner-link", "sub"]);
    expect(text(await mounted.readFile("/mnt/ro/hello.txt"))).toBe("hello from the host");
  });

  it("`..`, symlinks and absolute paths cannot leave the mount", async () => {
    const result = await mounted.run(`
      import fs from "node:fs";
      const attempt = (fn) => { try { return fn(); } catch (e) { return e.code; } };
      __return([
        attempt(() => fs.readFileSync("/mnt/ro/../../etc/passwd", "utf8")),
        attempt(() => fs.readFileSync("/mnt/ro/etc-link/passwd", "utf8")),
        attempt(() => fs.readdirSync("/mnt/ro/etc-link")),
        attempt(() => fs.readFileSync("/mnt/ro/secret-link", "utf8")),
        attempt(() => fs.readFileSync("/mnt/rw/out-dir/secret.txt", "utf8")),
        attempt(() => fs.readFileSync("/etc/passwd", "utf8")),
        attempt(() => fs.readFileSync(${JSON.stringify(path.join(base, "outside/secret.txt"))}, "utf8")),
        attempt(() => fs.readdirSync("/mnt/ro/sub/../..").includes("ro")),
      ]);
    `);
    expect(result.value).toEqual(["ENOENT", "ENOENT", "ENOENT", "ENOENT", "ENOENT", "ENOENT", "ENOENT", true]);
    await expect(mounted.readFile("/mnt/ro/etc-link/passwd")).rejects.toThrow(/ENOENT/);
    await expect(mounted.readFile("/mnt/ro/secret-link")).rejects.toThrow(/ENOENT/);
    await expect(mounted.readFile("/mnt/ro/../../etc/passwd")).rejects.toThrow(/ENOENT/);
  });

  it("writes to a read-only mount fail with EROFS; the mount point cannot be removed", async () => {
    const result = await mounted.run(`
      import fs from "node:fs";
      const attempt = (fn) => { try { fn(); return "wrote"; } catch (e) { return e.message; } };
      __return([
        attempt(() => fs.writeFileSync("/mnt/ro/new.txt", "x")),
        attempt(() => fs.appendFileSync("/mnt/ro/hello.txt", "x")),
        attempt(() => fs.unlinkSync("/mnt/ro/hello.txt")),
        attempt(() => fs.mkdirSync("/mnt/ro/dir")),
        attempt(() => fs.renameSync("/mnt/ro/hello.txt", "/mnt/ro/h2.txt")),
        attempt(() => fs.rmSync("/mnt", { recursive: true })),
        attempt(() => fs.accessSync("/mnt/ro/hello.txt", fs.constants.W_OK)),
      ]);
    `);
    expect(result.value).toEqual([
      "EROFS: read-only file system, open '/mnt/ro/new.txt'",
      "EROFS: read-only file system, open '/mnt/ro/hello.txt'",
      "EROFS: read-only file system, unlink '/mnt/ro/hello.txt'",
      "EROFS: read-only file system, mkdir '/mnt/ro/dir'",
      "EROFS: read-only file system, rename '/mnt/ro/hello.txt' -> '/mnt/ro/h2.txt'",
      "EBUSY: resource busy or locked, rm '/mnt'",
      "EROFS: read-only file system, access '/mnt/ro/hello.txt'",
    ]);
    expect(readdirSync(path.join(base, "ro")).sort()).toEqual(["etc-link", "hello.txt", "inner-link", "secret-link", "sub"]);
    await expect(mounted.writeFile("/mnt/ro/x.txt", "x")).rejects.toThrow(/EROFS/);
  });

  it("a writable mount writes back to the host directory; host changes show in the next run", async () => {
    await mounted.exec(`
      import fs from "node:fs";
      fs.writeFileSync("/mnt/rw/new.txt", "from the guest");
      fs.mkdirSync("/mnt/rw/made/deeper", { recursive: true });
      fs.writeFileSync("/mnt/rw/made/deeper/f.txt", "deep write");
      fs.unlinkSync("/mnt/rw/existing.txt");
    `);
    expect(readFileSync(path.join(base, "rw/new.txt"), "utf8")).toBe("from the guest");
    expect(readFileSync(path.join(base, "rw/made/deeper/f.txt"), "utf8")).toBe("deep write");
    expect(existsSync(path.join(base, "rw/existing.txt"))).toBe(false);
    writeFileSync(path.join(base, "rw/host-added.txt"), "added on the host");
    writeFileSync(path.join(base, "ro/hello.txt"), "changed on the host");
    const result = await mounted.exec(
      'import fs from "node:fs"; console.log(fs.readFileSync("/mnt/rw/host-added.txt", "utf8"), "|", fs.readFileSync("/mnt/ro/hello.txt", "utf8"))',
    );
    expect(result.stdout).toBe("added on the host | changed on the host\n");
    await mounted.writeFile("/mnt/rw/via-host-api.txt", "api");
    expect(readFileSync(path.join(base, "rw/via-host-api.txt"), "utf8")).toBe("api");
  });

  it("a guest that bypasses node:fs cannot write through links, into read-only mounts or outside", async () => {
    const result = await mounted.exec(`
      import fs from "node:fs";
      import { bridge } from "./secure-exec-bridge.js";
      fs.existsSync("/");
      const x = btoa("pwned");
      bridge.fsChanges = () => ({
        writes: { "/mnt/rw/etc-link/pwned": x, "/mnt/rw/out-dir/pwned": x, "/mnt/ro/pwned": x, "/mnt/rw/../outside/pwned": x, "/mnt/rw/fine.txt": x },
        dirs: ["/mnt/rw/out-dir/newdir", "/mnt/ro/newdir"],
        deletes: ["/mnt/rw/out-dir", "/mnt/rw/etc-link/hostname", "/mnt/ro/hello.txt", "/mnt/rw"],
      });
    `);
    expect(result.exitCode).toBe(0);
    expect(readdirSync(path.join(base, "outside"))).toEqual(["secret.txt"]);
    expect(existsSync("/etc/pwned")).toBe(false);
    expect(readdirSync(path.join(base, "ro")).sort()).toEqual(["etc-link", "hello.txt", "inner-link", "secret-link", "sub"]);
    expect(existsSync(path.join(base, "rw/out-dir"))).toBe(true);
    expect(readFileSync(path.join(base, "rw/fine.txt"), "utf8")).toBe("pwned");
  });

  it("one change list that removes, recreates and writes through a host link lands as the same steps one by one would", async () => {
    // The host resolves each mount directory once per change list: what the list removes or
    // creates must not be answered from what was resolved before it.
    mkdirSync(path.join(base, "rw/tree/sub"), { recursive: true });
    writeFileSync(path.join(base, "rw/tree/sub/old.txt"), "old");
    symlinkSync("tree", path.join(base, "rw/alias"));
    try {
      const result = await mounted.exec(`
        import fs from "node:fs";
        import { bridge } from "./secure-exec-bridge.js";
        fs.existsSync("/");
        const x = btoa("new");
        bridge.fsChanges = () => ({
          deletes: ["/mnt/rw/alias/sub/none", "/mnt/rw/tree/none", "/mnt/rw/tree/sub"],
          dirs: ["/mnt/rw/tree/fresh"],
          writes: { "/mnt/rw/alias/fresh/a.txt": x, "/mnt/rw/alias/sub/old.txt": x, "/mnt/rw/tree/b.txt": x },
        });
      `);
      expect(result.exitCode).toBe(0);
      expect(readdirSync(path.join(base, "rw/tree")).sort()).toEqual(["b.txt", "fresh"]);
      expect(readFileSync(path.join(base, "rw/tree/fresh/a.txt"), "utf8")).toBe("new");
    } finally {
      rmSync(path.join(base, "rw/alias"));
      rmSync(path.join(base, "rw/tree"), { recursive: true });
    }
  });

  it("create() fails clearly for a missing directory or a mount over the caps; a mount that outgrows them fails the run", async () => {
    await expect(NodeRuntime.create({ mounts: [{ hostPath: path.join(base, "nope"), guestPath: "/m" }] })).rejects.toThrow(
      /mounts\[0\]\.hostPath .*nope is not a readable directory/,
    );
    await expect(NodeRuntime.create({ mounts: [{ hostPath: base, guestPath: "/m" }], limits: { fsBytes: 16 } })).rejects.toThrow(
      /mount of .* at \/m does not fit the filesystem caps: .*limits.fsBytes = 16/,
    );
    await expect(NodeRuntime.create({ mounts: [{ hostPath: base, guestPath: "m" }] })).rejects.toThrow(/mounts.0.guestPath/);
    // `small` mounts `growing` (empty at create); past its 64 KiB cap, fs runs reject.
    writeFileSync(path.join(growing, "big.bin"), Buffer.alloc(100 * 1024));
    try {
      await expect(small.exec('import fs from "node:fs"; fs.readdirSync("/g")')).rejects.toThrow(/mount of .* at \/g does not fit the filesystem caps/);
      // Runs that do not use the filesystem are unaffected.
      expect((await small.exec("console.log(1)")).stdout).toBe("1\n");
    } finally {
      rmSync(path.join(growing, "big.bin"));
    }
    expect((await small.exec('import fs from "node:fs"; console.log(fs.readdirSync("/g"))')).stdout).toBe("[]\n");
  });
});

describe("permissions.fs", () => {
  const guarded = () => mounted;

  it("denied operations fail with EACCES naming the rule; allowed ones work", async () => {
    const result = await guarded().run(`
      import fs from "node:fs";
      const attempt = (fn) => { try { return fn(); } catch (e) { return e.code + " | " + e.message; } };
      __return([
        attempt(() => fs.readFileSync("/secrets/key.pem", "utf8")),
        attempt(() => fs.readdirSync("/secrets")),
        attempt(() => fs.writeFileSync("/secrets/new", "x")),
        attempt(() => fs.existsSync("/secrets/key.pem")),
        attempt(() => fs.readFileSync("/config/app.json", "utf8")),
        attempt(() => fs.writeFileSync("/config/app.json", "{}")),
        attempt(() => fs.rmSync("/config", { recursive: true })),
        attempt(() => fs.writeFileSync("/public/new.txt", "ok") ?? "wrote"),
      ]);
    `);
    expect(result.value).toEqual([
      `EACCES | EACCES: permission denied, open '/secrets/key.pem' (denied by permissions.fs rule "/secrets*")`,
      `EACCES | EACCES: permission denied, scandir '/secrets' (denied by permissions.fs rule "/secrets*")`,
      `EACCES | EACCES: permission denied, open '/secrets/new' (denied by permissions.fs rule "/secrets*")`,
      false,
      '{"a":1}',
      `EACCES | EACCES: permission denied, open '/config/app.json' (denied by permissions.fs rule "write:/config/*")`,
      `EACCES | EACCES: permission denied, rm '/config/app.json' (denied by permissions.fs rule "write:/config/*")`,
      "wrote",
    ]);
    const promised = await guarded().exec('import { readFile } from "node:fs/promises"; await readFile("/secrets/key.pem").catch((e) => console.log(e.code))');
    expect(promised.stdout).toBe("EACCES\n");
  });

  it("denied contents never reach the guest, and the host refuses denied changes", async () => {
    const result = await guarded().run(`
      import fs from "node:fs";
      import { bridge } from "./secure-exec-bridge.js";
      fs.existsSync("/");
      const raw = JSON.stringify(bridge.fsSnapshot);
      bridge.fsChanges = () => ({ writes: { "/config/app.json": btoa("tampered"), "/secrets/planted": btoa("x") }, deletes: ["/secrets"] });
      __return(raw.includes(btoa("PRIVATE")) || raw.includes("PRIVATE"));
    `);
    expect(result.value).toBe(false);
    expect(text(await guarded().readFile("/config/app.json"))).toBe('{"a":1}');
    expect(await guarded().readDir("/secrets")).toEqual(["key.pem"]);
  });

  it('"deny" denies everything', async () => {
    const result = await locked.exec('import fs from "node:fs"; try { fs.readFileSync("/a.txt") } catch (e) { console.log(e.message) }');
    expect(result.stdout).toBe(`EACCES: permission denied, open '/a.txt' (permissions.fs is "deny")\n`);
    await expect(NodeRuntime.create({ permissions: { fs: "sometimes" as never } })).rejects.toThrow(/permissions.fs/);
  });
});
