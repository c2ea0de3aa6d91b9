import type { ConformanceCase } from "../types.js";

export const title = "os";
export default [
  { name: "os: platform type EOL", code: `import os from "node:os";\nconsole.log(os.platform(), os.type(), JSON.stringify(os.EOL), os.endianness());` },
  { name: "os: cpus nonempty", code: `import os from "node:os";\nconst c = os.cpus(); console.log(c.length > 0, typeof c[0]?.model, typeof c[0]?.times?.user, os.availableParallelism() > 0);` },
  { name: "os: memory figures positive", code: `import os from "node:os";\nconsole.log(os.totalmem() > 0, os.freemem() > 0, os.freemem() <= os.totalmem());` },
  { name: "os: tmpdir homedir hostname strings", code: `import os from "node:os";\nconsole.log(typeof os.tmpdir(), typeof os.homedir(), typeof os.hostname(), os.tmpdir().startsWith("/"));` },
  { name: "os: userInfo shape", code: `import os from "node:os";\nconst u = os.userInfo(); console.log(typeof u.username, typeof u.uid, typeof u.homedir);` },
  { name: "os: worker pool sizing", code: `import os from "node:os";\nconst size = Math.max(1, Math.min(4, os.cpus().length - 1 || 1)); console.log(size >= 1, Number.isInteger(size));` },
  { name: "os: named imports", code: `import { cpus, totalmem, EOL, platform } from "node:os";\nconsole.log(cpus().length > 0, totalmem() > 2 ** 20, EOL === "\\n", platform());` },
  { name: "os: constants signals", code: `import os from "node:os";\nconsole.log(os.constants.signals.SIGTERM, os.constants.signals.SIGKILL, os.constants.errno.ENOENT);` },
  { name: "os: loadavg and uptime", code: `import os from "node:os";\nconsole.log(os.loadavg().length, typeof os.uptime(), typeof os.release(), typeof os.arch());` },
  { name: "os: networkInterfaces object", code: `import os from "node:os";\nconsole.log(typeof os.networkInterfaces(), typeof os.machine(), typeof os.version());` },
  { name: "os: devNull and priority", code: `import os from "node:os";\nconsole.log(os.devNull, typeof os.getPriority());` },
] satisfies ConformanceCase[];
