// The gauge behind recycling a process that grew: statm's data pages in kB, as status counts them.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MemoryGauge } from "../host/engine/memory-gauge.js";

function statusKb(field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync("/proc/self/status", "utf8"))![1]);
}

describe("MemoryGauge", () => {
  it("reads a process's data memory in kB and sees it grow", () => {
    const gauge = new MemoryGauge(process.pid);
    try {
      const before = gauge.dataKb()!;
      // statm's data counts the stack beside VmData: the two agree to within a few MB.
      expect(Math.abs(before - statusKb("VmData"))).toBeLessThan(16 * 1024);
      const held = new Uint8Array(64 << 20).fill(1);
      expect(gauge.dataKb()! - before).toBeGreaterThan(60 * 1024);
      expect(held[held.length - 1]).toBe(1);
    } finally {
      gauge.close();
    }
  });

  it("reads nothing for a process that is gone", () => {
    const gauge = new MemoryGauge(2 ** 22 + 12345);
    expect(gauge.dataKb()).toBeUndefined();
    gauge.close();
  });
});
