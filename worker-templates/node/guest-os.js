// `node:os` for guests: workerd's, with figures that sizing code can use (workerd reports
// no CPUs, no memory and an empty user): one CPU per available core, a fixed memory size,
// and the sandbox's user.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:os");
/** What the guest is told it has (it is not the host's, which the guest must not learn). */
const TOTAL_MEMORY = 2 ** 31;
const FREE_MEMORY = 2 ** 30;

export function cpus() {
  const count = Math.max(1, real.availableParallelism?.() ?? 1);
  return Array.from({ length: count }, () => ({ model: "secure-exec virtual CPU", speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } }));
}

export function totalmem() {
  return TOTAL_MEMORY;
}

export function freemem() {
  return FREE_MEMORY;
}

export function userInfo(options) {
  const info = { uid: 1000, gid: 1000, username: "sandbox", homedir: real.homedir(), shell: null };
  if (options?.encoding === "buffer") {
    return { ...info, username: Buffer.from(info.username), homedir: Buffer.from(info.homedir) };
  }
  return info;
}

export * from "node:os";
const osModule = { ...real, cpus, totalmem, freemem, userInfo };
export default osModule;
for (const name of ["os", "node:os"]) sandboxBuiltins.set(name, osModule);
