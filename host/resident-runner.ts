// Resident runner: one live guest that evaluates snippet after snippet (globals persist).
import type { ResidentRunner, ResidentRunnerOptions } from "../runtime/types.js";

export interface ResidentRunnerSettings extends ResidentRunnerOptions {
  env: Record<string, string>;
  cwd: string;
  memoryMb: number;
  outputBytes: number;
}

export async function startResidentRunner(settings: ResidentRunnerSettings): Promise<ResidentRunner> {
  void settings;
  throw new Error("secure-exec: resident runners are not available yet");
}
