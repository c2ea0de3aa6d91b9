// A runtime created without options skips the option schemas: its defaults must be exactly
// what the schemas make of no options.
import { describe, expect, it } from "vitest";
import { defaultRuntimeOptions, isEmptyOptions } from "../host/api/options-core.js";
import { execOptionsSchema, parseOptions, runtimeOptionsSchema } from "../host/api/options.js";

describe("options without a schema", () => {
  it("the defaults equal the schema's parse of no options", () => {
    expect(defaultRuntimeOptions()).toStrictEqual(parseOptions(runtimeOptionsSchema, {}, "test"));
    expect(parseOptions(execOptionsSchema, {}, "test")).toStrictEqual({});
  });

  it("only undefined, null and a plain empty object count as no options", () => {
    expect(isEmptyOptions(undefined)).toBe(true);
    expect(isEmptyOptions(null)).toBe(true);
    expect(isEmptyOptions({})).toBe(true);
    expect(isEmptyOptions({ cwd: undefined })).toBe(false);
    expect(isEmptyOptions(Object.create(null))).toBe(false);
    expect(isEmptyOptions({ [Symbol("x")]: 1 })).toBe(false);
    expect(isEmptyOptions("")).toBe(false);
    expect(isEmptyOptions([])).toBe(false);
  });

  it("each runtime gets defaults of its own", () => {
    const first = defaultRuntimeOptions();
    first.env.X = "1";
    first.limits.memoryMb = 1;
    expect(defaultRuntimeOptions().env).toStrictEqual({});
    expect(defaultRuntimeOptions().limits.memoryMb).toBe(128);
  });
});
