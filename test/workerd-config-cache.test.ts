// The cached workerd configuration: Miniflare builds it once per set of inputs, later hosts
// spawn workerd straight from it, a changed input builds anew and a damaged entry is rebuilt.
// Each host here is a fresh Node process running the build (dist/), as a user's would.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configKey, type ConfigRequest } from "../host/engine/workerd-config-cache.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const runtimeEntry = pathToFileURL(join(root, "dist/runtime/index.js")).href;
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "secure-exec-config-cache-test-"));
});

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface HostReport {
  phases: string[];
  stdout: string;
  exitCode: number;
  /** Specifiers the host's module loader was asked for that name Miniflare. */
  miniflareImports: string[];
}

/**
 * A fresh host process: creates a runtime, runs one guest and reports its boot phases.
 * A module hook records any request for Miniflare on the host's own thread.
 */
function freshHost(cacheDir: string, env: Record<string, string> = {}): Promise<HostReport> {
  const hook = `data:text/javascript,${encodeURIComponent(
    `export async function resolve(specifier, context, next) { if (/miniflare/.test(specifier)) process.stderr.write("MINIFLARE-IMPORT " + specifier + "\\n"); return next(specifier, context); }`,
  )}`;
  const source = `
    import { register } from "node:module";
    register(${JSON.stringify(hook)});
    const { NodeRuntime } = await import(${JSON.stringify(runtimeEntry)});
    const phases = [];
    const runtime = await NodeRuntime.create({ onBootTiming: ({ phase }) => phases.push(phase) });
    const result = await runtime.exec("console.log(6 * 7)");
    await runtime.dispose();
    process.stdout.write(JSON.stringify({ phases, stdout: result.stdout, exitCode: result.exitCode }) + "\\n");
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", source], {
      env: { ...process.env, SECURE_EXEC_CACHE_DIR: cacheDir, SECURE_EXEC_SPARE_PROCESSES: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      children.delete(child);
      const line = stdout.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !line.startsWith("{")) return reject(new Error(`host exited with ${code}: ${stderr}`));
      const report = JSON.parse(line) as Omit<HostReport, "miniflareImports">;
      resolve({ ...report, miniflareImports: [...stderr.matchAll(/MINIFLARE-IMPORT (\S+)/g)].map((match) => match[1]!) });
    });
  });
}

function entries(cacheDir: string): string[] {
  return readdirSync(cacheDir).filter((name) => name.startsWith("workerd-config-") && name.endsWith(".bin"));
}

describe("workerd configuration cache", () => {
  it("builds through Miniflare once, then later hosts spawn workerd from the cache without Miniflare", async () => {
    const cacheDir = join(dir, "warm");
    const first = await freshHost(cacheDir);
    expect(first.stdout).toBe("42\n");
    expect(first.phases).toContain("workerd-config-built");
    expect(entries(cacheDir)).toHaveLength(1);
    // Only what the direct socket reaches is kept: Miniflare's entry socket and its router
    // worker (compiled at every start) are left out.
    const entry = readFileSync(join(cacheDir, entries(cacheDir)[0]!));
    const header = JSON.parse(entry.subarray(0, entry.indexOf(10)).toString()) as { plan: { args: string[] } };
    expect(header.plan.args.filter((arg) => arg.startsWith("--socket-addr="))).toEqual([]);
    expect(entry.includes("/workers/core/entry.worker.js")).toBe(false);

    const second = await freshHost(cacheDir);
    expect(second.stdout).toBe("42\n");
    expect(second.phases).toContain("workerd-config-disk");
    expect(second.phases).not.toContain("workerd-config-built");
    expect(second.miniflareImports).toEqual([]);
    expect(entries(cacheDir)).toHaveLength(1);
  });

  it("builds anew when an input changes (here: a different workerd binary)", async () => {
    const cacheDir = join(dir, "invalidate");
    await freshHost(cacheDir);
    const require = createRequire(import.meta.url);
    const binary = join(dir, "workerd-elsewhere");
    symlinkSync((require("workerd") as { default: string }).default, binary);
    const changed = await freshHost(cacheDir, { SECURE_EXEC_WORKERD_PATH: binary });
    expect(changed.stdout).toBe("42\n");
    expect(changed.phases).toContain("workerd-config-built");
    expect(entries(cacheDir)).toHaveLength(2);
  });

  it("keys a configuration by the options that shape it", () => {
    const request = (flags: string[]): ConfigRequest => ({
      kind: "static",
      options: {
        mainModule: { name: "main.js", source: "export default {}" },
        compatibilityDate: "2026-04-01",
        compatibilityFlags: flags,
        denyNetworkMessage: "no network",
      },
    });
    expect(configKey(request(["nodejs_compat"]))).toBe(configKey(request(["nodejs_compat"])));
    expect(configKey(request(["nodejs_compat"]))).not.toBe(configKey(request(["nodejs_compat", "no_web_socket_compression"])));
  });

  it("rebuilds an entry that is damaged", async () => {
    const cacheDir = join(dir, "corrupt");
    await freshHost(cacheDir);
    const [entry] = entries(cacheDir);
    const path = join(cacheDir, entry!);
    const intact = readFileSync(path);
    // Same header, one byte of the configuration flipped: the hash no longer matches.
    const damaged = Buffer.from(intact);
    const flipped = damaged.length - 10;
    damaged[flipped] = damaged[flipped]! ^ 0xff;
    writeFileSync(path, damaged);
    const afterDamage = await freshHost(cacheDir);
    expect(afterDamage.stdout).toBe("42\n");
    expect(afterDamage.phases).toContain("workerd-config-built");

    // Not even a header.
    writeFileSync(path, "garbage");
    const afterGarbage = await freshHost(cacheDir);
    expect(afterGarbage.stdout).toBe("42\n");
    expect(afterGarbage.phases).toContain("workerd-config-built");

    const healed = await freshHost(cacheDir);
    expect(healed.phases).toContain("workerd-config-disk");
  });

  it("drops and rebuilds an entry that checks out but does not start", async () => {
    const cacheDir = join(dir, "unstartable");
    await freshHost(cacheDir);
    const [entry] = entries(cacheDir);
    const path = join(cacheDir, entry!);
    const data = readFileSync(path);
    const newline = data.indexOf(0x0a);
    const header = JSON.parse(data.subarray(0, newline).toString("utf8")) as { configBytes: number; configSha256: string };
    // A well-formed entry whose configuration workerd cannot parse.
    const config = Buffer.from("not a Cap'n Proto message");
    header.configBytes = config.byteLength;
    header.configSha256 = createHash("sha256").update(config).digest("hex");
    writeFileSync(path, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), config]));
    const rebuilt = await freshHost(cacheDir);
    expect(rebuilt.stdout).toBe("42\n");
    expect(rebuilt.phases).toContain("workerd-config-built");
    expect((await freshHost(cacheDir)).phases).toContain("workerd-config-disk");
  });
});
