// Names a Code Mode guest sees: tool names turned into identifiers the way Code Mode's own
// type generator spells them (so `codemode.get_weather` in its generated types is what the
// guest can call), and the checks on provider and connector names.

/**
 * Words that cannot name a property shorthand or a binding: ECMAScript keywords, literals,
 * strict-mode and older future-reserved words (Code Mode appends `_` to all of them).
 */
const RESERVED_WORDS = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends false finally for " +
    "function if import in instanceof new null return super switch this throw true try typeof var void while with " +
    "yield let static implements interface package private protected public await arguments eval undefined " +
    "abstract boolean byte char double final float goto int long native short synchronized throws transient volatile"
  ).split(" "),
);

const IDENTIFIER = /^[a-zA-Z_$][a-zA-Z0-9_$]*$/;

/** Globals and internals of the generated guest module that a provider or connector must not shadow. */
export const RESERVED_GLOBALS = new Set([
  "__codemode",
  "__codemodeMain",
  "__codemodeOutcome",
  "__return",
  "callHostTool",
  "globalThis",
  "console",
  "process",
  "Promise",
  "Error",
  "TypeError",
  "JSON",
  "Object",
  "Array",
  "String",
  "Proxy",
  "Reflect",
  "Symbol",
  "ArrayBuffer",
  "DataView",
  "Uint8Array",
  "setTimeout",
  "clearTimeout",
  "atob",
  "btoa",
]);

/** Tool name → identifier: `-`, `.`, whitespace → `_`; other invalid characters dropped;
 * a leading digit gets a `_` prefix; a reserved word a `_` suffix. */
export function sanitizeToolName(name: string): string {
  let sanitized = name.replace(/[-.\s]/g, "_").replace(/[^a-zA-Z0-9_$]/g, "");
  if (sanitized === "") return "_";
  if (/^[0-9]/.test(sanitized)) sanitized = `_${sanitized}`;
  if (RESERVED_WORDS.has(sanitized)) sanitized = `${sanitized}_`;
  return sanitized;
}

/** Why `name` cannot name a guest global, or undefined when it can. */
export function globalNameProblem(name: unknown, what: "Provider" | "Connector"): string | undefined {
  if (typeof name !== "string") return `${what} name must be a string (got ${typeof name})`;
  if (RESERVED_GLOBALS.has(name)) return `${what} name "${name}" is reserved`;
  if (!IDENTIFIER.test(name) || RESERVED_WORDS.has(name)) return `${what} name "${name.slice(0, 100)}" is not a valid JavaScript identifier`;
  return undefined;
}
