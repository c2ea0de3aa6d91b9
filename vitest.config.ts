import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts real workerd processes; two cores run two files at a time.
    fileParallelism: true,
    maxWorkers: 2,
    pool: "forks",
  },
});
