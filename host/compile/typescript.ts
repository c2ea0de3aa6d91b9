// TypeScript guests: types are stripped (sucrase) before the module is compiled. Line
// numbers are kept, so stacks point at the guest's own lines.
import { createRequire } from "node:module";
import { GuestSyntaxError } from "./guest-module.js";

const require = createRequire(import.meta.url);
let sucrase: typeof import("sucrase") | undefined;

export function stripTypes(source: string): string {
  // Loaded with the first TypeScript guest.
  sucrase ??= require("sucrase") as typeof import("sucrase");
  try {
    return sucrase.transform(source, {
      transforms: ["typescript"],
      disableESTransforms: true,
      keepUnusedImports: true,
    }).code;
  } catch (error) {
    const message = (error as Error).message;
    const location = /\((\d+):(\d+)\)/.exec(message);
    throw new GuestSyntaxError(
      message.replace(/ \(\d+:\d+\)$/, ""),
      location ? Number(location[1]) : 1,
      location ? Number(location[2]) - 1 : 0,
    );
  }
}
