// Static worker of every sandbox process. It owns the Worker Loader binding and turns
// the host's per-run configuration into a fresh guest isolate, streaming its events back.
// Bindings (see config.capnp): LOADER (Worker Loader), HOST (service binding to the host).
import GUEST_PRELUDE from "./guest-prelude.js.txt";

const PRELUDE_MODULE = "secure-exec-prelude.js";

function loadGuest(env, isolateId, worker) {
  return env.LOADER.get(isolateId, () => ({
    compatibilityDate: worker.compatibilityDate,
    compatibilityFlags: worker.compatibilityFlags,
    mainModule: PRELUDE_MODULE,
    modules: { [PRELUDE_MODULE]: GUEST_PRELUDE, "guest.js": worker.guestModule },
    // The guest holds only what is handed to it here.
    env: { HOST: env.HOST },
    globalOutbound: null,
  }));
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/ping") return new Response("pong");
    if (request.method !== "POST") return new Response("not found", { status: 404 });
    const message = await request.json();
    try {
      const guest = loadGuest(env, message.isolateId, message.worker).getEntrypoint();
      if (pathname === "/warm") {
        const response = await guest.fetch("http://guest/__warm");
        return new Response(await response.text());
      }
      if (pathname === "/run") {
        const response = await guest.fetch("http://guest/run", {
          method: "POST",
          body: JSON.stringify(message.input),
        });
        return new Response(response.body, { status: response.status, headers: response.headers });
      }
    } catch (error) {
      // The guest failed to load (e.g. it imports a module that does not exist).
      const text = `${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`;
      return new Response(`${JSON.stringify({ e: text })}\n${JSON.stringify({ x: 1 })}\n`, {
        headers: { "content-type": "application/x-ndjson" },
      });
    }
    return new Response("not found", { status: 404 });
  },
};
