// The host's HTTP/1.1 client of a sandbox process. Every suite drives it against real workerd
// processes; here a scripted peer sends the replies a supervisor writes cut at every byte, and
// replies it never writes, which must fail only their own request.
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SandboxClient, SandboxProtocolError } from "../host/engine/sandbox-client.js";

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A peer that answers each request on a connection with the next reply, written in pieces of `piece` bytes. */
async function peer(replies: string[], piece = Infinity): Promise<{ url: URL; requests: string[]; sockets: Socket[] }> {
  const requests: string[] = [];
  const sockets: Socket[] = [];
  let next = 0;
  server = createServer((socket) => {
    sockets.push(socket);
    let buffered = "";
    socket.on("data", async (data) => {
      buffered += data.toString("latin1");
      for (;;) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end === -1) return;
        const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        requests.push(buffered.slice(0, end + 4 + length));
        buffered = buffered.slice(end + 4 + length);
        const reply = replies[next++ % replies.length]!;
        for (let offset = 0; offset < reply.length; offset += piece) {
          socket.write(Buffer.from(reply.slice(offset, offset + piece), "latin1"));
          if (piece !== Infinity) await new Promise((resolve) => setImmediate(resolve));
        }
      }
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: new URL(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`), requests, sockets };
}

const LENGTH_REPLY = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}";
const CHUNKED_REPLY = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{"s":1}\n\r\n14\r\n{"o":"same code\\n"}\n\r\n8\r\n{"x":0}\n\r\n0\r\n\r\n';

describe("SandboxClient", () => {
  it("reads length-framed and chunked replies cut at every byte, over one kept-alive connection", async () => {
    const { url, requests, sockets } = await peer([LENGTH_REPLY, CHUNKED_REPLY], 1);
    const client = new SandboxClient(url, { connections: 4 });
    try {
      for (let round = 0; round < 3; round += 1) {
        const first = await client.request({ path: "/deliver", method: "POST", body: '{"kind":"start"}' });
        expect([first.statusCode, await first.body.json()]).toEqual([200, { ok: true }]);
        const second = await client.request({ path: "/run", method: "POST", body: "{}" });
        expect(await second.body.text()).toBe('{"s":1}\n{"o":"same code\\n"}\n{"x":0}\n');
      }
      expect(sockets).toHaveLength(1);
      expect(requests[0]).toMatch(/^POST \/deliver HTTP\/1\.1\r\n[^]*content-length: 16\r\n\r\n\{"kind":"start"\}$/);
    } finally {
      await client.destroy();
    }
  });

  it("fails a reply the supervisor never writes with a protocol error, and the next request still works", async () => {
    for (const bad of [
      "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\nno framing",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
      // Bytes after a whole reply are no one's: they must not become the next request's reply.
      `${LENGTH_REPLY}HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged`,
    ]) {
      const { url } = await peer([bad, LENGTH_REPLY]);
      const client = new SandboxClient(url, { connections: 2 });
      try {
        const failed = client.request({ path: "/ping", method: "GET" }).then((response) => response.body.text());
        if (bad.startsWith(LENGTH_REPLY)) await failed.catch(() => undefined);
        else await expect(failed).rejects.toBeInstanceOf(SandboxProtocolError);
        const after = await client.request({ path: "/ping", method: "GET" });
        expect(await after.body.json()).toEqual({ ok: true });
      } finally {
        await client.destroy();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
        server = undefined;
      }
    }
  });

  it("an abort ends a body still arriving, and a refused connection rejects with its code", async () => {
    const { url } = await peer(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"s\":1}\n\r\n"]);
    const client = new SandboxClient(url, { connections: 2 });
    const controller = new AbortController();
    const response = await client.request({ path: "/run", method: "POST", body: "{}", signal: controller.signal });
    const iterator = response.body[Symbol.asyncIterator]();
    expect(new TextDecoder().decode((await iterator.next()).value)).toBe('{"s":1}\n');
    const pending = iterator.next();
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    await client.destroy();

    const refused = new SandboxClient(new URL("http://127.0.0.1:1"), { connections: 1 });
    await expect(refused.request({ path: "/ping", method: "GET" })).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("stops reading from the socket while a large body waits unread, and resumes as it is read", async () => {
    const size = 32 << 20;
    const { url, sockets } = await peer([`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n${"y".repeat(size)}`]);
    const client = new SandboxClient(url, { connections: 1 });
    try {
      const response = await client.request({ path: "/run", method: "GET" });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Unread, the body is not pulled in: most of it still waits on the peer's side.
      expect(sockets[0]!.writableLength).toBeGreaterThan(size / 2);
      let received = 0;
      for await (const chunk of response.body) received += chunk.byteLength;
      expect(received).toBe(size);
    } finally {
      await client.destroy();
    }
  });

  it("a streamed request gets its reply before its body ends, and the body's last part arrives whole", async () => {
    // The peer answers at the head (an isolate that loaded), then echoes the body once it ends.
    let received = "";
    let connections = 0;
    server = createServer((socket) => {
      connections += 1;
      let answered = false;
      socket.on("data", (data) => {
        received += data.toString("latin1");
        if (!answered && received.includes("\r\n\r\n")) {
          answered = true;
          socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        }
        if (received.endsWith("0\r\n\r\n")) {
          const body = received.slice(received.indexOf("\r\n\r\n") + 4);
          socket.write(Buffer.from(`${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, "latin1"));
        }
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const client = new SandboxClient(new URL(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`), { connections: 2 });
    try {
      const streamed = client.openStream({ path: "/run", first: '{"preload":true}\n' });
      const response = await streamed.response;
      expect(received).toMatch(/transfer-encoding: chunked\r\n\r\n11\r\n\{"preload":true\}\n\r\n$/);
      streamed.end('{"kind":"start","é":1}');
      expect(await response.body.text()).toBe('11\r\n{"preload":true}\n\r\n17\r\n{"kind":"start","é":1}\r\n0\r\n\r\n');
      expect(connections).toBe(1);
    } finally {
      await client.destroy();
    }
  });

  it("a reply that ends before its request's body does closes that connection instead of reusing it", async () => {
    const { url, sockets } = await peer([LENGTH_REPLY]);
    const client = new SandboxClient(url, { connections: 2 });
    try {
      // The peer answers at the first chunk (it counts no length): the body is still open.
      const streamed = client.openStream({ path: "/run", first: "x" });
      expect(await (await streamed.response).body.json()).toEqual({ ok: true });
      const next = await client.request({ path: "/ping", method: "GET" });
      expect(await next.body.json()).toEqual({ ok: true });
      expect(sockets).toHaveLength(2);
      streamed.end("late");
    } finally {
      await client.destroy();
    }
  });

  it("a request waiting for a free connection rejects as soon as its caller aborts", async () => {
    const { url } = await peer(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]);
    const client = new SandboxClient(url, { connections: 1 });
    try {
      await client.request({ path: "/run", method: "POST", body: "{}" });
      const waiting = client.request({ path: "/ping", method: "GET", signal: AbortSignal.timeout(50) });
      await expect(waiting).rejects.toMatchObject({ name: "TimeoutError" });
    } finally {
      await client.destroy();
    }
  });

  it("a reply left unread with its socket paused does not hold up the next request", async () => {
    const size = (1 << 20) + 1000;
    const { url } = await peer([`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n${"y".repeat(size)}`, LENGTH_REPLY]);
    const client = new SandboxClient(url, { connections: 4 });
    try {
      const unread = await client.request({ path: "/run", method: "GET" });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const next = await client.request({ path: "/ping", method: "GET", signal: AbortSignal.timeout(2_000) });
      expect(await next.body.json()).toEqual({ ok: true });
      let received = 0;
      for await (const chunk of unread.body) received += chunk.byteLength;
      expect(received).toBe(size);
    } finally {
      await client.destroy();
    }
  });
});
