import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run the TypeScript sources of the workspace packages, not their builds.
    alias: {
      "@supamanager/shared": fileURLToPath(new URL("./shared/src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["{shared,control-plane,host-agent,cli}/src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["./test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: two forks keep Postgres and scrypt from starving each other.
    maxWorkers: 2,
    coverage: {
      provider: "v8",
      include: ["control-plane/src/**/*.ts", "shared/src/**/*.ts", "host-agent/src/**/*.ts", "cli/src/**/*.ts"],
      exclude: [
        "**/*.test.ts",
        "**/test-support/**",
        "control-plane/src/entry/node.ts",
        "host-agent/src/cli.ts",
        "cli/src/cli.ts",
      ],
      reporter: ["text-summary", "json-summary"],
    },
  },
});
