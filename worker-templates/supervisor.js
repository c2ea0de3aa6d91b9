// Static worker of every sandbox process. It owns the Worker Loader binding and turns
// the host's per-run configuration into a fresh guest isolate, streaming its events back.
// Bindings (see config.capnp): LOADER (Worker Loader), HOST (service binding to the host).
import GUEST_PRELUDE from "./guest-prelude.js";
import GUEST_CONSOLE from "./node/guest-console.js";
import GUEST_PROCESS_IO from "./node/guest-process-io.js";
import GUEST_CHILD_PROCESS from "./child-process/guest-child-process.js";
import GUEST_HTTP from "./http/guest-http.js";
import GUEST_HTTPS from "./http/guest-https.js";
import GUEST_BRIDGE from "./guest-bridge.js";
import GUEST_FS from "./fs/guest-fs.js";
import GUEST_FS_ERRORS from "./fs/guest-fs-errors.js";
import GUEST_FS_PATHS from "./fs/guest-fs-paths.js";
import GUEST_FS_STORE from "./fs/guest-fs-store.js";
import GUEST_FS_OPS from "./fs/guest-fs-ops.js";
import GUEST_FS_STATS from "./fs/guest-fs-stats.js";
import GUEST_FS_FD from "./fs/guest-fs-fd.js";
import GUEST_FS_SYNC from "./fs/guest-fs-sync.js";
import GUEST_FS_CALLBACKS from "./fs/guest-fs-callbacks.js";
import GUEST_FS_STREAMS from "./fs/guest-fs-streams.js";
import GUEST_FS_HANDLE from "./fs/guest-fs-handle.js";
import GUEST_FS_PROMISES from "./fs/guest-fs-promises.js";
import GUEST_PATH from "./node/guest-path.js";
import GUEST_UTIL from "./node/guest-util.js";
import GUEST_V8 from "./node/guest-v8.js";
import GUEST_SYS from "./node/guest-sys.js";
import GUEST_SQLITE from "./node/guest-sqlite.js";
import GUEST_ZLIB from "./node/guest-zlib.js";
import GUEST_UNSUPPORTED from "./node/guest-unsupported.js";
import GUEST_TEST from "./node/guest-test.js";
import GUEST_DGRAM from "./node/guest-dgram.js";
import GUEST_VM from "./node/guest-vm.js";
import GUEST_WORKER_THREADS from "./node/guest-worker-threads.js";
import GUEST_CRYPTO from "./node/guest-crypto.js";
import GUEST_ASSERT from "./node/guest-assert.js";
import GUEST_DIAGNOSTICS_CHANNEL from "./node/guest-diagnostics-channel.js";
import GUEST_OS from "./node/guest-os.js";
import GUEST_NET from "./network/guest-net.js";
import GUEST_DNS from "./network/guest-dns.js";
import GUEST_DNS_PROMISES from "./network/guest-dns-promises.js";
import GUEST_PERF_HOOKS from "./node/guest-perf-hooks.js";
import GUEST_READLINE from "./node/guest-readline.js";
import GUEST_READLINE_PROMISES from "./node/guest-readline-promises.js";

const GUEST_RUNTIME_MODULES = {
  "secure-exec-prelude.js": GUEST_PRELUDE,
  "secure-exec-console.js": GUEST_CONSOLE,
  "secure-exec-process-io.js": GUEST_PROCESS_IO,
  "secure-exec-child-process.js": GUEST_CHILD_PROCESS,
  "secure-exec-http.js": GUEST_HTTP,
  "secure-exec-https.js": GUEST_HTTPS,
  "secure-exec-bridge.js": GUEST_BRIDGE,
  "secure-exec-fs.js": GUEST_FS,
  "secure-exec-fs-errors.js": GUEST_FS_ERRORS,
  "secure-exec-fs-paths.js": GUEST_FS_PATHS,
  "secure-exec-fs-store.js": GUEST_FS_STORE,
  "secure-exec-fs-ops.js": GUEST_FS_OPS,
  "secure-exec-fs-stats.js": GUEST_FS_STATS,
  "secure-exec-fs-fd.js": GUEST_FS_FD,
  "secure-exec-fs-sync.js": GUEST_FS_SYNC,
  "secure-exec-fs-callbacks.js": GUEST_FS_CALLBACKS,
  "secure-exec-fs-streams.js": GUEST_FS_STREAMS,
  "secure-exec-fs-handle.js": GUEST_FS_HANDLE,
  "secure-exec-fs-promises.js": GUEST_FS_PROMISES,
  "secure-exec-path.js": GUEST_PATH,
  "secure-exec-util.js": GUEST_UTIL,
  "secure-exec-v8.js": GUEST_V8,
  "secure-exec-sys.js": GUEST_SYS,
  "secure-exec-sqlite.js": GUEST_SQLITE,
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
 * A CommonJS module's `require`: loads Node builtins synchronously without workerd's own
 * `process`, whose first use costs ~2.5 ms of CPU per isolate (most runs never need it).
 */
const GUEST_REQUIRE = { cjs: "module.exports = (specifier) => require(specifier);" };

/** Every isolate gets the prelude, the bridge, the console and process I/O; the sandbox builtins the host found its code imports. */
function runtimeModulesFor(worker) {
  const modules = {
    "secure-exec-prelude.js": GUEST_RUNTIME_MODULES["secure-exec-prelude.js"],
    "secure-exec-bridge.js": GUEST_RUNTIME_MODULES["secure-exec-bridge.js"],
    "secure-exec-console.js": GUEST_RUNTIME_MODULES["secure-exec-console.js"],
    "secure-exec-process-io.js": GUEST_RUNTIME_MODULES["secure-exec-process-io.js"],
    "secure-exec-require.cjs": GUEST_REQUIRE,
  };
  for (const name of worker.runtimeModules ?? []) {
    if (GUEST_RUNTIME_MODULES[name]) modules[name] = GUEST_RUNTIME_MODULES[name];
  }
  return modules;
}

/**
 * Every run's isolate is an unnamed load, freed when the run's request ends (isolates loaded
 * by id stay until the process dies). A stub works only inside the request that made it, so
 * messages for a live run (its input when it was preloaded, stdin, child process events,
 * HTTP requests, terminate) queue in its mailbox, which the run's own request serves.
 */
const liveRuns = new Map();

function loadGuest(env, worker) {
  return env.LOADER.load(guestConfig(env, worker));
}

function guestConfig(env, worker) {
  return {
    compatibilityDate: worker.compatibilityDate,
    compatibilityFlags: worker.compatibilityFlags,
    mainModule: "secure-exec-prelude.js",
    // Extra modules (e.g. npm packages resolved by the host) sit beside the guest.
    modules: { ...worker.extraModules, ...runtimeModulesFor(worker), "guest.js": worker.guestModule },
    // The guest holds only what is handed to it here.
    env: { HOST: env.HOST },
    globalOutbound: worker.network ? env.EGRESS : null,
  };
}

class RunMailbox {
  constructor() {
    this.queue = [];
    /** Handed to the guest, reply not in yet: answered when the run ends first. */
    this.inFlight = new Set();
    this.wake = null;
    this.closed = false;
  }

  /** Called from a /deliver request: resolves with the guest's reply as { status, body }. */
  deliver(body) {
    if (this.closed) return Promise.resolve(ENDED);
    return new Promise((resolve) => {
      this.queue.push({ body, resolve });
      const wake = this.wake;
      this.wake = null;
      wake?.();
    });
  }

  /** Runs inside the run's request, where `guest` (its stub) may be used. */
  async serve(guest) {
    while (!this.closed) {
      const item = this.queue.shift();
      if (!item) {
        await new Promise((resolve) => (this.wake = resolve));
        continue;
      }
      // Deliveries run side by side: an HTTP request may wait on a later message.
      this.inFlight.add(item);
      guest
        .fetch("http://guest/__deliver", { method: "POST", body: item.body })
        .then(async (response) => item.resolve({ status: response.status, body: await response.text() }))
        .catch((error) => item.resolve({ status: 502, body: JSON.stringify({ ok: false, error: String(error) }) }))
        .finally(() => this.inFlight.delete(item));
    }
    for (const item of this.queue.splice(0)) item.resolve(ENDED);
  }

  close() {
    this.closed = true;
    // The run's request ends with the run: replies still owed can no longer arrive.
    for (const item of this.inFlight) item.resolve(ENDED);
    this.inFlight.clear();
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

const ENDED = { status: 410, body: JSON.stringify({ ok: false, error: "the run has ended" }) };

function ndjson(...events) {
  return new Response(events.map((event) => `${JSON.stringify(event)}\n`).join(""), {
    headers: { "content-type": "application/x-ndjson" },
  });
}

/** Passes the guest's event stream through and closes the run's mailbox when it ends. */
function trackUntilEnd(isolateId, mailbox, body) {
  const end = () => {
    mailbox.close();
    if (liveRuns.get(isolateId) === mailbox) liveRuns.delete(isolateId);
  };
  // Byte streams of workerd's own on both ends: the pipe runs without JavaScript per chunk.
  const forget = new IdentityTransformStream();
  body.pipeTo(forget.writable).then(end, end);
  return forget.readable;
}

const utf8 = new TextDecoder();

/** The first line of a request body as JSON, and a stream of the bytes after it. */
async function firstLine(body) {
  const reader = body.getReader();
  const parts = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the run message ended before its end of line");
    const newline = value.indexOf(10);
    if (newline === -1) {
      parts.push(value);
      continue;
    }
    parts.push(value.subarray(0, newline));
    const head = value.subarray(newline + 1);
    let text = "";
    for (const part of parts) text += utf8.decode(part, { stream: true });
    text += utf8.decode();
    const rest = new ReadableStream({
      start(controller) {
        if (head.byteLength > 0) controller.enqueue(head);
      },
      async pull(controller) {
        const next = await reader.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return { message: JSON.parse(text), rest };
  }
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/ping") return new Response("pong");
    if (request.method !== "POST") return new Response("not found", { status: 404 });
    if (pathname === "/deliver") {
      const body = await request.text();
      const { isolateId } = JSON.parse(body);
      const mailbox = liveRuns.get(isolateId);
      // The reply comes from the run's request; a request that only waits on another one
      // looks hung to workerd, so this one holds a timer until then.
      const keepAlive = setInterval(() => {}, 30_000);
      let reply;
      try {
        reply = mailbox ? await mailbox.deliver(body) : ENDED;
      } finally {
        clearInterval(keepAlive);
      }
      return new Response(reply.body, { status: reply.status, headers: { "content-type": "application/json" } });
    }
    // A preload's body is its message, one line, then the run's start when the run comes.
    const preload = request.headers.get("content-type") === "application/x-ndjson";
    const { message, rest } = preload ? await firstLine(request.body) : { message: await request.json(), rest: null };
    const mailbox = new RunMailbox();
    try {
      const guest = loadGuest(env, message.worker).getEntrypoint();
      if (pathname === "/run") {
        liveRuns.set(message.isolateId, mailbox);
        // A preloaded isolate loads, evaluates its imports and reads its input from the body.
        const response = await guest.fetch("http://guest/run", {
          method: "POST",
          body: preload ? rest : JSON.stringify(message.input),
          headers: preload ? { "x-secure-exec-preload": "1" } : {},
        });
        if (!response.body) {
          mailbox.close();
          liveRuns.delete(message.isolateId);
          return response;
        }
        mailbox.serve(guest);
        return new Response(trackUntilEnd(message.isolateId, mailbox, response.body), {
          status: response.status,
          headers: response.headers,
        });
      }
    } catch (error) {
      mailbox.close();
      if (liveRuns.get(message.isolateId) === mailbox) liveRuns.delete(message.isolateId);
      // The guest failed to load (e.g. it imports a module that does not exist).
      return ndjson({ e: `${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n` }, { x: 1 });
    }
    return new Response("not found", { status: 404 });
  },
};
