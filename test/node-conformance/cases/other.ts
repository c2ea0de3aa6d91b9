import type { ConformanceCase } from "../types.js";

export const title = "other builtins";
export default [
  { name: "other: node:test runs a test", code: `import test from "node:test";\ntest("adds", () => { if (1 + 1 !== 2) throw new Error("math") });`, note: "compares the exit code only; the reporter output differs by version" },
  { name: "other: node:test mock", code: `import { mock } from "node:test";\nconst fn = mock.fn((x) => x * 2); fn(2); fn(3); console.log(fn.mock.callCount(), fn.mock.calls.map((c) => c.result));` },
  { name: "other: punycode", code: `import punycode from "node:punycode";\nconsole.log(punycode.encode("mañana"), punycode.toASCII("mañana.com"));` },
  { name: "other: tty isatty", code: `import tty from "node:tty";\nconsole.log(tty.isatty(1), process.stdout.isTTY);` },
  { name: "other: module.builtinModules count sane", code: `import { builtinModules } from "node:module";\nconsole.log(builtinModules.length > 30, builtinModules.includes("worker_threads"));` },
  { name: "other: constants module", code: `import constants from "node:constants";\nconsole.log(constants.ENOENT, constants.O_RDONLY);` },
  { name: "other: cluster isPrimary", code: `import cluster from "node:cluster";\nconsole.log(cluster.isPrimary, cluster.isWorker);` },
  { name: "other: inspector url", code: `import inspector from "node:inspector";\nconsole.log(inspector.url());` },
  { name: "other: sys alias of util", code: `import sys from "node:sys"; import util from "node:util";\nconsole.log(sys.format === util.format);` },
  { name: "other: sqlite", code: `const m = await import("node:sqlite").catch((e) => ({ error: e.code }));\nconsole.log(Object.keys(m).includes("DatabaseSync") || m.error);`, node22: { stdout: "true\n", stderrClass: "output", reason: "node:sqlite needs no flag from Node 22.13, and warns that it is experimental" } },
  { name: "other: sqlite DatabaseSync", code: `import { DatabaseSync } from "node:sqlite";\nconst db = new DatabaseSync(":memory:"); db.exec("CREATE TABLE t (x)"); db.prepare("INSERT INTO t VALUES (?)").run(1);\nconsole.log(db.prepare("SELECT x FROM t").all());`, node22: { stdout: "[ [Object: null prototype] { x: 1 } ]\n", stderrClass: "output", reason: "node:sqlite needs no flag from Node 22.13, and warns that it is experimental" } },
  { name: "other: trace_events", code: `import te from "node:trace_events";\nconsole.log(typeof te.createTracing);` },
] satisfies ConformanceCase[];
