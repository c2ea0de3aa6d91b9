// `node:path` for ES-module packages (host/compile/node-modules.ts) and for fs.glob: the
// prelude's (what guest code imports: relative paths resolve against the guest's
// `process.cwd()`), with a `matchesGlob` that works (workerd's throws), which the prelude's
// path uses too once this is loaded.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const preludePath = process.getBuiltinModule("node:path");

function escapeRegExp(text) {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

/** A glob (`*`, `?`, `**`, `[...]`, `{a,b}`) as a regular expression over a whole path. */
export function globToRegExp(pattern) {
  let source = "";
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    const atSegmentStart = i === 0 || pattern[i - 1] === "/";
    if (char === "*") {
      if (pattern[i + 1] === "*") {
        const segmentEnd = i + 2 === pattern.length || pattern[i + 2] === "/";
        if (atSegmentStart && segmentEnd) {
          // `**/` matches any number of directories (none included); a trailing `**` anything.
          if (pattern[i + 2] === "/") {
            source += "(?:(?!\\.)[^/]*/)*";
            i += 2;
          } else {
            source += "(?:(?!\\.)[^/]*(?:/(?!\\.)[^/]*)*)?";
            i += 1;
          }
          continue;
        }
        i += 1;
      }
      source += atSegmentStart ? "(?!\\.)[^/]*" : "[^/]*";
    } else if (char === "?") {
      source += atSegmentStart ? "(?!\\.)[^/]" : "[^/]";
    } else if (char === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end === -1) {
        source += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negated = body.startsWith("!") || body.startsWith("^");
      if (negated) body = body.slice(1);
      source += `[${negated ? "^/" : ""}${body.replace(/[\\\]]/g, "\\$&")}]`;
      i = end;
    } else if (char === "{") {
      depth += 1;
      source += "(?:";
    } else if (char === "}" && depth > 0) {
      depth -= 1;
      source += ")";
    } else if (char === "," && depth > 0) {
      source += "|";
    } else if (char === "\\" && i + 1 < pattern.length) {
      source += escapeRegExp(pattern[++i]);
    } else {
      source += escapeRegExp(char);
    }
  }
  while (depth-- > 0) source += ")";
  return new RegExp(`^${source}$`);
}

const globCache = new Map();

function matchesGlob(path, pattern) {
  if (typeof path !== "string") throw invalidString("path", path);
  if (typeof pattern !== "string") throw invalidString("pattern", pattern);
  let regExp = globCache.get(pattern);
  if (!regExp) {
    if (globCache.size > 256) globCache.clear();
    regExp = globToRegExp(pattern);
    globCache.set(pattern, regExp);
  }
  return regExp.test(preludePath.normalize(path).replace(/\/$/, ""));
}

function invalidString(name, value) {
  const error = new TypeError(`The "${name}" argument must be of type string. Received ${value === null ? "null" : typeof value}`);
  error.code = "ERR_INVALID_ARG_TYPE";
  return error;
}

const pathModule = { ...preludePath, matchesGlob };
pathModule.posix = pathModule;
// The prelude's path.matchesGlob is this one once loaded.
sandboxBuiltins.set("path", pathModule);

export const { normalize, isAbsolute, join, toNamespacedPath, dirname, basename, extname, format, parse, sep, delimiter, win32, resolve, relative } = pathModule;
export { matchesGlob };
export const posix = pathModule;
export default pathModule;
