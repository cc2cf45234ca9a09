import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "packages/*/src/**/*.test.ts",
      "services/*/src/**/*.test.ts",
      "test/**/*.test.ts",
      "lab-scenarios/**/*.test.ts",
    ],
    // The docker compose suite runs alone (npm run test:compose): see vitest.compose.config.ts.
    exclude: [...configDefaults.exclude, "test/e2e/compose.test.ts"],
    // Many suites start real processes, namespaces and sockets: give them room, and keep
    // them in separate processes so a crash in one cannot take down the others.
    pool: "forks",
    // The lab suites mostly wait on real processes: three at a time keep a 2-core CI machine
    // busy without starving them (vitest's default there is one fork, which serialises them).
    poolOptions: { forks: { maxForks: 3, minForks: 1 } },
    testTimeout: 60_000,
    // The lab suites time real processes on a shared 2-core machine: a test gets one more try, and
    // every test that needed it is named at the end of the run (test/support/retry-reporter.ts).
    retry: 1,
    reporters: ["default", "./test/support/retry-reporter.ts"],
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
