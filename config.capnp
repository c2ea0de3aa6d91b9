# Reference workerd configuration of one secure-exec sandbox cell.
# Generated from host/engine/cell-definition.ts by `npm run gen:capnp`; do not edit by hand.
# The host launches the same cell through Miniflare, which adds its own loopback
# plumbing; HOST reaches the host process on a loopback port.
#
# Try it on its own: npx workerd serve --experimental config.capnp
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  v8Flags = ["--no-sparkplug"],
  services = [
    (name = "supervisor", worker = .supervisorWorker),
    (name = "host", external = (address = "127.0.0.1:8788", http = ())),
    (name = "egress", external = (address = "127.0.0.1:8788", http = (style = proxy))),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "supervisor"),
  ],
);

const supervisorWorker :Workerd.Worker = (
  compatibilityDate = "2026-04-01",
  modules = [
    (name = "supervisor.js", esModule = embed "worker-templates/supervisor.js"),
    (name = "guest-prelude.js", text = embed "worker-templates/guest-prelude.js"),
    (name = "guest-bridge.js", text = embed "worker-templates/guest-bridge.js"),
    (name = "node/guest-console.js", text = embed "worker-templates/node/guest-console.js"),
    (name = "node/guest-process-io.js", text = embed "worker-templates/node/guest-process-io.js"),
    (name = "child-process/guest-child-process.js", text = embed "worker-templates/child-process/guest-child-process.js"),
    (name = "http/guest-http.js", text = embed "worker-templates/http/guest-http.js"),
    (name = "http/guest-https.js", text = embed "worker-templates/http/guest-https.js"),
    (name = "fs/guest-fs.js", text = embed "worker-templates/fs/guest-fs.js"),
    (name = "fs/guest-fs-errors.js", text = embed "worker-templates/fs/guest-fs-errors.js"),
    (name = "fs/guest-fs-paths.js", text = embed "worker-templates/fs/guest-fs-paths.js"),
    (name = "fs/guest-fs-store.js", text = embed "worker-templates/fs/guest-fs-store.js"),
    (name = "fs/guest-fs-ops.js", text = embed "worker-templates/fs/guest-fs-ops.js"),
    (name = "fs/guest-fs-stats.js", text = embed "worker-templates/fs/guest-fs-stats.js"),
    (name = "fs/guest-fs-fd.js", text = embed "worker-templates/fs/guest-fs-fd.js"),
    (name = "fs/guest-fs-sync.js", text = embed "worker-templates/fs/guest-fs-sync.js"),
    (name = "fs/guest-fs-callbacks.js", text = embed "worker-templates/fs/guest-fs-callbacks.js"),
    (name = "fs/guest-fs-streams.js", text = embed "worker-templates/fs/guest-fs-streams.js"),
    (name = "fs/guest-fs-handle.js", text = embed "worker-templates/fs/guest-fs-handle.js"),
    (name = "fs/guest-fs-promises.js", text = embed "worker-templates/fs/guest-fs-promises.js"),
    (name = "node/guest-path.js", text = embed "worker-templates/node/guest-path.js"),
    (name = "node/guest-util.js", text = embed "worker-templates/node/guest-util.js"),
    (name = "node/guest-v8.js", text = embed "worker-templates/node/guest-v8.js"),
    (name = "node/guest-sys.js", text = embed "worker-templates/node/guest-sys.js"),
    (name = "node/guest-sqlite.js", text = embed "worker-templates/node/guest-sqlite.js"),
    (name = "node/guest-zlib.js", text = embed "worker-templates/node/guest-zlib.js"),
    (name = "node/guest-unsupported.js", text = embed "worker-templates/node/guest-unsupported.js"),
    (name = "node/guest-test.js", text = embed "worker-templates/node/guest-test.js"),
    (name = "node/guest-dgram.js", text = embed "worker-templates/node/guest-dgram.js"),
    (name = "node/guest-vm.js", text = embed "worker-templates/node/guest-vm.js"),
    (name = "node/guest-worker-threads.js", text = embed "worker-templates/node/guest-worker-threads.js"),
    (name = "node/guest-crypto.js", text = embed "worker-templates/node/guest-crypto.js"),
    (name = "node/guest-assert.js", text = embed "worker-templates/node/guest-assert.js"),
    (name = "node/guest-diagnostics-channel.js", text = embed "worker-templates/node/guest-diagnostics-channel.js"),
    (name = "node/guest-os.js", text = embed "worker-templates/node/guest-os.js"),
    (name = "network/guest-net.js", text = embed "worker-templates/network/guest-net.js"),
    (name = "network/guest-dns.js", text = embed "worker-templates/network/guest-dns.js"),
    (name = "network/guest-dns-promises.js", text = embed "worker-templates/network/guest-dns-promises.js"),
    (name = "node/guest-perf-hooks.js", text = embed "worker-templates/node/guest-perf-hooks.js"),
    (name = "node/guest-readline.js", text = embed "worker-templates/node/guest-readline.js"),
    (name = "node/guest-readline-promises.js", text = embed "worker-templates/node/guest-readline-promises.js"),
  ],
  bindings = [
    # Loads each run's guest as a dynamic worker (fresh isolate, globalOutbound = null).
    (name = "LOADER", workerLoader = ()),
    # Tools and other host capabilities, reached only through the supervisor.
    (name = "HOST", service = "host"),
    # The host's egress proxy: the globalOutbound of guests whose runtime grants network.
    (name = "EGRESS", service = "egress"),
  ],
  # Guests cannot fetch out: dynamic workers get globalOutbound = null, or EGRESS when the
  # runtime's network permission grants access.
  globalOutbound = "host",
);
