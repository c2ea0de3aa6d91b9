// acorn and acorn-walk, loaded on first use: a host that never compiles a guest (or not yet)
// does not pay for them. One copy serves every caller. Where there is no Node module loader
// (the edge Worker), the caller hands the modules over with `provideParser` first.
import { createRequire } from "node:module";

type Acorn = typeof import("acorn");
type AcornWalk = typeof import("acorn-walk");

let acornModule: Acorn | undefined;
let walkModule: AcornWalk | undefined;

function load<T>(name: string): T {
  return createRequire(import.meta.url)(name) as T;
}

/** Supplies the parser modules (bundled builds import them statically). */
export function provideParser(modules: { acorn: Acorn; acornWalk: AcornWalk }): void {
  acornModule = modules.acorn;
  walkModule = modules.acornWalk;
}

export function acorn(): Acorn {
  acornModule ??= load<Acorn>("acorn");
  return acornModule;
}

export function acornWalk(): AcornWalk {
  walkModule ??= load<AcornWalk>("acorn-walk");
  return walkModule;
}
