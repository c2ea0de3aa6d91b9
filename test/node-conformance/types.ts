// One snippet of the differential suite: ES-module guest code run by the host's `node` and
// by the sandbox, whose stdout, stderr class and exit code must agree.
export interface ConformanceCase {
  /** Unique across the suite; `<builtin>: what it does`. */
  name: string;
  code: string;
  stdin?: string;
  env?: Record<string, string>;
  note?: string;
  /**
   * What Node 22 (the version guests report) prints where the host's older Node differs;
   * used instead of running the host's node when its major version is below 22.
   */
  node22?: { stdout: string; stderrClass?: string; exitCode?: number; reason: string };
}

/** What one side printed, reduced to what the suite compares. */
export interface Observation {
  stdout: string;
  /** `empty`, `output` (non-empty, exit 0), or the first error line's name, e.g. `TypeError [ERR_INVALID_ARG_TYPE]`. */
  stderrClass: string;
  exitCode: number;
  /** Raw stderr, for messages. */
  stderr: string;
  /** The run did not end within the case time limit. */
  hung: boolean;
}
