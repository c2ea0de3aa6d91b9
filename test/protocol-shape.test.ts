// The run message and the event stream are declared once, in host/engine/supervisor-protocol.ts;
// the JS side (the supervisor and the guest's isolate) uses the same field names by hand. This
// parses that side and checks it reads and writes exactly the declared keys.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as acorn from "acorn";
import * as walk from "acorn-walk";
import { describe, expect, it } from "vitest";
import { GUEST_EVENT_KEYS, GUEST_WORKER_KEYS, RUN_INPUT_KEYS, RUN_MESSAGE_KEYS } from "../host/engine/supervisor-protocol.js";

const templates = fileURLToPath(new URL("../worker-templates/", import.meta.url));

type AnyNode = acorn.Node & Record<string, any>;

function parse(file: string): acorn.Node {
  return acorn.parse(readFileSync(join(templates, file), "utf8"), { ecmaVersion: "latest", sourceType: "module" });
}

function keyName(node: AnyNode): string | undefined {
  if (node.type === "Identifier") return node.name;
  if (node.type === "Literal" && typeof node.value === "string") return node.value;
  return undefined;
}

/** Property names read off `name.x` (or `….name.x`, e.g. `this.input.x`, `activeRun?.input.x`). */
function readsOf(tree: acorn.Node, name: string): Set<string> {
  const keys = new Set<string>();
  walk.full(tree, (node: AnyNode) => {
    if (node.type !== "MemberExpression" || node.computed) return;
    const object = node.object as AnyNode;
    const named = object.type === "Identifier" ? object.name : object.type === "MemberExpression" && !object.computed ? keyName(object.property) : undefined;
    if (named === name) keys.add(keyName(node.property)!);
  });
  return keys;
}

/** Keys of the object literals handed to calls of these functions (or methods) as their first argument. */
function objectKeysPassedTo(tree: acorn.Node, callees: string[], everyArgument = false): Set<string> {
  const keys = new Set<string>();
  walk.full(tree, (node: AnyNode) => {
    if (node.type !== "CallExpression") return;
    const callee = node.callee as AnyNode;
    const name = callee.type === "Identifier" ? callee.name : callee.type === "MemberExpression" ? keyName(callee.property) : undefined;
    if (!name || !callees.includes(name)) return;
    for (const argument of (everyArgument ? node.arguments : node.arguments.slice(0, 1)) as AnyNode[]) {
      if (argument.type !== "ObjectExpression") continue;
      for (const property of argument.properties as AnyNode[]) {
        if (property.type === "Property" && !property.computed) keys.add(keyName(property.key)!);
      }
    }
  });
  return keys;
}

/** First arguments of calls of these functions that are string literals. */
function stringsPassedTo(tree: acorn.Node, callees: string[]): Set<string> {
  const values = new Set<string>();
  walk.full(tree, (node: AnyNode) => {
    if (node.type !== "CallExpression") return;
    const callee = node.callee as AnyNode;
    const name = callee.type === "Identifier" ? callee.name : callee.type === "MemberExpression" ? keyName(callee.property) : undefined;
    const first = node.arguments[0] as AnyNode | undefined;
    if (name && callees.includes(name) && first?.type === "Literal" && typeof first.value === "string") values.add(first.value);
  });
  return values;
}

const sorted = (keys: Iterable<string>) => [...keys].sort();

describe("the run message and the event stream, on the JS side", () => {
  const supervisor = parse("supervisor.js");
  const prelude = parse("guest-prelude.js");
  const http = parse("http/guest-http.js");

  it("the supervisor reads the run message's fields and its worker's, and nothing else", () => {
    expect(sorted(readsOf(supervisor, "message"))).toEqual(sorted(RUN_MESSAGE_KEYS));
    expect(sorted(readsOf(supervisor, "worker"))).toEqual(sorted(GUEST_WORKER_KEYS));
  });

  it("the prelude reads the run input's fields, and nothing else", () => {
    expect(sorted(readsOf(prelude, "input"))).toEqual(sorted(RUN_INPUT_KEYS));
  });

  it("the isolate and the supervisor write only the declared events, and all of them", () => {
    // Output goes out as `{ [channel]: text }`: the channels are the literals handed to
    // writeChannel and makeWritable.
    const channels = stringsPassedTo(prelude, ["writeChannel", "makeWritable"]);
    expect(sorted(channels)).toEqual(["e", "o"]);
    const written = new Set([
      ...channels,
      ...objectKeysPassedTo(prelude, ["emit"]),
      ...objectKeysPassedTo(http, ["emit"]),
      ...objectKeysPassedTo(supervisor, ["ndjson"], true),
    ]);
    expect(sorted(written)).toEqual(sorted(GUEST_EVENT_KEYS));
  });
});
