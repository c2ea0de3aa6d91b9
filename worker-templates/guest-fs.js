// `node:fs` for guests: the runtime's virtual filesystem. The host ships a snapshot with
// the run; the guest reads and writes it in memory (so sync forms work) and hands the
// changes back at the end of the run.
import { bridge } from "./secure-exec-bridge.js";

let tree;

function state() {
  if (tree) return tree;
  const snapshot = bridge.fsSnapshot ?? { files: {} };
  tree = { files: new Map(), written: new Set(), deleted: new Set() };
  for (const [path, base64] of Object.entries(snapshot.files ?? {})) tree.files.set(path, Buffer.from(base64, "base64"));
  bridge.fsChanges = () => {
    if (tree.written.size === 0 && tree.deleted.size === 0) return undefined;
    const writes = {};
    for (const path of tree.written) writes[path] = tree.files.get(path).toString("base64");
    return { writes, deletes: [...tree.deleted] };
  };
  return tree;
}

function resolvePath(path) {
  const text = String(path instanceof URL ? path.pathname : path);
  const absolute = text.startsWith("/") ? text : `${process.cwd().replace(/\/$/, "")}/${text}`;
  const parts = [];
  for (const part of absolute.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function fsError(code, syscall, path) {
  const messages = { ENOENT: "no such file or directory", EISDIR: "illegal operation on a directory" };
  const error = new Error(`${code}: ${messages[code] ?? code}, ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

export function readFileSync(path, options) {
  const resolved = resolvePath(path);
  const bytes = state().files.get(resolved);
  if (!bytes) throw fsError("ENOENT", "open", resolved);
  const encoding = typeof options === "string" ? options : options?.encoding;
  return encoding ? bytes.toString(encoding) : Buffer.from(bytes);
}

export function writeFileSync(path, data, options) {
  const resolved = resolvePath(path);
  const encoding = typeof options === "string" ? options : (options?.encoding ?? "utf8");
  const { files, written, deleted } = state();
  files.set(resolved, typeof data === "string" ? Buffer.from(data, encoding) : Buffer.from(data));
  written.add(resolved);
  deleted.delete(resolved);
}

export function existsSync(path) {
  const resolved = resolvePath(path);
  const { files } = state();
  if (files.has(resolved)) return true;
  const prefix = resolved === "/" ? "/" : `${resolved}/`;
  for (const file of files.keys()) if (file.startsWith(prefix)) return true;
  return false;
}

export function readdirSync(path) {
  const resolved = resolvePath(path);
  const prefix = resolved === "/" ? "/" : `${resolved}/`;
  const names = new Set();
  for (const file of state().files.keys()) {
    if (file.startsWith(prefix)) names.add(file.slice(prefix.length).split("/")[0]);
  }
  if (names.size === 0 && !existsSync(resolved)) throw fsError("ENOENT", "scandir", resolved);
  return [...names].sort();
}

export const promises = {
  readFile: async (path, options) => readFileSync(path, options),
  writeFile: async (path, data, options) => writeFileSync(path, data, options),
  readdir: async (path) => readdirSync(path),
};

export default { readFileSync, writeFileSync, existsSync, readdirSync, promises };
