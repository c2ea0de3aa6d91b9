// `node:perf_hooks` for guests: workerd's, with a PerformanceObserver that sees the run's
// marks and measures (workerd's never fires). Importing it makes `performance.mark` and
// `performance.measure` report to observers, as they do in Node.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:perf_hooks");
const performance = real.performance ?? globalThis.performance;
const observers = new Set();
const ENTRY_TYPES = ["mark", "measure"];

class PerformanceObserverEntryList {
  constructor(entries) {
    this._entries = entries;
  }
  getEntries() {
    return [...this._entries];
  }
  getEntriesByType(type) {
    return this._entries.filter((entry) => entry.entryType === type);
  }
  getEntriesByName(name, type) {
    return this._entries.filter((entry) => entry.name === name && (type === undefined || entry.entryType === type));
  }
}

export class PerformanceObserver {
  static get supportedEntryTypes() {
    return [...ENTRY_TYPES];
  }
  constructor(callback) {
    if (typeof callback !== "function") {
      const error = new TypeError(`The "callback" argument must be of type function. Received ${typeof callback}`);
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
    this._callback = callback;
    this._types = new Set();
    this._queue = [];
    this._scheduled = false;
  }
  observe(options = {}) {
    const types = options.entryTypes ?? (options.type ? [options.type] : []);
    for (const type of types) if (ENTRY_TYPES.includes(type)) this._types.add(type);
    observers.add(this);
    if (options.buffered) for (const type of this._types) for (const entry of performance.getEntriesByType(type)) this._enqueue(entry);
  }
  disconnect() {
    observers.delete(this);
    this._queue = [];
  }
  takeRecords() {
    const records = this._queue;
    this._queue = [];
    return records;
  }
  _enqueue(entry) {
    if (!this._types.has(entry.entryType)) return;
    this._queue.push(entry);
    if (this._scheduled) return;
    this._scheduled = true;
    // Node delivers entries in a batch, after the code that made them.
    setTimeout(() => {
      this._scheduled = false;
      if (!observers.has(this) || this._queue.length === 0) return;
      const list = new PerformanceObserverEntryList(this.takeRecords());
      this._callback(list, this);
    }, 0);
  }
}

function notify(entry) {
  if (entry && typeof entry === "object") for (const observer of observers) observer._enqueue(entry);
  return entry;
}

for (const name of ["mark", "measure"]) {
  const original = performance[name];
  if (typeof original === "function" && !original.secureExecObserved) {
    const reporting = function (...args) {
      return notify(original.apply(this, args));
    };
    reporting.secureExecObserved = true;
    try {
      performance[name] = reporting;
    } catch {
      // a frozen performance object keeps its own
    }
  }
}

export { PerformanceObserverEntryList };
export * from "node:perf_hooks";
const perfHooksModule = { ...real, performance, PerformanceObserver, PerformanceObserverEntryList };
export default perfHooksModule;
for (const name of ["perf_hooks", "node:perf_hooks"]) sandboxBuiltins.set(name, perfHooksModule);
