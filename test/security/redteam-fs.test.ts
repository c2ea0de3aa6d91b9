// What a run hands back to the host's filesystem is applied on the host's event loop, so its
// cost must stay linear and bounded: removing many directories was quadratic (20,000 rmdir
// calls held the host for seconds), and a guest that forges its change list (it can replace
// its own node:fs bookkeeping) could send a million deletes, each one host syscalls.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeRuntime } from "../../runtime/index.js";
import { createRuntime, expectServing, slowestWhile } from "./helpers.js";

describe("filesystem changes applied by the host", () => {
  const FILES = 20_000;
  let hostDir: string;
  let rt: NodeRuntime;
  let bystander: NodeRuntime;
  beforeAll(async () => {
    hostDir = mkdtempSync(join(tmpdir(), "secure-exec-redteam-fs-"));
    [rt, bystander] = await Promise.all([
      createRuntime({ limits: { fsFiles: FILES + 100 }, mounts: [{ hostPath: hostDir, guestPath: "/rw", readOnly: false }] }),
      createRuntime(),
    ]);
    await bystander.run("__return(0)");
  }, 60_000);
  afterAll(async () => {
    await Promise.all([rt?.dispose(), bystander?.dispose()]);
    rmSync(hostDir, { recursive: true, force: true });
  });

  it(`removing ${FILES} directories does not stall another runtime`, async () => {
    const made = await rt.run(`import fs from "node:fs"; for (let i = 0; i < ${FILES}; i++) fs.mkdirSync("/d/a" + i, { recursive: true }); __return(fs.readdirSync("/d").length)`, { timeout: 60_000 });
    expect(made.value).toBe(FILES);
    const removal = rt.run(
      `import fs from "node:fs"; await new Promise((resolve) => setTimeout(resolve, 200)); for (let i = 0; i < ${FILES}; i++) fs.rmdirSync("/d/a" + i); __return(fs.readdirSync("/d").length)`,
      { timeout: 60_000 },
    );
    const slowest = await slowestWhile(bystander, removal);
    expect((await removal).value).toBe(0);
    // One by one, each removal scanned every entry: ~1.4 s for 9,000, ~4x that here.
    expect(slowest).toBeLessThan(3_000);
    expect((await rt.run(`import fs from "node:fs"; __return(fs.readdirSync("/d").length)`)).value).toBe(0);
  }, 120_000);

  it("a forged list of a million deletes in a writable mount is cut to what the filesystem can hold", async () => {
    const forged = rt.run(
      `import { bridge } from "./secure-exec-bridge.js";
       import fs from "node:fs";
       fs.writeFileSync("/rw/kept.txt", "kept");
       await new Promise((resolve) => setTimeout(resolve, 200));
       const deletes = [];
       for (let i = 0; i < 1_000_000; i++) deletes.push("/rw/n" + i);
       bridge.fsChanges = () => ({ deletes, writes: { "/rw/forged.txt": btoa("forged") } });
       __return(deletes.length);`,
      { timeout: 60_000 },
    );
    const slowest = await slowestWhile(bystander, forged);
    const result = await forged;
    expect(result.exitCode).toBe(0);
    // Each delete was two host syscalls on the event loop (~13 s for the million).
    expect(slowest).toBeLessThan(3_000);
    await expectServing(rt);
  }, 120_000);
});
