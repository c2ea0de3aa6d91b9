// The measurement plan every engine goes through, and what comes out of it.
import { percentile, round, summarize, sleep, timeEach, type Summary } from "./stats.js";
import {
  cpuWorkload,
  hostCallsWorkload,
  jsonWorkload,
  printWorkload,
  repeatWorkload,
  spinWorkload,
  trivialWorkload,
  type Workload,
} from "./workloads.js";
import type { Engine } from "./engines/engine.js";

export const HEADLINE_FIELDS = [
  "cold_start_first_ms",
  "cli_run_ms_p50",
  "cold_start_ms_p50",
  "warm_exec_ms_p50",
  "warm_exec_ms_p99",
  "repeat_exec_ms_p50",
  "resident_exec_ms_p50",
  "tool_roundtrip_ms_p50",
  "throughput_exec_per_s",
  "timeout_overshoot_ms_p99",
  "rss_mb_per_concurrent_run",
] as const;

export const EXTRA_FIELDS = [
  "cold_start_first_cpu_ms",
  "node_file_ms_p50",
  "cold_start_host_stall_ms_max",
  "warm_exec_ms_p95",
  "cpu_loop_1e6_ms_p50",
  "json_100kb_ms_p50",
  "host_calls_10_ms_p50",
  "after_timeout_exec_ms_p50",
] as const;

export type HeadlineField = (typeof HEADLINE_FIELDS)[number];
export type ExtraField = (typeof EXTRA_FIELDS)[number];
export type Fields = Record<HeadlineField | ExtraField, number | null>;

/** Fields where a larger number is better (the rest: smaller is better). */
export const HIGHER_IS_BETTER = new Set<string>(["throughput_exec_per_s"]);

export interface Plan {
  coldStarts: number;
  warm: number;
  repeat: number;
  resident: number;
  cpu: number;
  json: number;
  hostCalls: number;
  throughputRounds: number;
  concurrency: number;
  timeouts: number;
  rssRuns: number;
  warmup: number;
  timeoutMs: number;
}

export interface EngineResult {
  key: string;
  label: string;
  isolation: string;
  fields: Fields;
  /** Per-workload latency summaries (ms), for the detail table. */
  workloads: Record<string, Summary | undefined>;
  extras: Record<string, number | null>;
  notes: string[];
  errors: string[];
  elapsedMs: number;
}

let uniqueCounter = 0;

async function runChecked(engine: Engine, workload: Workload): Promise<void> {
  const output = await engine.run(workload);
  if (!output.ok) throw new Error(`${workload.id}: ${output.error ?? "failed"}`);
  workload.check(output);
}

function emptyFields(): Fields {
  const fields = {} as Fields;
  for (const field of [...HEADLINE_FIELDS, ...EXTRA_FIELDS]) fields[field] = null;
  return fields;
}

export async function measureEngine(engine: Engine, plan: Plan, log: (line: string) => void): Promise<EngineResult> {
  const started = performance.now();
  const fields = emptyFields();
  const workloads: Record<string, Summary | undefined> = {};
  const extras: Record<string, number | null> = {};
  const errors: string[] = [];
  fields.cold_start_first_ms = round(engine.firstRunMs);

  const step = async (name: string, body: () => Promise<void>): Promise<void> => {
    log(`  ${engine.label}: ${name}`);
    try {
      await body();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      errors.push(`${name}: ${message}`);
      log(`  ${engine.label}: ${name} FAILED: ${message}`);
    }
  };

  await step(`cold start ×${plan.coldStarts}`, async () => {
    const totals: number[] = [];
    const phases = new Map<string, number[]>();
    // How long the host's own event loop is held up while an engine starts (other work waits).
    const tickMs = 5;
    let lastTick = performance.now();
    let worstStall = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worstStall = Math.max(worstStall, now - lastTick - tickMs);
      lastTick = now;
    }, tickMs);
    try {
      for (let index = 0; index < plan.coldStarts; index += 1) {
        const cold = await engine.coldStart();
        totals.push(cold.totalMs);
        for (const [phase, ms] of Object.entries(cold.phases ?? {})) {
          phases.set(phase, [...(phases.get(phase) ?? []), ms]);
        }
      }
    } finally {
      clearInterval(ticker);
    }
    fields.cold_start_host_stall_ms_max = round(Math.max(0, worstStall));
    workloads["cold start"] = summarize(totals);
    fields.cold_start_ms_p50 = round(percentile(totals, 50));
    for (const [phase, samples] of phases) extras[`cold_${phase}_p50`] = round(percentile(samples, 50));
  });

  await step(`warm exec, new code ×${plan.warm}`, async () => {
    const samples = await timeEach(plan.warm, plan.warmup, () => runChecked(engine, printWorkload(++uniqueCounter)));
    const summary = summarize(samples);
    workloads["warm exec (new code)"] = summary;
    fields.warm_exec_ms_p50 = round(summary?.p50);
    fields.warm_exec_ms_p95 = round(summary?.p95);
    fields.warm_exec_ms_p99 = round(summary?.p99);
  });

  await step(`repeat exec, same code ×${plan.repeat}`, async () => {
    const samples = await timeEach(plan.repeat, plan.warmup, () => runChecked(engine, repeatWorkload));
    workloads["repeat exec (same code)"] = summarize(samples);
    fields.repeat_exec_ms_p50 = round(percentile(samples, 50));
  });

  await step(`resident exec ×${plan.resident}`, async () => {
    const session = await engine.openResident();
    if (!session) return;
    try {
      const samples = await timeEach(plan.resident, plan.warmup, (index) =>
        session.eval(`globalThis.counter = (globalThis.counter || 0) + ${index};`),
      );
      workloads["resident exec"] = summarize(samples);
      fields.resident_exec_ms_p50 = round(percentile(samples, 50), 3);
    } finally {
      await session.dispose();
    }
  });

  await step(`CPU loop 1e6 ×${plan.cpu}`, async () => {
    const samples = await timeEach(plan.cpu, 1, () => runChecked(engine, cpuWorkload));
    workloads["cpu loop 1e6"] = summarize(samples);
    fields.cpu_loop_1e6_ms_p50 = round(percentile(samples, 50));
  });

  await step(`100 KB JSON result ×${plan.json}`, async () => {
    const samples = await timeEach(plan.json, 1, () => runChecked(engine, jsonWorkload));
    workloads["json 100 KB result"] = summarize(samples);
    fields.json_100kb_ms_p50 = round(percentile(samples, 50));
  });

  await step(`host calls 1/10/101 ×${plan.hostCalls}`, async () => {
    const variants = [1, 10, 101].map((calls) => ({ calls, workload: hostCallsWorkload(calls), samples: [] as number[] }));
    for (const variant of variants) await runChecked(engine, variant.workload);
    // Interleaved so that drift in machine load hits all three alike.
    for (let index = 0; index < plan.hostCalls; index += 1) {
      for (const variant of variants) {
        const begun = performance.now();
        await runChecked(engine, variant.workload);
        variant.samples.push(performance.now() - begun);
      }
    }
    for (const variant of variants) workloads[`run with ${variant.calls} host call(s)`] = summarize(variant.samples);
    const [one, ten, many] = variants.map((variant) => percentile(variant.samples, 50));
    fields.host_calls_10_ms_p50 = round(ten);
    if (one !== undefined && many !== undefined) fields.tool_roundtrip_ms_p50 = round((many - one) / 100, 4);
  });

  await step(`throughput ${plan.throughputRounds}×${plan.concurrency} concurrent`, async () => {
    let completed = 0;
    let failed = 0;
    let elapsed = 0;
    let firstFailure: string | undefined;
    const rounds: number[] = [];
    for (let round_ = 0; round_ < plan.throughputRounds; round_ += 1) {
      const begun = performance.now();
      const outputs = await Promise.all(Array.from({ length: plan.concurrency }, () => engine.run(trivialWorkload)));
      const took = performance.now() - begun;
      elapsed += took;
      rounds.push(took);
      for (const output of outputs) {
        try {
          if (!output.ok) throw new Error(output.error);
          trivialWorkload.check(output);
          completed += 1;
        } catch (error) {
          failed += 1;
          firstFailure ??= error instanceof Error ? error.message : String(error);
        }
      }
    }
    workloads[`${plan.concurrency} concurrent runs (per round)`] = summarize(rounds);
    fields.throughput_exec_per_s = round((completed / elapsed) * 1000, 1);
    extras.throughput_concurrency = plan.concurrency;
    extras.throughput_failed_runs = failed;
    if (failed > 0) {
      errors.push(`throughput: ${failed} of ${completed + failed} runs failed (not counted), first: ${firstFailure?.trim().slice(0, 200)}`);
    }
  });

  await step(`RSS with ${plan.rssRuns} concurrent runs`, async () => {
    fields.rss_mb_per_concurrent_run = round(await engine.rssPerConcurrentRunMb(plan.rssRuns), 3);
  });

  await step(`timeout ${plan.timeoutMs} ms on while(true) ×${plan.timeouts}`, async () => {
    const overshoots: number[] = [];
    const after: number[] = [];
    for (let index = 0; index < plan.timeouts; index += 1) {
      const begun = performance.now();
      const output = await engine.run(spinWorkload, { timeoutMs: plan.timeoutMs });
      overshoots.push(performance.now() - begun - plan.timeoutMs);
      if (output.ok) throw new Error("while(true) ended without being stopped");
      // The next run pays for whatever the kill left behind (e.g. a replaced process).
      const next = performance.now();
      await runChecked(engine, printWorkload(++uniqueCounter));
      after.push(performance.now() - next);
      await sleep(50);
    }
    workloads["timeout overshoot"] = summarize(overshoots);
    workloads["first exec after a timeout"] = summarize(after);
    fields.timeout_overshoot_ms_p99 = round(percentile(overshoots, 99));
    fields.after_timeout_exec_ms_p50 = round(percentile(after, 50));
  });

  if (engine.diagnostics) {
    const diagnostics = engine.diagnostics;
    await step("diagnostics", async () => {
      const found = await diagnostics.call(engine, { concurrency: plan.concurrency, throughputRounds: plan.throughputRounds }, log);
      for (const [key, value] of Object.entries(found)) extras[key] = typeof value === "number" ? round(value, 3) : value;
    });
  }

  for (const [key, value] of Object.entries(engine.extras())) extras[key] = typeof value === "number" ? round(value, 3) : value;
  return {
    key: engine.key,
    label: engine.label,
    isolation: engine.isolation,
    fields,
    workloads,
    extras,
    notes: engine.notes,
    errors,
    elapsedMs: performance.now() - started,
  };
}
