// What a JSON text would cost to parse, found before it is parsed. JSON.parse is linear in
// bytes, but its cost per byte depends on the shape: a megabyte of `[]` is ~350,000 arrays
// and a megabyte of `[` nests 500,000 deep, each far slower to build than a megabyte of
// string. Guest-controlled JSON the host parses on its event loop is checked here first,
// piece by piece as it arrives; strings are skipped with native searches.

export interface JsonShapeLimits {
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
  /** Most objects and arrays in all. */
  maxContainers: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** Scans JSON text in pieces (a piece may end anywhere, even inside a string or an escape). */
export class JsonShapeScanner {
  private depth = 0;
  private containers = 0;
  private inString = false;
  /** Inside a string: the previous piece ended on an odd run of backslashes. */
  private oddBackslashes = false;

  constructor(private readonly limits: JsonShapeLimits) {}

  /** Why the text so far is over its limits, or undefined. */
  push(text: string): string | undefined {
    const end = text.length;
    let index = 0;
    while (index < end) {
      if (this.inString) {
        // The next quote ends the string unless an odd run of backslashes precedes it.
        const quote = text.indexOf('"', index);
        if (quote === -1) {
          this.oddBackslashes = this.trailingRunIsOdd(text, end, index);
          return undefined;
        }
        const escaped = this.trailingRunIsOdd(text, quote, index);
        this.oddBackslashes = false;
        index = quote + 1;
        if (!escaped) this.inString = false;
        continue;
      }
      const code = text.charCodeAt(index);
      if (code === QUOTE) {
        this.inString = true;
        this.oddBackslashes = false;
      } else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
        this.depth += 1;
        this.containers += 1;
        if (this.depth > this.limits.maxDepth) return `nests deeper than ${this.limits.maxDepth} levels`;
        if (this.containers > this.limits.maxContainers) return `holds more than ${this.limits.maxContainers} objects and arrays`;
      } else if (code === CLOSE_ARRAY || code === CLOSE_OBJECT) {
        this.depth -= 1;
      }
      index += 1;
    }
    return undefined;
  }

  /** Whether the backslashes just before `at` (back to `from`, then the previous piece's) are odd. */
  private trailingRunIsOdd(text: string, at: number, from: number): boolean {
    let position = at - 1;
    while (position >= from && text.charCodeAt(position) === BACKSLASH) position -= 1;
    const odd = (at - 1 - position) % 2 === 1;
    // A run that reaches back to where this piece's string text began continues the last piece's.
    return position < from && from === 0 && this.oddBackslashes ? !odd : odd;
  }
}

/** Why `text` is over `limits`, or undefined. */
export function jsonShapeProblem(text: string, limits: JsonShapeLimits): string | undefined {
  // Nesting and containers are at most the `[` and `{` in the text: when those are few
  // (a megabyte of numbers or strings), native searches answer without the scan.
  const most = Math.min(limits.maxDepth, limits.maxContainers);
  let openers = 0;
  for (const opener of ["[", "{"]) {
    for (let at = text.indexOf(opener); at !== -1 && openers <= most; at = text.indexOf(opener, at + 1)) openers += 1;
  }
  if (openers <= most) return undefined;
  return new JsonShapeScanner(limits).push(text);
}
