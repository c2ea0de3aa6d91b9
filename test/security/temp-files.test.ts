// A host leaves nothing of its own in the temp folder: build and scratch directories live
// only while they are needed, and go on dispose and at exit. The one directory that stays is
// the per-user workerd configuration cache (secure-exec-<uid>), shared by every host.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const RUNTIME = JSON.stringify(new URL("../../dist/runtime/index.js", import.meta.url).href);
const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Runs `body` in a host process of its own whose temp folder is a fresh, empty one. */
function host(body: string): Promise<{ temp: string; stdout: string }> {
  const temp = mkdtempSync(join(tmpdir(), "temp-files-test-"));
  folders.push(temp);
  const script = `
    import { readdirSync } from "node:fs";
    const { NodeRuntime } = await import(${RUNTIME});
    const listing = () => readdirSync(process.env.TMPDIR).filter((name) => name.startsWith("secure-exec-") && !/^secure-exec-\\d+$/.test(name));
    ${body}
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, TMPDIR: temp }, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve({ temp, stdout });
    });
  });
}

function leftovers(temp: string): string[] {
  // The per-user configuration cache is meant to outlive hosts.
  return readdirSync(temp).filter((name) => name.startsWith("secure-exec-") && !/^secure-exec-\d+$/.test(name));
}

describe("the host's temporary files", () => {
  it("is gone once the runtime is disposed, and after the host exits", async () => {
    const { temp, stdout } = await host(`
      const rt = await NodeRuntime.create({ limits: { processes: 1 } });
      const result = await rt.run("__return(6 * 7)");
      await rt.dispose();
      // Spares the host keeps for the next runtime go with the last runtime too.
      await new Promise((resolve) => setTimeout(resolve, 500));
      console.log(JSON.stringify({ value: result.value, afterDispose: listing() }));
    `);
    const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as { value: number; afterDispose: string[] };
    expect(report.value).toBe(42);
    expect(report.afterDispose).toEqual([]);
    expect(leftovers(temp)).toEqual([]);
  });

  it("is gone after a host that exits with its runtime still open", async () => {
    const { temp } = await host(`
      const rt = await NodeRuntime.create({ limits: { processes: 1 } });
      await rt.run("__return(1)");
      process.exit(0);
    `);
    expect(leftovers(temp)).toEqual([]);
  });
});
