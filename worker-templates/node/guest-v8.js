// `node:v8` for guests: workerd's, whose heap statistics are all zeros, with figures that
// agree with process.memoryUsage() (fixed, plausible estimates: workerd gives no per-isolate
// heap figures) and the run's memory limit as the heap's.
import { sandboxBuiltins } from "./secure-exec-bridge.js";

const real = process.getBuiltinModule("node:v8");

export function getHeapStatistics() {
  const { heapTotal, heapUsed, external } = process.memoryUsage();
  const limit = process.getBuiltinModule("node:os").totalmem();
  // Node 22's fields, in its order.
  return {
    total_heap_size: heapTotal,
    total_heap_size_executable: 262_144,
    total_physical_size: heapTotal,
    total_available_size: limit - heapUsed,
    used_heap_size: heapUsed,
    heap_size_limit: limit,
    malloced_memory: 262_144,
    peak_malloced_memory: 1_048_576,
    does_zap_garbage: 0,
    number_of_native_contexts: 1,
    number_of_detached_contexts: 0,
    total_global_handles_size: 8_192,
    used_global_handles_size: 2_240,
    external_memory: external,
  };
}

const v8Module = { ...real, getHeapStatistics };

export * from "node:v8";
export default v8Module;
for (const name of ["v8", "node:v8"]) sandboxBuiltins.set(name, v8Module);
