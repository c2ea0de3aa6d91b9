export { NodeRuntime, type ResourceSnapshot, type RuntimeStats } from "./node-runtime.js";
export { InvalidOptionsError } from "./options-core.js";
export { ToolDefinitionError } from "../host/tool-gateway.js";
export { PoolDisposedError as RuntimeDisposedError } from "../host/process-pool.js";
export type * from "./types.js";
