import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { renderReferenceCapnp } from "../host/engine/cell-definition.js";

const root = new URL("../", import.meta.url);

describe("config.capnp", () => {
  it("is what the cell definition renders (one truth, not two)", () => {
    expect(readFileSync(new URL("config.capnp", root), "utf8")).toBe(renderReferenceCapnp());
  });

  it("is accepted by workerd", async () => {
    const require = createRequire(import.meta.url);
    const workerd = (require("workerd") as { default: string }).default;
    const child = spawn(workerd, ["serve", "--experimental", "config.capnp", "--socket-addr=http=127.0.0.1:0"], {
      cwd: new URL(".", root).pathname,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exitedEarly = await Promise.race([
      new Promise<boolean>((resolve) => child.once("exit", () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_500)),
    ]);
    child.kill("SIGKILL");
    expect(stderr).toBe("");
    expect(exitedEarly).toBe(false);
  });
});
