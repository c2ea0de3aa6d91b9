# Reference workerd configuration of one secure-exec sandbox cell.
# Generated from host/engine/cell-definition.ts by `npm run gen:capnp`; do not edit by hand.
# The host launches the same cell through Miniflare, which adds its own loopback
# plumbing; HOST reaches the host process on a loopback port.
#
# Try it on its own: npx workerd serve --experimental config.capnp
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
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
    (name = "guest-child-process.js", text = embed "worker-templates/guest-child-process.js"),
    (name = "guest-http.js", text = embed "worker-templates/guest-http.js"),
    (name = "guest-https.js", text = embed "worker-templates/guest-https.js"),
    (name = "guest-fs.js", text = embed "worker-templates/guest-fs.js"),
    (name = "guest-fs-promises.js", text = embed "worker-templates/guest-fs-promises.js"),
    (name = "guest-node-module.js", text = embed "worker-templates/guest-node-module.js"),
    (name = "guest-path.js", text = embed "worker-templates/guest-path.js"),
    (name = "guest-util.js", text = embed "worker-templates/guest-util.js"),
    (name = "guest-zlib.js", text = embed "worker-templates/guest-zlib.js"),
    (name = "guest-unsupported.js", text = embed "worker-templates/guest-unsupported.js"),
    (name = "guest-test.js", text = embed "worker-templates/guest-test.js"),
    (name = "guest-dgram.js", text = embed "worker-templates/guest-dgram.js"),
    (name = "guest-vm.js", text = embed "worker-templates/guest-vm.js"),
    (name = "guest-worker-threads.js", text = embed "worker-templates/guest-worker-threads.js"),
    (name = "guest-crypto.js", text = embed "worker-templates/guest-crypto.js"),
    (name = "guest-assert.js", text = embed "worker-templates/guest-assert.js"),
    (name = "guest-diagnostics-channel.js", text = embed "worker-templates/guest-diagnostics-channel.js"),
    (name = "guest-os.js", text = embed "worker-templates/guest-os.js"),
    (name = "guest-net.js", text = embed "worker-templates/guest-net.js"),
    (name = "guest-dns.js", text = embed "worker-templates/guest-dns.js"),
    (name = "guest-dns-promises.js", text = embed "worker-templates/guest-dns-promises.js"),
    (name = "guest-perf-hooks.js", text = embed "worker-templates/guest-perf-hooks.js"),
    (name = "guest-readline.js", text = embed "worker-templates/guest-readline.js"),
    (name = "guest-readline-promises.js", text = embed "worker-templates/guest-readline-promises.js"),
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
