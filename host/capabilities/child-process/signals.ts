// Signal names a guest can be killed with, and their numbers (exit code = 128 + number).
import { constants } from "node:os";

export function signalNumber(signal: string | number): number {
  if (typeof signal === "number") {
    if (Number.isInteger(signal) && signal > 0 && signal < 65) return signal;
    throw new TypeError(`secure-exec: unknown signal ${signal}`);
  }
  const number = (constants.signals as Record<string, number | undefined>)[signal];
  if (number === undefined) throw new TypeError(`secure-exec: unknown signal "${signal}"`);
  return number;
}

export function signalName(number: number): string | undefined {
  return Object.entries(constants.signals).find(([, value]) => value === number)?.[0];
}
