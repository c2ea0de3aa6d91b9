// Text tables, the JSON summary and the optional HTML report.
import { EXTRA_FIELDS, HEADLINE_FIELDS, HIGHER_IS_BETTER, type EngineResult } from "./measure.js";
import { round } from "./stats.js";

export interface Unavailable {
  key: string;
  label: string;
  reason: string;
}

export type JsonValue = number | string | boolean | null | JsonValue[] | { [key: string]: JsonValue };

function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ");
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

function show(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  if (Math.abs(value) >= 1) return value.toFixed(2);
  if (Math.abs(value) >= 0.001) return value.toFixed(3);
  return value.toFixed(4);
}

/** secure-exec ÷ peer for every field both have. */
export function ratios(secureExec: EngineResult, peer: EngineResult): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const field of [...HEADLINE_FIELDS, ...EXTRA_FIELDS]) {
    const ours = secureExec.fields[field];
    const theirs = peer.fields[field];
    out[field] = ours !== null && theirs !== null && theirs !== 0 ? round(ours / theirs, 2) : null;
  }
  return out;
}

export function textReport(results: EngineResult[], unavailable: Unavailable[], meta: Record<string, JsonValue>): string {
  const parts: string[] = [];
  parts.push(`secure-exec benchmark — ${String(meta.mode)} run, node ${String(meta.node)}, ${String(meta.cpus)} CPUs, load average at start ${String(meta.loadavg_start)}`);
  parts.push("");
  parts.push("Engines:");
  for (const result of results) parts.push(`  ${result.label.padEnd(26)} ${result.isolation}`);
  for (const missing of unavailable) parts.push(`  ${missing.label.padEnd(26)} UNAVAILABLE: ${missing.reason}`);
  parts.push("");

  const fields = [...HEADLINE_FIELDS, ...EXTRA_FIELDS];
  parts.push("Headline figures (ms unless named otherwise; throughput in runs/s; RSS in MiB):");
  parts.push(
    table(
      ["figure", ...results.map((result) => result.label)],
      fields.map((field) => [field, ...results.map((result) => show(result.fields[field]))]),
    ),
  );
  parts.push("");

  const secureExec = results.find((result) => result.key === "secure_exec");
  const peers = results.filter((result) => result.key !== "secure_exec");
  if (secureExec && peers.length > 0) {
    parts.push("Ratios, secure-exec ÷ peer (latency/RSS: >1 = secure-exec costs more; throughput: <1 = secure-exec does less):");
    parts.push(
      table(
        ["figure", ...peers.map((peer) => `÷ ${peer.label}`)],
        fields.map((field) => [
          `${field}${HIGHER_IS_BETTER.has(field) ? " (↑)" : ""}`,
          ...peers.map((peer) => {
            const ratio = ratios(secureExec, peer)[field];
            return ratio === null || ratio === undefined ? "—" : `${show(ratio)}×`;
          }),
        ]),
      ),
    );
    parts.push("");
  }

  for (const result of results) {
    parts.push(`${result.label} — per workload (ms), ${(result.elapsedMs / 1000).toFixed(1)} s in all:`);
    parts.push(
      table(
        ["workload", "n", "p50", "p95", "p99", "min", "max"],
        Object.entries(result.workloads).map(([name, summary]) =>
          summary
            ? [name, String(summary.n), show(summary.p50), show(summary.p95), show(summary.p99), show(summary.min), show(summary.max)]
            : [name, "0", "—", "—", "—", "—", "—"],
        ),
      ),
    );
    const extras = Object.entries(result.extras);
    if (extras.length > 0) parts.push(`  extras: ${extras.map(([key, value]) => `${key}=${show(value)}`).join(", ")}`);
    for (const note of result.notes) parts.push(`  note: ${note}`);
    for (const error of result.errors) parts.push(`  ERROR: ${error}`);
    parts.push("");
  }
  return parts.join("\n");
}

function engineJson(result: EngineResult): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = { ...result.fields };
  for (const [key, value] of Object.entries(result.extras)) out[key] = value;
  if (result.errors.length > 0) out.errors = result.errors;
  return out;
}

export function jsonReport(results: EngineResult[], unavailable: Unavailable[], meta: Record<string, JsonValue>): Record<string, JsonValue> {
  const secureExec = results.find((result) => result.key === "secure_exec");
  const peers: Record<string, JsonValue> = {};
  const ratioTable: Record<string, JsonValue> = {};
  for (const result of results) {
    if (result.key === "secure_exec") continue;
    peers[result.key] = engineJson(result);
    if (secureExec) ratioTable[result.key] = ratios(secureExec, result);
  }
  for (const missing of unavailable) peers[missing.key] = { unavailable: missing.reason };
  return {
    secure_exec: secureExec ? engineJson(secureExec) : { unavailable: "not measured" },
    peers,
    ratios_secure_exec_over_peer: ratioTable,
    meta,
  };
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

const COLORS = ["#d9480f", "#1971c2", "#2f9e44", "#7048e8", "#e8590c", "#0c8599"];

/** A self-contained page: one horizontal bar chart (SVG) per headline figure. */
export function htmlReport(results: EngineResult[], unavailable: Unavailable[], meta: Record<string, JsonValue>): string {
  const charts: string[] = [];
  const width = 720;
  const labelWidth = 190;
  const barHeight = 22;
  for (const field of [...HEADLINE_FIELDS, ...EXTRA_FIELDS]) {
    const entries = results.map((result, index) => ({ label: result.label, value: result.fields[field], color: COLORS[index % COLORS.length]! }));
    const known = entries.filter((entry) => entry.value !== null);
    if (known.length === 0) continue;
    const max = Math.max(...known.map((entry) => entry.value ?? 0), 1e-9);
    const height = entries.length * (barHeight + 6) + 10;
    const bars = entries
      .map((entry, index) => {
        const y = 5 + index * (barHeight + 6);
        const barWidth = entry.value === null ? 0 : Math.max(1, ((width - labelWidth - 90) * entry.value) / max);
        const text = entry.value === null ? "n/a" : show(entry.value);
        return (
          `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escapeXml(entry.label)}</text>` +
          `<rect x="${labelWidth}" y="${y}" width="${barWidth.toFixed(1)}" height="${barHeight}" fill="${entry.color}"/>` +
          `<text x="${(labelWidth + barWidth + 6).toFixed(1)}" y="${y + 15}">${escapeXml(text)}</text>`
        );
      })
      .join("");
    const direction = HIGHER_IS_BETTER.has(field) ? "higher is better" : "lower is better";
    charts.push(
      `<h2>${escapeXml(field)} <small>(${direction})</small></h2>` +
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">${bars}</svg>`,
    );
  }
  const missing = unavailable.map((entry) => `<li>${escapeXml(entry.label)}: unavailable — ${escapeXml(entry.reason)}</li>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>secure-exec benchmark</title>
<style>body{font-family:sans-serif;max-width:800px;margin:2em auto;color:#222}h2{font-size:1em;margin:1.6em 0 .3em}small{color:#777;font-weight:normal}pre{background:#f4f4f4;padding:1em;overflow:auto}</style>
</head><body>
<h1>secure-exec benchmark</h1>
<p>${escapeXml(`${String(meta.mode)} run, ${String(meta.date)}, node ${String(meta.node)}, ${String(meta.cpus)} CPUs, load average at start ${String(meta.loadavg_start)}`)}</p>
<ul>${results.map((result) => `<li><b>${escapeXml(result.label)}</b>: ${escapeXml(result.isolation)}</li>`).join("")}${missing}</ul>
${charts.join("\n")}
<h2>Raw figures</h2><pre>${escapeXml(JSON.stringify(jsonReport(results, unavailable, meta), null, 2))}</pre>
</body></html>
`;
}
