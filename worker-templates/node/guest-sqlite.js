// `node:sqlite` for guests: the sandbox has no SQLite (workerd's classes say only "Illegal
// constructor"), so opening a database fails at once with a clear error. Loading it warns
// that it is experimental, as Node 22 does.
import { bridge, sandboxBuiltins } from "./secure-exec-bridge.js";
import { unsupported } from "./secure-exec-unsupported.js";

const real = process.getBuiltinModule("node:sqlite");

bridge.afterLoad.push(() => process.emitWarning("SQLite is an experimental feature and might change at any time", "ExperimentalWarning"));

export class DatabaseSync {
  constructor() {
    throw unsupported("node:sqlite DatabaseSync", "guests have no SQLite");
  }
}
export class StatementSync {
  constructor() {
    throw unsupported("node:sqlite StatementSync", "guests have no SQLite");
  }
}
export const constants = real?.constants ?? {};
export function backup() {
  throw unsupported("node:sqlite backup", "guests have no SQLite");
}

const sqliteModule = { DatabaseSync, StatementSync, constants, backup };
sandboxBuiltins.set("sqlite", sqliteModule);
export default sqliteModule;
