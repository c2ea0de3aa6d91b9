// Guest network access. Guests have no outbound network unless the runtime's `network`
// permission grants it; then their fetches reach this host-side proxy (workerd's proxy-style
// external service), which checks the run's policy and forwards allowed requests.
import { lookup } from "node:dns/promises";
import { isIP, type Socket } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { PermissionPolicy } from "../../api/options.js";

export const EGRESS_TOKEN_HEADER = "x-secure-exec-egress";

/**
 * What one top-level run (its child processes included) may use of the network: requests in
 * flight at once (`limits.egressConnections`) and bytes sent plus received
 * (`limits.egressBytes`). Both are taken before a request starts.
 */
export class EgressBudget {
  inFlight = 0;
  bytes = 0;
  constructor(
    readonly policy: PermissionPolicy,
    readonly maxConnections: number,
    readonly maxBytes: number,
  ) {}
}

interface EgressGrant {
  budget: EgressBudget;
  /** Requests under way with this token: aborted when it is revoked (the run ended). */
  requests: Set<AbortController>;
}

const grants = new Map<string, EgressGrant>();

/** Lets the holder of `token` reach the network under `budget`; the returned revoke also aborts its requests. */
export function registerEgressPolicy(token: string, budget: EgressBudget): () => void {
  const grant: EgressGrant = { budget, requests: new Set() };
  grants.set(token, grant);
  return () => {
    grants.delete(token);
    for (const request of grant.requests) request.abort(new Error("the run has ended"));
    grant.requests.clear();
  };
}

/** Addresses a guest reaches only when a rule names them exactly. */
export function isInternalAddress(address: string): boolean {
  if (isIP(address) === 6) {
    const groups = expandIPv6(address);
    if (!groups) return true;
    const [first] = groups as [number];
    if (groups.every((group) => group === 0)) return true; // ::
    if (groups.slice(0, 7).every((group) => group === 0) && groups[7] === 1) return true; // ::1
    if ((first & 0xffc0) === 0xfe80 || (first & 0xfe00) === 0xfc00 || (first & 0xff00) === 0xff00) return true;
    // IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96):
    // judge the embedded IPv4 address, whichever way it was written.
    const embedsV4 =
      (groups.slice(0, 5).every((group) => group === 0) && (groups[5] === 0xffff || groups[5] === 0)) ||
      (first === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0));
    if (embedsV4) {
      const high = groups[6]!;
      const low = groups[7]!;
      return isInternalAddress(`${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`);
    }
    return false;
  }
  const [a, b] = address.split(".").map(Number) as [number, number];
  return (
    a === 127 || a === 10 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224
  );
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted IPv4 part included). */
function expandIPv6(address: string): number[] | undefined {
  let text = address.toLowerCase().replace(/%.*$/, "");
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [, a, b, c, d] = dotted.map(Number) as [number, number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? left.length !== 8 : missing < 0) return undefined;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...right].map((group) => parseInt(group, 16));
  return groups.length === 8 && groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined;
}

type Decision = { allowed: true } | { allowed: false; reason: string };

/** First matching rule wins; internal addresses need a rule without wildcards naming them. */
export async function decideEgress(policy: PermissionPolicy, url: URL): Promise<Decision> {
  if (url.protocol !== "http:" && url.protocol !== "https:") return { allowed: false, reason: `scheme ${url.protocol} is not allowed` };
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const subjects = [`${host}:${port}`, host];
  let explicit = false;
  let allowed: boolean;
  if (typeof policy === "string") {
    allowed = policy === "allow";
  } else {
    const rule = policy.rules.find((candidate) => subjects.some((subject) => globMatch(candidate.pattern, subject)));
    allowed = (rule?.action ?? policy.default) === "allow";
    explicit = rule !== undefined && !rule.pattern.includes("*") && rule.action === "allow";
  }
  if (!allowed) return { allowed: false, reason: `${host}:${port} is denied by the network permission policy` };
  if (!explicit) {
    const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((entry) => entry.address);
    if (addresses.length === 0) return { allowed: false, reason: `${host} does not resolve` };
    if (addresses.some(isInternalAddress)) {
      return { allowed: false, reason: `${host} is a loopback, private or link-local address; name it in a rule to allow it` };
    }
  }
  return { allowed: true };
}

function globMatch(pattern: string, subject: string): boolean {
  const expression = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^:]*");
  return new RegExp(`^${expression}$`, "i").test(subject);
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host", "content-length"]);

/** Serves one proxied guest request (absolute-form request target); never rejects. */
export async function handleEgress(request: IncomingMessage, response: ServerResponse): Promise<void> {
  try {
    await serveEgress(request, response);
  } catch {
    // Whatever went wrong, it is this request's: the host goes on serving.
    response.destroy();
  }
}

async function serveEgress(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const deny = (status: number, message: string) => {
    if (response.headersSent || response.destroyed) {
      response.destroy();
      return;
    }
    response.writeHead(status, { "content-type": "text/plain", "x-secure-exec-denied": "1" });
    response.end(`secure-exec: ${message}\n`);
  };
  const token = request.headers[EGRESS_TOKEN_HEADER];
  const grant = typeof token === "string" ? grants.get(token) : undefined;
  if (!grant) return deny(403, "network access is not granted to this run");
  const { budget } = grant;
  // Both caps are taken before any work (a DNS lookup, a connection) starts.
  if (budget.inFlight >= budget.maxConnections) {
    return deny(429, `limits.egressConnections = ${budget.maxConnections} requests of this run are already in flight`);
  }
  if (budget.bytes >= budget.maxBytes) return deny(429, `this run has used its limits.egressBytes = ${budget.maxBytes} bytes`);
  budget.inFlight += 1;
  const upstreamAbort = new AbortController();
  grant.requests.add(upstreamAbort);
  // The guest side went away (its run ended, its isolate was killed): stop the upstream too.
  const onClose = (): void => {
    if (!response.writableFinished) upstreamAbort.abort(new Error("the guest closed the connection"));
  };
  response.on("close", onClose);
  try {
    await forward(request, response, budget, upstreamAbort, deny);
  } finally {
    budget.inFlight -= 1;
    grant.requests.delete(upstreamAbort);
    response.off("close", onClose);
  }
}

class EgressBytesExceeded extends Error {
  constructor(budget: EgressBudget) {
    super(`this run exceeded its limits.egressBytes = ${budget.maxBytes} bytes`);
  }
}

/** Counts bytes against the run's budget; past it the stream fails (and the request with it). */
function charge(budget: EgressBudget, bytes: number): void {
  budget.bytes += bytes;
  if (budget.bytes > budget.maxBytes) throw new EgressBytesExceeded(budget);
}

async function forward(
  request: IncomingMessage,
  response: ServerResponse,
  budget: EgressBudget,
  upstreamAbort: AbortController,
  deny: (status: number, message: string) => void,
): Promise<void> {
  let url: URL;
  try {
    url = new URL(request.url ?? "");
  } catch {
    return deny(400, "malformed request target");
  }
  const decision = await decideEgress(budget.policy, url);
  if (!decision.allowed) return deny(403, decision.reason);
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === EGRESS_TOKEN_HEADER) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  try {
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const counted = hasBody
      ? (Readable.toWeb(request) as ReadableStream<Uint8Array>).pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              try {
                charge(budget, chunk.byteLength);
              } catch (error) {
                // An upstream still waiting for the rest of the body would hold the request open.
                upstreamAbort.abort(error);
                throw error;
              }
              controller.enqueue(chunk);
            },
          }),
        )
      : undefined;
    const upstream = await fetch(url, {
      method: request.method,
      headers,
      body: counted,
      redirect: "manual",
      signal: upstreamAbort.signal,
      ...(hasBody ? { duplex: "half" } : {}),
    } as RequestInit);
    const declared = Number(upstream.headers.get("content-length"));
    if (Number.isFinite(declared) && declared > budget.maxBytes - budget.bytes) {
      void upstream.body?.cancel().catch(() => {});
      return deny(429, `the response (${declared} bytes) would exceed this run's limits.egressBytes = ${budget.maxBytes} bytes`);
    }
    const replyHeaders: Record<string, string> = {};
    upstream.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name) && name !== "content-encoding") replyHeaders[name] = value;
    });
    response.writeHead(upstream.status, upstream.statusText, replyHeaders);
    if (upstream.body) {
      const reader = upstream.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          charge(budget, value.byteLength);
          // Backpressure: a guest that does not read its body stops the download here,
          // instead of the host buffering it.
          if (!response.write(value)) await drained(response);
          if (response.destroyed) throw new Error("the guest closed the connection");
        }
      } finally {
        void reader.cancel().catch(() => {});
      }
    }
    response.end();
  } catch (error) {
    const exceeded = error instanceof EgressBytesExceeded ? error : upstreamAbort.signal.reason instanceof EgressBytesExceeded ? upstreamAbort.signal.reason : undefined;
    if (response.headersSent) response.destroy();
    else if (exceeded) deny(429, exceeded.message);
    else deny(502, `upstream request failed: ${(error as Error).message}`);
    // A body the guest is still sending is not read on: the connection goes, or it would
    // hold the guest's fetch (and a host socket) until the run's deadline.
    if (!request.complete) {
      const socket = request.socket as Socket | null;
      if (response.writableFinished) socket?.destroy();
      else response.once("finish", () => socket?.destroy());
    }
  }
}

/** Resolves once the response can take more, or it is gone. */
function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}
