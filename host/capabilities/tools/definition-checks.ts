// The schema libraries behind tool definitions (zod for the definition, Ajv for its input
// schema), loaded only by runtimes and servers that register tools (host/capabilities/tools/tool-gateway.ts).
import { Ajv } from "ajv";
import { z } from "zod";

export const definitionSchema = z.object({
  description: z.string(),
  inputSchema: z.record(z.string(), z.unknown()),
  handler: z.custom<(...args: unknown[]) => unknown>((value) => typeof value === "function", {
    message: "handler must be a function",
  }),
  timeoutMs: z.number().int().positive().optional(),
  examples: z.array(z.unknown()).optional(),
  commandAliases: z.array(z.string()).optional(),
});

export function createAjv(): Ajv {
  return new Ajv({ allErrors: true, strict: false });
}
