export { NodeRuntime, type ResourceSnapshot, type RuntimeStats } from "./node-runtime.js";
export { InvalidOptionsError } from "../host/api/options-core.js";
export { ToolDefinitionError } from "../host/capabilities/tools/tool-gateway.js";
export { PoolDisposedError as RuntimeDisposedError } from "../host/engine/process-pool.js";
export type * from "../host/api/types.js";
