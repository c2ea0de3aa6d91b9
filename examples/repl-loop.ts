// A REPL-style evaluation loop on a resident runner: each snippet sees what the previous
// ones defined, errors do not end the session, and a warm exec costs a fraction of a ms.
// Run: npx tsc -p . && node dist/examples/repl-loop.js
import { NodeRuntime } from "../runtime/index.js";

const snippets = [
  "const prices = { apple: 1.2, pear: 0.8 };\nObject.keys(prices)",
  "function total(basket) { return basket.reduce((sum, item) => sum + prices[item], 0); }",
  'console.log("basket total: %d", total(["apple", "pear", "apple"]))',
  "const rate = await new Promise((resolve) => setTimeout(() => resolve(1.1), 10));\nrate",
  'Math.round(total(["apple"]) * rate * 100) / 100',
  'prices.kiwi.toFixed(2) // a mistake: the session survives it',
  '__return({ fruits: Object.keys(prices).length, rate })',
];

const runtime = await NodeRuntime.create();
try {
  const runner = await runtime.createResidentRunner({ timeout: 2_000 });
  for (const [index, code] of snippets.entries()) {
    const started = performance.now();
    const { stdout, stderr, exitCode, value } = await runner.exec(code);
    const elapsed = (performance.now() - started).toFixed(2);
    console.log(`In [${index + 1}]: ${code.replace(/\n/g, "\n         ")}`);
    if (stdout) process.stdout.write(indent(stdout));
    if (stderr) process.stdout.write(indent(stderr.split("\n").slice(0, 2).join("\n") + "\n"));
    console.log(`Out[${index + 1}]: ${value === undefined ? "" : JSON.stringify(value)}  (exit ${exitCode}, ${elapsed} ms)\n`);
  }

  // Warm exec latency: the whole round trip of a trivial snippet (after a few hundred to warm up).
  for (let round = 0; round < 500; round += 1) await runner.exec("globalThis.counter = 0");
  const times: number[] = [];
  for (let round = 0; round < 2_000; round += 1) {
    const started = performance.now();
    await runner.exec("globalThis.counter = (globalThis.counter ?? 0) + 1");
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (fraction: number): string => times[Math.floor(fraction * (times.length - 1))]!.toFixed(3);
  console.log(`warm exec over ${times.length} snippets: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms`);
} finally {
  // Disposing the runtime disposes its resident runners too.
  await runtime.dispose();
}

function indent(text: string): string {
  return text.replace(/^/gm, "    ").replace(/ +$/, "");
}
