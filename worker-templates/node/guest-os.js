// `node:os` for ES-module packages (host/compile/node-modules.ts): the prelude's, the one
// guest code imports (sizing figures from the run's limits, the sandbox's user), so a
// package and the guest see the same machine.
const os = process.getBuiltinModule("node:os");

export const { EOL, devNull, constants, availableParallelism, arch, cpus, endianness, freemem, getPriority, homedir, hostname, loadavg, machine, networkInterfaces, platform, release, setPriority, tmpdir, totalmem, type, uptime, userInfo, version } = os;
export default os;
