import { defineConfig } from "vitest/config";

// The docker compose end-to-end suite builds images and runs the whole lab in containers: npm test
// runs it after the main suite (and npm run test:compose alone), so its image builds and containers
// never compete with the other suites for the machine.
export default defineConfig({
  test: {
    include: ["test/e2e/compose.test.ts"],
    pool: "forks",
    testTimeout: 900_000,
    hookTimeout: 2_400_000,
    teardownTimeout: 300_000,
    // As in the main suite: one more try for a failed test, and the run names it.
    retry: 1,
    reporters: ["default", "./test/support/retry-reporter.ts"],
  },
});
