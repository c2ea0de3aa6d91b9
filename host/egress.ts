// Guest network access. Guests have no outbound network unless the runtime's `network`
// permission grants it; then their fetches reach this host-side proxy (workerd's proxy-style
// external service), which checks the run's policy and forwards allowed requests.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { PermissionPolicy } from "../runtime/options.js";

export const EGRESS_TOKEN_HEADER = "x-secure-exec-egress";

const policies = new Map<string, PermissionPolicy>();

export function registerEgressPolicy(token: string, policy: PermissionPolicy): () => void {
  policies.set(token, policy);
  return () => policies.delete(token);
}

/** Addresses a guest reaches only when a rule names them exactly. */
export function isInternalAddress(address: string): boolean {
  if (isIP(address) === 6) {
    const lower = address.toLowerCase();
    if (lower === "::1" || lower === "::" || lower.startsWith("fe80:") || lower.startsWith("fc") || lower.startsWith("fd")) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped ? isInternalAddress(mapped[1]!) : false;
  }
  const [a, b] = address.split(".").map(Number) as [number, number];
  return (
    a === 127 || a === 10 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224
  );
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

/** Serves one proxied guest request (absolute-form request target). */
export async function handleEgress(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const deny = (status: number, message: string) => {
    response.writeHead(status, { "content-type": "text/plain", "x-secure-exec-denied": "1" });
    response.end(`secure-exec: ${message}\n`);
  };
  const token = request.headers[EGRESS_TOKEN_HEADER];
  const policy = typeof token === "string" ? policies.get(token) : undefined;
  if (!policy) return deny(403, "network access is not granted to this run");
  let url: URL;
  try {
    url = new URL(request.url ?? "");
  } catch {
    return deny(400, "malformed request target");
  }
  const decision = await decideEgress(policy, url);
  if (!decision.allowed) return deny(403, decision.reason);
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === EGRESS_TOKEN_HEADER) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  try {
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const upstream = await fetch(url, {
      method: request.method,
      headers,
      body: hasBody ? (Readable.toWeb(request) as ReadableStream<Uint8Array>) : undefined,
      redirect: "manual",
      ...(hasBody ? { duplex: "half" } : {}),
    } as RequestInit);
    const replyHeaders: Record<string, string> = {};
    upstream.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name) && name !== "content-encoding") replyHeaders[name] = value;
    });
    response.writeHead(upstream.status, upstream.statusText, replyHeaders);
    if (upstream.body) {
      for await (const chunk of upstream.body as unknown as AsyncIterable<Uint8Array>) response.write(chunk);
    }
    response.end();
  } catch (error) {
    if (!response.headersSent) deny(502, `upstream request failed: ${(error as Error).message}`);
    else response.destroy();
  }
}
