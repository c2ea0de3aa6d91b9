// The differential suite: every case of cases/ runs under the host's `node` and in one shared
// sandbox runtime, and must agree (or be a listed difference; see differences.ts).
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeRuntime } from "../../runtime/index.js";
import { loadCorpus } from "./corpus.js";
import { renderCompatibilityDoc } from "./compatibility-doc.js";
import { DESIGNED_DIFFERENCES, KNOWN_GAPS, matchesDesignedDifference } from "./differences.js";
import { mapLimited, prepareSandbox, runInSandbox, runOnHost, identical, type CaseResult } from "./harness.js";
import type { ConformanceCase } from "./types.js";

const corpus = await loadCorpus();
// CONFORMANCE_FILTER=text runs only the cases whose name contains it (while working on them).
const filter = process.env.CONFORMANCE_FILTER;
for (const file of corpus) file.cases = file.cases.filter((testCase) => !filter || testCase.name.includes(filter));
const allCases = corpus.flatMap((file) => file.cases.map((testCase) => ({ builtin: file.builtin, testCase })));
const CONCURRENCY = 4;
const WAIT_MS = 300_000;

let runtime: NodeRuntime;
const pending = new Map<string, Promise<CaseResult>>();

beforeAll(async () => {
  runtime = await NodeRuntime.create({ limits: { processes: 2 } });
  await prepareSandbox(runtime, allCases.map((entry) => entry.testCase));
  // Each case's result is started here and awaited by its own test, CONCURRENCY at a time.
  const resolvers = new Map<string, (result: CaseResult) => void>();
  for (const { testCase } of allCases) {
    pending.set(testCase.name, new Promise((resolve) => resolvers.set(testCase.name, resolve)));
  }
  void mapLimited(allCases, CONCURRENCY, async ({ builtin, testCase }) => {
    const resolve = resolvers.get(testCase.name)!;
    try {
      const started = performance.now();
      const [host, sandbox] = await Promise.all([runOnHost(testCase), runInSandbox(runtime, testCase)]);
      resolve({ testCase, builtin, host, sandbox, identical: identical(host, sandbox), ms: Math.round(performance.now() - started) });
    } catch (error) {
      const failed = { stdout: "", stderr: String(error), exitCode: -1, hung: false, stderrClass: `harness error: ${String(error)}` };
      resolve({ testCase, builtin, host: failed, sandbox: failed, identical: false });
    }
  });
});

afterAll(async () => {
  const results = await Promise.all(pending.values());
  const same = results.filter((result) => result.identical).length;
  const hangs = results.filter((result) => result.sandbox.hung).length;
  console.log(`node conformance: ${same} of ${results.length} identical, ${hangs} hangs`);
  const fixed = results.filter((result) => result.identical && KNOWN_GAPS[result.testCase.name] !== undefined);
  if (fixed.length > 0) console.log(`identical now, to remove from KNOWN_GAPS: ${fixed.map((result) => result.testCase.name).join(", ")}`);
  // The latest results, for inspection (`node -e` over it) without re-running.
  writeFileSync(join(tmpdir(), "secure-exec-conformance-results.json"), JSON.stringify(results, null, 1));
  if (process.env.CONFORMANCE_DOC && !filter) {
    const doc = renderCompatibilityDoc(corpus, results, process.version);
    writeFileSync(fileURLToPath(new URL("../../docs/node-compatibility.md", import.meta.url)), doc);
  }
  await runtime?.dispose();
}, WAIT_MS);

function describeDifference(result: CaseResult): string {
  const { host, sandbox } = result;
  return [
    `node:    exit ${host.exitCode}, stderr ${host.stderrClass}${host.hung ? " (hung)" : ""}`,
    `sandbox: exit ${sandbox.exitCode}, stderr ${sandbox.stderrClass}${sandbox.hung ? " (hung)" : ""}`,
    `node stdout:    ${JSON.stringify(host.stdout)}`,
    `sandbox stdout: ${JSON.stringify(sandbox.stdout)}`,
    `sandbox stderr: ${sandbox.stderr.slice(0, 600)}`,
    `node stderr:    ${host.stderr.slice(0, 600)}`,
  ].join("\n");
}

async function check(testCase: ConformanceCase): Promise<void> {
  const result = await pending.get(testCase.name)!;
  const designed = DESIGNED_DIFFERENCES[testCase.name];
  if (designed) {
    expect(matchesDesignedDifference(designed, result.sandbox), `expected the clear error ${designed.expect.stderr ?? designed.expect.stdout}\n${describeDifference(result)}`).toBe(true);
    return;
  }
  // A known gap may start matching (fixed, or timing-dependent): the summary names it.
  if (KNOWN_GAPS[testCase.name] !== undefined) return;
  expect(result.identical, describeDifference(result)).toBe(true);
}

for (const file of corpus.filter((entry) => entry.cases.length > 0)) {
  describe(file.title, () => {
    for (const testCase of file.cases) it(testCase.name, () => check(testCase), WAIT_MS);
  });
}
