// The host's HTTP client for one sandbox process's direct socket: keep-alive connections
// over node:http. Node's own HTTP stack is loaded anyway (the host endpoint serves on it),
// so a fresh host pays nothing more for it, where a separate client library costs ~100 ms
// of CPU to load and to set up its parser on the first request.
import { Agent, request as httpRequest, type IncomingMessage } from "node:http";

export interface SandboxRequest {
  path: string;
  method: "GET" | "POST";
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A response body: read it once (text, json, dump or iterate), or destroy it. */
export class ResponseBody implements AsyncIterable<Uint8Array> {
  constructor(private readonly message: IncomingMessage) {
    // A reset connection surfaces where the body is read; never as an uncaught stream error.
    message.on("error", () => {});
  }

  on(event: "error", listener: (error: Error) => void): this {
    this.message.on(event, listener);
    return this;
  }

  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.message) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  /** Reads the body to its end and drops it, so the connection can serve the next request. */
  async dump(): Promise<void> {
    for await (const chunk of this.message) void chunk;
  }

  destroy(): void {
    this.message.destroy();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.message[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  }
}

export interface SandboxResponse {
  statusCode: number;
  body: ResponseBody;
}

export class SandboxClient {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(url: URL, options: { connections: number }) {
    this.host = url.hostname;
    this.port = Number(url.port);
    this.agent = new Agent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections });
  }

  /**
   * Resolves with the response once its head arrived; rejects with the socket's error
   * (`ECONNREFUSED`, `ECONNRESET`, …) or an `AbortError` when `signal` fires.
   */
  request(options: SandboxRequest): Promise<SandboxResponse> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...options.headers };
      if (options.body !== undefined) headers["content-length"] = Buffer.byteLength(options.body);
      const outgoing = httpRequest(
        { host: this.host, port: this.port, path: options.path, method: options.method, headers, agent: this.agent, signal: options.signal },
        (message) => resolve({ statusCode: message.statusCode ?? 0, body: new ResponseBody(message) }),
      );
      outgoing.on("error", reject);
      outgoing.end(options.body);
    });
  }

  /** Closes every connection. */
  async destroy(): Promise<void> {
    this.agent.destroy();
  }
}
