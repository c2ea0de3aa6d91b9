// Static worker of every sandbox process. It owns the Worker Loader binding and turns
// the host's per-run configuration into a fresh guest isolate, streaming its events back.
// Bindings (see config.capnp): LOADER (Worker Loader), HOST (service binding to the host).
import GUEST_PRELUDE from "./guest-prelude.js";
import GUEST_CHILD_PROCESS from "./guest-child-process.js";
import GUEST_HTTP from "./guest-http.js";
import GUEST_HTTPS from "./guest-https.js";
import GUEST_BRIDGE from "./guest-bridge.js";
import GUEST_FS from "./guest-fs.js";
import GUEST_FS_PROMISES from "./guest-fs-promises.js";
import GUEST_NODE_MODULE from "./guest-node-module.js";
import GUEST_PATH from "./guest-path.js";
import GUEST_UTIL from "./guest-util.js";
import GUEST_ZLIB from "./guest-zlib.js";
import GUEST_UNSUPPORTED from "./guest-unsupported.js";
import GUEST_TEST from "./guest-test.js";
import GUEST_DGRAM from "./guest-dgram.js";
import GUEST_VM from "./guest-vm.js";
import GUEST_WORKER_THREADS from "./guest-worker-threads.js";
import GUEST_CRYPTO from "./guest-crypto.js";
import GUEST_ASSERT from "./guest-assert.js";
import GUEST_DIAGNOSTICS_CHANNEL from "./guest-diagnostics-channel.js";
import GUEST_OS from "./guest-os.js";
import GUEST_NET from "./guest-net.js";
import GUEST_DNS from "./guest-dns.js";
import GUEST_DNS_PROMISES from "./guest-dns-promises.js";
import GUEST_PERF_HOOKS from "./guest-perf-hooks.js";
import GUEST_READLINE from "./guest-readline.js";
import GUEST_READLINE_PROMISES from "./guest-readline-promises.js";

const GUEST_RUNTIME_MODULES = {
  "secure-exec-prelude.js": GUEST_PRELUDE,
  "secure-exec-child-process.js": GUEST_CHILD_PROCESS,
  "secure-exec-http.js": GUEST_HTTP,
  "secure-exec-https.js": GUEST_HTTPS,
  "secure-exec-bridge.js": GUEST_BRIDGE,
  "secure-exec-fs.js": GUEST_FS,
  "secure-exec-fs-promises.js": GUEST_FS_PROMISES,
  "secure-exec-module.js": GUEST_NODE_MODULE,
  "secure-exec-path.js": GUEST_PATH,
  "secure-exec-util.js": GUEST_UTIL,
  "secure-exec-zlib.js": GUEST_ZLIB,
  "secure-exec-unsupported.js": GUEST_UNSUPPORTED,
  "secure-exec-test.js": GUEST_TEST,
  "secure-exec-dgram.js": GUEST_DGRAM,
  "secure-exec-vm.js": GUEST_VM,
  "secure-exec-worker-threads.js": GUEST_WORKER_THREADS,
  "secure-exec-crypto.js": GUEST_CRYPTO,
  "secure-exec-assert.js": GUEST_ASSERT,
  "secure-exec-diagnostics-channel.js": GUEST_DIAGNOSTICS_CHANNEL,
  "secure-exec-os.js": GUEST_OS,
  "secure-exec-net.js": GUEST_NET,
  "secure-exec-dns.js": GUEST_DNS,
  "secure-exec-dns-promises.js": GUEST_DNS_PROMISES,
  "secure-exec-perf-hooks.js": GUEST_PERF_HOOKS,
  "secure-exec-readline.js": GUEST_READLINE,
  "secure-exec-readline-promises.js": GUEST_READLINE_PROMISES,
};

/**
 * Every isolate gets the prelude, the bridge and `node:module` (a computed `import()` may ask
 * for it); the sandbox builtins the host found its code imports.
 */
function runtimeModulesFor(worker) {
  const modules = {
    "secure-exec-prelude.js": GUEST_RUNTIME_MODULES["secure-exec-prelude.js"],
    "secure-exec-bridge.js": GUEST_RUNTIME_MODULES["secure-exec-bridge.js"],
    "secure-exec-module.js": GUEST_RUNTIME_MODULES["secure-exec-module.js"],
  };
  for (const name of worker.runtimeModules ?? []) {
    if (GUEST_RUNTIME_MODULES[name]) modules[name] = GUEST_RUNTIME_MODULES[name];
  }
  return modules;
}

/**
 * Runs in flight (isolate id → worker config), so later messages (stdin, HTTP requests,
 * child process events) reach the same isolate. Stubs cannot outlive their request, so
 * each message asks the loader again; it answers with the cached isolate.
 */
const liveGuests = new Map();

function loadGuest(env, isolateId, worker) {
  return env.LOADER.get(isolateId, () => ({
    compatibilityDate: worker.compatibilityDate,
    compatibilityFlags: worker.compatibilityFlags,
    mainModule: "secure-exec-prelude.js",
    // Extra modules (e.g. npm packages resolved by the host) sit beside the guest.
    modules: { ...worker.extraModules, ...runtimeModulesFor(worker), "guest.js": worker.guestModule },
    // The guest holds only what is handed to it here.
    env: { HOST: env.HOST },
    globalOutbound: worker.network ? env.EGRESS : null,
  }));
}

function ndjson(...events) {
  return new Response(events.map((event) => `${JSON.stringify(event)}\n`).join(""), {
    headers: { "content-type": "application/x-ndjson" },
  });
}

/** Passes the guest's event stream through and forgets the run when it ends. */
function trackUntilEnd(isolateId, body) {
  const forget = new TransformStream({
    flush() {
      liveGuests.delete(isolateId);
    },
  });
  body.pipeTo(forget.writable).catch(() => liveGuests.delete(isolateId));
  return forget.readable;
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/ping") return new Response("pong");
    if (request.method !== "POST") return new Response("not found", { status: 404 });
    const message = await request.json();
    if (pathname === "/deliver") {
      const worker = liveGuests.get(message.isolateId);
      if (!worker) return Response.json({ ok: false, error: "the run has ended" }, { status: 410 });
      const guest = loadGuest(env, message.isolateId, worker).getEntrypoint();
      return guest.fetch("http://guest/__deliver", { method: "POST", body: JSON.stringify(message) });
    }
    try {
      const guest = loadGuest(env, message.isolateId, message.worker).getEntrypoint();
      if (pathname === "/warm") {
        const response = await guest.fetch("http://guest/__warm");
        return new Response(await response.text());
      }
      if (pathname === "/run") {
        liveGuests.set(message.isolateId, message.worker);
        const response = await guest.fetch("http://guest/run", {
          method: "POST",
          body: JSON.stringify(message.input),
        });
        if (!response.body) {
          liveGuests.delete(message.isolateId);
          return response;
        }
        return new Response(trackUntilEnd(message.isolateId, response.body), {
          status: response.status,
          headers: response.headers,
        });
      }
    } catch (error) {
      liveGuests.delete(message.isolateId);
      // The guest failed to load (e.g. it imports a module that does not exist).
      return ndjson({ e: `${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n` }, { x: 1 });
    }
    return new Response("not found", { status: 404 });
  },
};
