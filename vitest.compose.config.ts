import { defineConfig } from "vitest/config";

// The docker compose end-to-end suite builds images and runs the whole lab in containers: it runs
// on its own (npm run test:compose), so its image builds do not starve the other suites. It is not
// part of npm test yet: CoreDNS in containers still stops on its loop check (see README).
export default defineConfig({
  test: {
    include: ["test/e2e/compose.test.ts"],
    pool: "forks",
    testTimeout: 900_000,
    hookTimeout: 2_400_000,
    teardownTimeout: 300_000,
  },
});
