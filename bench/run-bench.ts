// Benchmark: secure-exec and its peers, in one run, on the same workloads.
//
//   npm run bench                       full run (a few minutes)
//   npm run bench -- --quick --json     under a minute; the last stdout line is one JSON object
//   options: --html (writes bench/report.html), --with-isolated-vm (may compile the addon in
//            --quick too), --only=secure_exec,node_vm (subset of engines)
//
// Progress goes to stderr; tables (and the JSON line) to stdout.
import { writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { IsolatedVmEngine, loadIsolatedVm, type IsolatedVmLoad } from "./engines/isolated-vm.js";
import { NodeChildEngine } from "./engines/node-child.js";
import { NodeVmEngine } from "./engines/node-vm.js";
import { QuickJsEngine } from "./engines/quickjs.js";
import { SecureExecEngine } from "./engines/secure-exec.js";
import { measureCodemode } from "./codemode.js";
import type { Engine } from "./engines/engine.js";
import { addFreshHostFigures } from "./fresh-host.js";
import { measureEngine, type EngineResult, type Plan } from "./measure.js";
import { htmlReport, jsonReport, textReport, type JsonValue, type Unavailable } from "./report.js";
import { printWorkload } from "./workloads.js";

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const wantJson = argv.includes("--json");
const wantHtml = argv.includes("--html");
const withIsolatedVm = argv.includes("--with-isolated-vm");
const only = argv
  .find((arg) => arg.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",")
  .filter(Boolean);

const QUICK: Plan = {
  coldStarts: 3,
  warm: 30,
  repeat: 20,
  resident: 200,
  cpu: 5,
  json: 8,
  hostCalls: 5,
  throughputRounds: 1,
  concurrency: 100,
  timeouts: 3,
  rssRuns: 20,
  warmup: 3,
  timeoutMs: 100,
};

const FULL: Plan = {
  coldStarts: 10,
  warm: 300,
  repeat: 200,
  resident: 2000,
  cpu: 20,
  json: 30,
  hostCalls: 20,
  throughputRounds: 5,
  concurrency: 100,
  timeouts: 10,
  // 50 waiting runs exceed secure-exec's default per-process memory cap (the process is
  // killed: see docs/benchmarks.md), so the RSS burst stays at 20 in both modes.
  rssRuns: 20,
  warmup: 10,
  timeoutMs: 100,
};

/** A process per run costs ~50 ms of CPU or more: fewer samples keep the run short. */
function childProcessPlan(plan: Plan): Plan {
  return {
    ...plan,
    coldStarts: quick ? 3 : 10,
    warm: quick ? 8 : 50,
    repeat: quick ? 8 : 50,
    cpu: quick ? 3 : 10,
    json: quick ? 3 : 10,
    hostCalls: quick ? 3 : 10,
    // 100 node processes at once take ~15 s on 2 CPUs; --quick uses 25.
    concurrency: quick ? 25 : 100,
    throughputRounds: quick ? 1 : 2,
    timeouts: quick ? 3 : 5,
    rssRuns: quick ? 8 : 20,
    warmup: 1,
  };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function wanted(key: string): boolean {
  return !only || only.includes(key);
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");
}

async function main(): Promise<void> {
  const begun = performance.now();
  const plan = quick ? QUICK : FULL;
  const meta: Record<string, JsonValue> = {
    mode: quick ? "quick" : "full",
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    loadavg_start: loadAverage(),
  };
  const results: EngineResult[] = [];
  const unavailable: Unavailable[] = [];

  // isolated-vm first: a rebuild (if one is needed and allowed) must not overlap measurements.
  let isolatedVm: IsolatedVmLoad | undefined;
  if (wanted("isolated_vm")) isolatedVm = loadIsolatedVm(withIsolatedVm || !quick, log);

  // secure-exec first of all, so its very first create really is the first (no spare process yet).
  if (wanted("secure_exec")) {
    log("secure-exec: first create …");
    let engine: SecureExecEngine | undefined;
    try {
      // The host refills its spare a second after a handoff; the gap lets it finish starting.
      engine = await SecureExecEngine.create(1_500);
      const result = await measureEngine(engine, plan, log);
      for (const phase of engine.bootPhases) {
        result.extras[`boot_first_${phase.phase.replace(/[^A-Za-z0-9]+/g, "_").replace(/^_|_$/g, "")}_ms`] =
          Math.round(phase.durationMs * 100) / 100;
      }
      await measureCodemode(quick ? 20 : 100, log).then(
        (figures) => Object.assign(result.extras, figures),
        (error: unknown) => log(`codemode: not measured: ${error instanceof Error ? error.message : String(error)}`),
      );
      results.push(result);
    } catch (error) {
      unavailable.push({ key: "secure_exec", label: "secure-exec", reason: error instanceof Error ? error.message : String(error) });
    } finally {
      await engine?.dispose().catch(() => {});
    }
  }

  const peers: { key: string; label: string; create: () => Promise<Engine>; plan?: Plan }[] = [
    { key: "node_vm", label: "node:vm", create: () => NodeVmEngine.create(printWorkload(0)) },
    { key: "quickjs_emscripten", label: "quickjs-emscripten", create: () => QuickJsEngine.create(printWorkload(0)) },
    {
      key: "isolated_vm",
      label: "isolated-vm",
      create: async () => {
        if (!isolatedVm || !("ivm" in isolatedVm)) throw new Error(isolatedVm && "reason" in isolatedVm ? isolatedVm.reason : "not loaded");
        return IsolatedVmEngine.create(isolatedVm.ivm, isolatedVm.loadMs, printWorkload(0));
      },
    },
    {
      key: "node_child_process",
      label: "node -e (child process)",
      create: () => NodeChildEngine.create(printWorkload(0)),
      plan: childProcessPlan(plan),
    },
  ];
  for (const peer of peers) {
    if (!wanted(peer.key)) continue;
    log(`${peer.label}: setting up …`);
    let engine: Engine;
    try {
      engine = await peer.create();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log(`${peer.label}: unavailable: ${reason}`);
      unavailable.push({ key: peer.key, label: peer.label, reason });
      continue;
    }
    try {
      results.push(await measureEngine(engine, peer.plan ?? plan, log));
    } finally {
      await engine.dispose().catch(() => {});
    }
  }

  // Fresh host processes last, so that they overlap no other measurement.
  await addFreshHostFigures(results, quick ? 5 : 10, log);

  meta.loadavg_end = loadAverage();
  meta.elapsed_s = Math.round((performance.now() - begun) / 100) / 10;
  meta.note = "2-CPU machine shared with other work: figures are noisy; compare within one run";

  process.stdout.write(`${textReport(results, unavailable, meta)}\n`);
  if (wantHtml) {
    const path = fileURLToPath(new URL("../../bench/report.html", import.meta.url));
    writeFileSync(path, htmlReport(results, unavailable, meta));
    log(`wrote ${path}`);
  }
  if (wantJson) process.stdout.write(`${JSON.stringify(jsonReport(results, unavailable, meta))}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
