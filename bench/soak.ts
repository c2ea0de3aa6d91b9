// `npm run soak`: many sequential runs, then mixed concurrent load with periodic runaways.
// Reports resident memory over time and fails (exit 1) on lost or hung runs, or when memory
// keeps growing after warm-up (more than 10 % between the first and last thirds).
import { NodeRuntime } from "../runtime/index.js";
import { round, summarize } from "./stats.js";

const args = new Set(process.argv.slice(2));
const quick = args.has("--quick");
const sequentialRuns = quick ? 1_000 : 10_000;
const mixedRounds = quick ? 20 : 100;
const burst = 20;
const hungAfterMs = 30_000;

const collectGarbage = (globalThis as { gc?: () => void }).gc;

function hostRssMb(): number {
  collectGarbage?.();
  return process.memoryUsage().rss / 1024 / 1024;
}

function workerdRssMb(runtime: NodeRuntime): number {
  return runtime.stats().processes.reduce((total, p) => total + (p.rssKb ?? 0), 0) / 1024;
}

async function withWatchdog<T>(work: Promise<T>): Promise<T | "hung"> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), hungAfterMs)));
  try {
    return await Promise.race([work, hung]);
  } finally {
    clearTimeout(timer);
  }
}

const runtime = await NodeRuntime.create();
const samples: { phase: "sequential" | "mixed"; runs: number; hostMb: number; workerdMb: number }[] = [];
let lost = 0;
let hung = 0;
let runs = 0;
const latencies: number[] = [];
const started = performance.now();

const check = async (index: number): Promise<void> => {
  const t = performance.now();
  const result = await withWatchdog(runtime.run(`__return(${index} * 2)`));
  latencies.push(performance.now() - t);
  runs += 1;
  if (result === "hung") hung += 1;
  else if (result.exitCode !== 0 || result.value !== index * 2) lost += 1;
};

for (let i = 0; i < sequentialRuns; i++) {
  await check(i);
  if (i % Math.max(1, Math.floor(sequentialRuns / 20)) === 0) {
    samples.push({ phase: "sequential", runs, hostMb: hostRssMb(), workerdMb: workerdRssMb(runtime) });
    process.stderr.write(`soak: ${runs} runs, host ${hostRssMb().toFixed(0)} MB, workerd ${workerdRssMb(runtime).toFixed(0)} MB\n`);
  }
}

let runawaysKilled = 0;
for (let round = 0; round < mixedRounds; round++) {
  const work: Promise<void>[] = Array.from({ length: burst }, (_, i) => check(round * burst + i));
  if (round % 5 === 0) {
    work.push(
      (async () => {
        const result = await withWatchdog(runtime.exec("while (true) {}", { timeout: 200 }));
        if (result === "hung") hung += 1;
        else if (result.exitCode === 137) runawaysKilled += 1;
        else lost += 1;
      })(),
    );
  }
  await Promise.all(work);
  samples.push({ phase: "mixed", runs, hostMb: hostRssMb(), workerdMb: workerdRssMb(runtime) });
}
await runtime.dispose();

// Growth after warm-up (the first fifth of each phase's samples is warm-up):
// - host: mean of the last third against the mean of the first third;
// - workerd: its RSS is a sawtooth (processes accumulate isolates until they are recycled,
//   and the mixed phase runs more processes), so the peak of the last third is compared
//   with the peak of the first third, phase by phase.
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const thirds = (values: number[]) => {
  const steady = values.slice(Math.floor(values.length / 5));
  const third = Math.max(1, Math.floor(steady.length / 3));
  return { first: steady.slice(0, third), last: steady.slice(-third) };
};
const hostSeries = thirds(samples.map((s) => s.hostMb));
const hostGrowth = (mean(hostSeries.last) - mean(hostSeries.first)) / mean(hostSeries.first);
let workerdGrowth = 0;
for (const phase of ["sequential", "mixed"] as const) {
  const series = thirds(samples.filter((s) => s.phase === phase).map((s) => s.workerdMb));
  if (series.first.length === 0) continue;
  workerdGrowth = Math.max(workerdGrowth, (Math.max(...series.last) - Math.max(...series.first)) / Math.max(...series.first));
}
const latency = summarize(latencies)!;
const report = {
  runs,
  lost,
  hung,
  runaways_killed: runawaysKilled,
  seconds: round((performance.now() - started) / 1000, 1),
  latency_ms: { p50: round(latency.p50), p95: round(latency.p95), p99: round(latency.p99), max: round(latency.max) },
  host_rss_growth_pct: round(hostGrowth * 100, 1),
  workerd_rss_growth_pct: round(workerdGrowth * 100, 1),
  rss_samples: samples.map((s) => ({ phase: s.phase, runs: s.runs, host_mb: round(s.hostMb, 1), workerd_mb: round(s.workerdMb, 1) })),
};
console.log(JSON.stringify(report));
const failures: string[] = [];
if (lost > 0) failures.push(`${lost} lost runs`);
if (hung > 0) failures.push(`${hung} hung runs`);
if (hostGrowth > 0.1) failures.push(`host RSS grew ${(hostGrowth * 100).toFixed(1)} % after warm-up`);
if (workerdGrowth > 0.1) failures.push(`workerd RSS grew ${(workerdGrowth * 100).toFixed(1)} % after warm-up`);
if (failures.length > 0) {
  console.error(`soak failed: ${failures.join("; ")}`);
  process.exit(1);
}
console.error("soak passed");
process.exit(0);
