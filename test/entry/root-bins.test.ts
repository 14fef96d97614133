import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureAgentBuilt } from "../support/agent-process.js";
import { ensureCliBuilt, REPO_ROOT } from "../support/process.js";

/**
 * `npx supamanager …` and `npx supamanager-agent …` from the repository root, as README.md,
 * docs/cli.md and the printed join line say (the root package's bins, bin/*.mjs, running the
 * workspaces' builds): they must resolve without a global install or a workspace flag.
 */

beforeAll(() => {
  ensureAgentBuilt();
  ensureCliBuilt();
}, 240_000);

function npx(...args: string[]) {
  const r = spawnSync("npx", ["--no-install", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("the CLIs from the repository root", () => {
  it("npx supamanager --help prints the operator CLI's help, with the smoke check", () => {
    const r = npx("supamanager", "--help");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("Usage: supamanager <command>");
    expect(npx("supamanager", "projects", "--help").out).toContain("smoke");
  });

  it("npx supamanager-agent --help prints the agent's usage", () => {
    const r = npx("supamanager-agent", "--help");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("supamanager-agent join --url <control plane> --token <join token>");
  });
});
