// Part of `node:fs` for guests (guest-fs.js): guest paths as Node takes them (strings,
// Buffers, file: URLs), resolved against `process.cwd()`.
import { argError, describe, fsError, shownAs } from "./secure-exec-fs-errors.js";

// ---------------------------------------------------------------------------------------
// Paths.

const ROOT_PATH = "/";
function parentOf(path) {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? ROOT_PATH : path.slice(0, slash);
}

function baseName(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

function joinPath(dir, name) {
  return dir === ROOT_PATH ? `/${name}` : `${dir}/${name}`;
}

function normalize(absolute) {
  const parts = [];
  for (const part of absolute.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function pathText(path, name = "path") {
  if (typeof path === "string") {
    if (path.includes("\u0000")) {
      throw argError("ERR_INVALID_ARG_VALUE", `The argument '${name}' must be a string, Uint8Array, or URL without null bytes. Received ${JSON.stringify(path)}`);
    }
    return path;
  }
  if (path instanceof URL) {
    if (path.protocol !== "file:") throw argError("ERR_INVALID_URL_SCHEME", "The URL must be of scheme file");
    return decodeURIComponent(path.pathname);
  }
  if (path instanceof Uint8Array) return pathText(Buffer.from(path).toString("utf8"), name);
  throw argError("ERR_INVALID_ARG_TYPE", `The "${name}" argument must be of type string or an instance of Buffer or URL. Received ${describe(path)}`);
}

/** Absolute, normalised guest path; relative paths resolve against `process.cwd()`. */
function resolvePath(path, name) {
  const text = pathText(path, name);
  if (text === "") throw fsError("ENOENT", "open", "");
  const resolved = normalize(text.startsWith("/") ? text : `${process.cwd()}/${text}`);
  if (shownAs.size > 64) shownAs.clear();
  shownAs.set(resolved, text);
  return resolved;
}

function under(path, prefix) {
  return prefix === ROOT_PATH || path === prefix || path.startsWith(`${prefix}/`);
}

export { ROOT_PATH, parentOf, baseName, under, joinPath, resolvePath, pathText };
