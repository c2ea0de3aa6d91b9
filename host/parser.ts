// acorn and acorn-walk, loaded on first use: a host that never compiles a guest (or not yet)
// does not pay for them. One copy serves every caller.
import { createRequire } from "node:module";

type Acorn = typeof import("acorn");
type AcornWalk = typeof import("acorn-walk");

const require = createRequire(import.meta.url);
let acornModule: Acorn | undefined;
let walkModule: AcornWalk | undefined;

export function acorn(): Acorn {
  acornModule ??= require("acorn") as Acorn;
  return acornModule;
}

export function acornWalk(): AcornWalk {
  walkModule ??= require("acorn-walk") as AcornWalk;
  return walkModule;
}
