// Small statistics helpers for the benchmark: nearest-rank percentiles and timing loops.

/** Nearest-rank percentile (p in 0..100) of the samples; undefined for no samples. */
export function percentile(samples: readonly number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary | undefined {
  if (samples.length === 0) return undefined;
  const sum = samples.reduce((total, value) => total + value, 0);
  return {
    n: samples.length,
    p50: percentile(samples, 50)!,
    p95: percentile(samples, 95)!,
    p99: percentile(samples, 99)!,
    min: Math.min(...samples),
    max: Math.max(...samples),
    mean: sum / samples.length,
  };
}

/** Rounds to a fixed number of decimals for the report (keeps null as null). */
export function round(value: number | null | undefined, decimals = 2): number | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

/** Times `count` sequential calls of `fn` (after `warmup` untimed calls); returns ms per call. */
export async function timeEach(
  count: number,
  warmup: number,
  fn: (index: number) => Promise<void>,
): Promise<number[]> {
  for (let index = 0; index < warmup; index += 1) await fn(-1 - index);
  const samples: number[] = [];
  for (let index = 0; index < count; index += 1) {
    const started = performance.now();
    await fn(index);
    samples.push(performance.now() - started);
  }
  return samples;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the GC when node was started with --expose-gc (RSS readings are steadier then). */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}
