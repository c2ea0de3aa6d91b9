// Figures that need a fresh host process: a new `node` that loads an engine and runs one
// guest (`cold_start_first_ms`, from spawning that process to the guest's output reaching
// the parent), and the command-line one-shot (`cli_run_ms_p50`: `secure-exec run hello.mjs`
// beside `node hello.mjs`). Engines take turns sample by sample, so drift in the machine's
// load hits them alike.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { EngineResult } from "./measure.js";
import { percentile, round } from "./stats.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** Printed by every fresh host right after its first result; the CPU it used by then follows. */
const RESULT = "1";

const cpuLine = `process.stdout.write(JSON.stringify({ hostCpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000, extraCpuMs }) + "\\n");`;

/** What a fresh `node` runs for each engine: load it, run `print(1)`, print the result. */
const SCRIPTS: Record<string, { source: string; execArgv?: string[] }> = {
  secure_exec: {
    source: `
      import { readFileSync } from "node:fs";
      const { NodeRuntime } = await import(${JSON.stringify(pathToFileURL(join(root, "dist/runtime/index.js")).href)});
      const runtime = await NodeRuntime.create();
      const result = await runtime.exec("console.log(1)");
      process.stdout.write(result.stdout);
      const procCpu = (pid) => { try { const f = readFileSync("/proc/" + pid + "/stat", "utf8").split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) * 10; } catch { return 0; } };
      const extraCpuMs = runtime.processIds().reduce((total, pid) => total + procCpu(pid), 0);
      ${cpuLine}
      await runtime.dispose();`,
  },
  isolated_vm: {
    // isolated-vm needs this flag on Node >= 20.
    execArgv: ["--no-node-snapshot"],
    source: `
      import { createRequire } from "node:module";
      const ivm = createRequire(import.meta.url)("isolated-vm");
      const isolate = new ivm.Isolate({ memoryLimit: 128 });
      const context = await isolate.createContext();
      let out = "";
      await context.global.set("__print", new ivm.Callback((text) => { out += text + "\\n"; }));
      await context.eval("__print(String(1))");
      process.stdout.write(out);
      const extraCpuMs = 0;
      ${cpuLine}`,
  },
  node_vm: {
    source: `
      import vm from "node:vm";
      let out = "";
      vm.runInContext("__print(String(1))", vm.createContext({ __print: (text) => { out += text + "\\n"; } }));
      process.stdout.write(out);
      const extraCpuMs = 0;
      ${cpuLine}`,
  },
  quickjs_emscripten: {
    source: `
      import { newQuickJSWASMModule } from "quickjs-emscripten";
      const module = await newQuickJSWASMModule();
      const context = module.newContext();
      const result = context.evalCode("String(1)");
      process.stdout.write(context.dump(result.value) + "\\n");
      result.value.dispose();
      context.dispose();
      const extraCpuMs = 0;
      ${cpuLine}`,
  },
  // The process itself is the sandbox: its first result is `node -e`'s own output.
  node_child_process: {
    source: `
      process.stdout.write("1\\n");
      const extraCpuMs = 0;
      ${cpuLine}`,
  },
};

interface Sample {
  /** Spawn → the result line on the parent's side. */
  wallMs: number;
  /** CPU the fresh host (and, for secure-exec, its workerd process) had used by then. */
  cpuMs?: number;
}

/** Spawns `node`, resolves when it has printed `expect` (and later exited), with the wall time to that line. */
function timeChild(args: string[], expectLine: string, env: NodeJS.ProcessEnv, untilExit = false): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    let seenAt: number | undefined;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (seenAt === undefined && stdout.split("\n").slice(0, -1).includes(expectLine)) seenAt = performance.now();
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const ended = performance.now();
      if (code !== 0 || seenAt === undefined) {
        reject(new Error(`exit ${code}: ${(stderr || stdout).trim().slice(0, 300)}`));
        return;
      }
      let cpuMs: number | undefined;
      const statsLine = stdout.split("\n").find((line) => line.startsWith("{"));
      if (statsLine) {
        const stats = JSON.parse(statsLine) as { hostCpuMs: number; extraCpuMs: number };
        cpuMs = stats.hostCpuMs + stats.extraCpuMs;
      }
      resolve({ wallMs: (untilExit ? ended : seenAt) - started, cpuMs });
    });
  });
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

/**
 * Sets `cold_start_first_ms` (headline: a fresh host process to its first result) and
 * `cli_run_ms_p50` on every engine that has them, plus CPU and the uncached first start.
 */
export async function addFreshHostFigures(results: EngineResult[], samples: number, log: (line: string) => void): Promise<void> {
  // Inside the project, so the scripts resolve the engines' packages as the bench does.
  const cache = join(root, "node_modules/.cache");
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, "secure-exec-bench-fresh-"));
  try {
    const engines = results.filter((result) => SCRIPTS[result.key]);
    const files = new Map<string, string>();
    for (const result of engines) {
      const path = join(dir, `${result.key}.mjs`);
      writeFileSync(path, SCRIPTS[result.key]!.source);
      files.set(result.key, path);
    }
    const collected = new Map<string, Sample[]>(engines.map((result) => [result.key, []]));
    log(`fresh host → first result ×${samples}: ${engines.map((result) => result.label).join(", ")}`);
    for (let index = 0; index < samples; index += 1) {
      for (const result of engines) {
        const script = SCRIPTS[result.key]!;
        try {
          collected.get(result.key)!.push(await timeChild([...(script.execArgv ?? []), files.get(result.key)!], RESULT, childEnv()));
        } catch (error) {
          result.errors.push(`fresh host: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
    for (const result of engines) {
      const found = collected.get(result.key)!;
      result.extras.cold_start_first_in_process_ms = result.fields.cold_start_first_ms;
      result.fields.cold_start_first_ms = round(percentile(found.map((sample) => sample.wallMs), 50));
      const cpu = found.flatMap((sample) => (sample.cpuMs === undefined ? [] : [sample.cpuMs]));
      result.fields.cold_start_first_cpu_ms = round(percentile(cpu, 50));
    }

    const secureExec = results.find((result) => result.key === "secure_exec");
    if (secureExec) {
      // The very first start on a machine: no cached workerd configuration, Miniflare builds it.
      log("secure-exec: fresh host with an empty configuration cache");
      try {
        const uncached = await timeChild([files.get("secure_exec")!], RESULT, childEnv({ SECURE_EXEC_CACHE_DIR: join(dir, "empty-cache") }));
        secureExec.extras.cold_start_first_uncached_ms = round(uncached.wallMs);
      } catch (error) {
        secureExec.errors.push(`fresh host, empty cache: ${error instanceof Error ? error.message : String(error)}`);
      }

      log(`CLI one-shot ×${samples}: secure-exec run hello.mjs beside node hello.mjs`);
      const hello = join(dir, "hello.mjs");
      writeFileSync(hello, 'console.log("hello");\n');
      const cli: number[] = [];
      const node: number[] = [];
      for (let index = 0; index < samples; index += 1) {
        try {
          cli.push((await timeChild([join(root, "dist/host/cli.js"), "run", hello], "hello", childEnv(), true)).wallMs);
          node.push((await timeChild([hello], "hello", childEnv(), true)).wallMs);
        } catch (error) {
          secureExec.errors.push(`CLI one-shot: ${error instanceof Error ? error.message : String(error)}`);
          break;
        }
      }
      secureExec.fields.cli_run_ms_p50 = round(percentile(cli, 50));
      secureExec.fields.node_file_ms_p50 = round(percentile(node, 50));
      const nodeChild = results.find((result) => result.key === "node_child_process");
      // For the `node` peer, its one-shot is `node hello.mjs`: the ratio row compares the two.
      if (nodeChild) {
        nodeChild.fields.cli_run_ms_p50 = secureExec.fields.node_file_ms_p50;
        nodeChild.fields.node_file_ms_p50 = secureExec.fields.node_file_ms_p50;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
