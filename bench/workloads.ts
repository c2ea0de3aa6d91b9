// The workloads every engine runs. A workload is the body of an async function written
// against three helpers that each engine provides in its own way:
//   print(x)       – one line of output (console.log where the engine has one)
//   hostAdd(a, b)  – a call into the host (a secure-exec tool, an IPC message, a host function)
//   ret(value)     – hands a JSON-serialisable value back to the host
// so all engines run the same guest logic and the host checks every answer.

export interface Workload {
  id: string;
  body: string;
  /** Whether the body calls `hostAdd` (engines that need a channel for it open one only then). */
  usesHost: boolean;
  /** Checks what came back; throws on a wrong answer so a broken run is never timed as a good one. */
  check: (result: { stdout: string; value: unknown }) => void;
}

function expectStdout(expected: string): Workload["check"] {
  return ({ stdout }) => {
    if (stdout.trim() !== expected) throw new Error(`expected stdout ${JSON.stringify(expected)}, got ${JSON.stringify(stdout.slice(0, 200))}`);
  };
}

function expectValue(expected: unknown): Workload["check"] {
  return ({ value }) => {
    if (JSON.stringify(value) !== JSON.stringify(expected)) {
      throw new Error(`expected value ${JSON.stringify(expected)}, got ${JSON.stringify(value)?.slice(0, 200)}`);
    }
  };
}

/** New code every time: `print(<n>)`. */
export function printWorkload(n: number): Workload {
  return { id: `print-${n}`, body: `print(${n});`, usesHost: false, check: expectStdout(String(n)) };
}

/** The same source every time. */
export const repeatWorkload: Workload = {
  id: "repeat",
  body: `print("same code");`,
  usesHost: false,
  check: expectStdout("same code"),
};

const LOOP_SUM = (() => {
  let sum = 0;
  for (let i = 0; i < 1e6; i += 1) sum += i % 7;
  return sum;
})();

/** CPU-bound: a 1e6-iteration loop. */
export const cpuWorkload: Workload = {
  id: "cpu-loop-1e6",
  body: `let sum = 0; for (let i = 0; i < 1e6; i++) sum += i % 7; ret(sum);`,
  usesHost: false,
  check: expectValue(LOOP_SUM),
};

export const JSON_ITEMS = 880;
/** A ~100 KB JSON value handed back to the host. */
export const jsonWorkload: Workload = {
  id: "json-100kb",
  body:
    `const items = []; for (let i = 0; i < ${JSON_ITEMS}; i++) items.push({ id: i, name: "item-" + i, active: i % 2 === 0, ` +
    `score: i * 0.5, tags: ["alpha", "beta"], note: "lorem ipsum dolor sit amet" }); ret(items);`,
  usesHost: false,
  check: ({ value }) => {
    if (!Array.isArray(value) || value.length !== JSON_ITEMS) throw new Error("json-100kb: wrong value");
    const bytes = JSON.stringify(value).length;
    if (bytes < 95_000 || bytes > 110_000) throw new Error(`json-100kb: ${bytes} bytes`);
  },
};

/** `calls` sequential host calls, each waiting for the previous answer. */
export function hostCallsWorkload(calls: number): Workload {
  return {
    id: `host-calls-${calls}`,
    body: `let total = 0; for (let i = 0; i < ${calls}; i++) total = await hostAdd(total, 1); ret(total);`,
    usesHost: true,
    check: expectValue(calls),
  };
}

/** Never ends on its own: the engine's time limit must stop it. */
export const spinWorkload: Workload = {
  id: "spin",
  body: `while (true) {}`,
  usesHost: false,
  check: () => {},
};

/** Fixed-size sample of output a trivial run makes; used for throughput. */
export const trivialWorkload: Workload = {
  id: "trivial",
  body: `print("ok");`,
  usesHost: false,
  check: expectStdout("ok"),
};
