// One sandbox cell (a workerd process): its supervisor worker and the capabilities wired
// into it. The Miniflare adapter launches cells from this, and config.capnp is rendered
// from it (`npm run gen:capnp`), so the reference configuration and the running one agree.
// No Node APIs: the edge Worker takes its guests' compatibility settings from here too.
export const cellDefinition = {
  compatibilityDate: "2026-04-01",
  /**
   * V8 flags of every cell process. No Sparkplug: an isolate lives for one run, too short for
   * baseline code to repay its compile (~1 ms of a run's ~14 ms of CPU); hot loops still reach
   * Maglev and TurboFan.
   */
  v8Flags: ["--no-sparkplug"],
  supervisor: {
    name: "supervisor",
    mainModule: "supervisor.js",
  },
  /** Templates the supervisor embeds as text and hands to every guest isolate. */
  guestTemplates: [
    "guest-prelude.js",
    "guest-bridge.js",
    "node/guest-console.js",
    "node/guest-process-io.js",
    "child-process/guest-child-process.js",
    "http/guest-http.js",
    "http/guest-https.js",
    "fs/guest-fs.js",
    "fs/guest-fs-errors.js",
    "fs/guest-fs-paths.js",
    "fs/guest-fs-store.js",
    "fs/guest-fs-ops.js",
    "fs/guest-fs-stats.js",
    "fs/guest-fs-fd.js",
    "fs/guest-fs-sync.js",
    "fs/guest-fs-callbacks.js",
    "fs/guest-fs-streams.js",
    "fs/guest-fs-handle.js",
    "fs/guest-fs-promises.js",
    "node/guest-path.js",
    "node/guest-util.js",
    "node/guest-v8.js",
    "node/guest-sys.js",
    "node/guest-sqlite.js",
    "node/guest-zlib.js",
    "node/guest-unsupported.js",
    "node/guest-test.js",
    "node/guest-dgram.js",
    "node/guest-vm.js",
    "node/guest-worker-threads.js",
    "node/guest-crypto.js",
    "node/guest-assert.js",
    "node/guest-diagnostics-channel.js",
    "node/guest-os.js",
    "network/guest-net.js",
    "network/guest-dns.js",
    "network/guest-dns-promises.js",
    "node/guest-perf-hooks.js",
    "node/guest-readline.js",
    "node/guest-readline-promises.js",
  ],
  bindings: {
    loader: "LOADER",
    host: "HOST",
    egress: "EGRESS",
  },
  guest: {
    compatibilityFlags: ["nodejs_compat", "disable_nodejs_process_v2", "no_nodejs_global_timers"],
  },
} as const;

/** The reference configuration of one cell, in workerd's text format. */
export function renderReferenceCapnp(): string {
  const { supervisor, bindings, compatibilityDate, v8Flags } = cellDefinition;
  return `# Reference workerd configuration of one secure-exec sandbox cell.
# Generated from host/engine/cell-definition.ts by \`npm run gen:capnp\`; do not edit by hand.
# The host launches the same cell through Miniflare, which adds its own loopback
# plumbing; ${bindings.host} reaches the host process on a loopback port.
#
# Try it on its own: npx workerd serve --experimental config.capnp
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  v8Flags = [${v8Flags.map((flag) => JSON.stringify(flag)).join(", ")}],
  services = [
    (name = "${supervisor.name}", worker = .supervisorWorker),
    (name = "host", external = (address = "127.0.0.1:8788", http = ())),
    (name = "egress", external = (address = "127.0.0.1:8788", http = (style = proxy))),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "${supervisor.name}"),
  ],
);

const supervisorWorker :Workerd.Worker = (
  compatibilityDate = "${compatibilityDate}",
  modules = [
    (name = "${supervisor.mainModule}", esModule = embed "worker-templates/supervisor.js"),
${cellDefinition.guestTemplates.map((name) => `    (name = "${name}", text = embed "worker-templates/${name}"),`).join("\n")}
  ],
  bindings = [
    # Loads each run's guest as a dynamic worker (fresh isolate, globalOutbound = null).
    (name = "${bindings.loader}", workerLoader = ()),
    # Tools and other host capabilities, reached only through the supervisor.
    (name = "${bindings.host}", service = "host"),
    # The host's egress proxy: the globalOutbound of guests whose runtime grants network.
    (name = "${bindings.egress}", service = "egress"),
  ],
  # Guests cannot fetch out: dynamic workers get globalOutbound = null, or EGRESS when the
  # runtime's network permission grants access.
  globalOutbound = "host",
);
`;
}
