// The shape check of guest JSON the host parses: its count of openers answers a text with
// few of them; the scan answers the rest, strings and escapes included.
import { describe, expect, it } from "vitest";
import { JsonShapeScanner, jsonShapeProblem } from "../host/engine/json-shape.js";

const LIMITS = { maxDepth: 3, maxContainers: 5 };

describe("jsonShapeProblem", () => {
  it("agrees with the piecewise scanner on every text", () => {
    const texts = [
      "[0,0,0]",
      "[[[[0]]]]",
      "[[],[],[],[],[],[]]",
      '["[[[[[[", "{{{{{{"]',
      '["\\"[[[[[[", {"a": [1]}]',
      '{"a":{"b":{"c":{}}}}',
      JSON.stringify(new Array(100_000).fill(0)),
    ];
    for (const text of texts) expect(jsonShapeProblem(text, LIMITS)).toBe(new JsonShapeScanner(LIMITS).push(text));
    expect(jsonShapeProblem("[[[[0]]]]", LIMITS)).toBe("nests deeper than 3 levels");
    expect(jsonShapeProblem("[[],[],[],[],[],[]]", LIMITS)).toBe("holds more than 5 objects and arrays");
    // Openers inside strings count toward the quick answer only; the scan skips them.
    expect(jsonShapeProblem('["[[[[[[", "{{{{{{"]', LIMITS)).toBeUndefined();
  });
});
