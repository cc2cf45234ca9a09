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
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
