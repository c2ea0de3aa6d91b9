// Captures one output channel of a run up to a byte cap, streaming chunks to a listener.
import { Buffer } from "node:buffer";
import type { OutputListener } from "../api/types.js";

const encoder = new TextEncoder();

function isWellFormed(text: string): boolean {
  const check = (text as unknown as { isWellFormed?: () => boolean }).isWellFormed;
  return typeof check === "function" && check.call(text);
}

export class OutputCapture {
  private readonly parts: string[] = [];
  private bytes = 0;
  private truncated = false;

  constructor(
    private readonly channel: "stdout" | "stderr",
    private readonly capBytes: number,
    private readonly listener?: OutputListener,
  ) {}

  write(text: string): void {
    if (this.truncated || text.length === 0) return;
    // Well-formed text that fits needs no copy unless a listener wants its bytes.
    if (!this.listener && isWellFormed(text)) {
      const bytes = Buffer.byteLength(text);
      if (this.bytes + bytes <= this.capBytes) {
        this.bytes += bytes;
        this.parts.push(text);
        return;
      }
    }
    let chunk = encoder.encode(text);
    if (this.bytes + chunk.byteLength > this.capBytes) {
      chunk = chunk.subarray(0, this.capBytes - this.bytes);
      // Do not end on half a UTF-8 sequence.
      let cut = chunk.byteLength;
      while (cut > 0 && (chunk[cut - 1]! & 0xc0) === 0x80) cut -= 1;
      if (cut > 0 && chunk[cut - 1]! >= 0xc0) cut -= 1;
      chunk = chunk.subarray(0, cut);
      this.truncated = true;
    }
    this.bytes += chunk.byteLength;
    // Whole, well-formed text is kept as it is; otherwise as what its UTF-8 bytes say (lone
    // surrogates become U+FFFD, as on a Node pipe).
    const kept = !this.truncated && isWellFormed(text) ? text : new TextDecoder().decode(chunk);
    this.parts.push(kept);
    if (chunk.byteLength > 0) this.listener?.(chunk);
    if (this.truncated) {
      const marker = `\n[secure-exec: ${this.channel} truncated at ${this.capBytes} bytes]\n`;
      this.parts.push(marker);
      this.listener?.(encoder.encode(marker));
    }
  }

  /** Host-side notes (time limit, lost process) bypass the cap so they are never lost. */
  note(text: string): void {
    this.parts.push(text);
    this.listener?.(encoder.encode(text));
  }

  get hasOutput(): boolean {
    return this.bytes > 0;
  }

  text(): string {
    return this.parts.join("");
  }
}
