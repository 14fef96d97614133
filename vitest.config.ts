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
        // Run inside workerd (test/edge/workers*.test.ts), out of reach of this process's v8 coverage.
        "control-plane/src/entry/worker.ts",
        "control-plane/src/entry/worker-deps.ts",
        "control-plane/src/entry/worker-hub.ts",
        "control-plane/src/entry/host-object.ts",
        "control-plane/src/entry/workers-types.ts",
        "control-plane/src/db/neon.ts",
        "host-agent/src/cli.ts",
        "cli/src/cli.ts",
      ],
      reporter: ["text-summary", "json-summary"],
    },
  },
});
