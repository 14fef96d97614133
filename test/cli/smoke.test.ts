import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, prerequisites, request } from "../fleet/fleet-harness.js";
import { ensureAgentBuilt } from "../support/agent-process.js";
import { type CliRun, ensureCliBuilt, runCli } from "../support/process.js";

/**
 * `supamanager projects smoke` (the BUILT cli/dist/cli.js) against a real project: the built
 * control plane on a fresh PostgreSQL database, one real host agent, a `local`-release project in
 * Docker. The `local` release runs only db, postgres-meta and the gateway, so the check must pass
 * the gateway and database steps for real and skip every other one, saying why.
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) console.warn(`\n!!! SKIPPING the smoke check tests: ${pre.why}.\n`);

const HOST = { agent: "smoke-host", region: "smoke-1", bind: "127.0.0.7" };

/** The shared Fleet harness, on its own port range and bind address so it can run beside the others. */
class SmokeFleet extends Fleet {
  override startControlPlane(extraEnv: Record<string, string> = {}) {
    return super.startControlPlane({ SUPAMANAGER_PORT_RANGE: "25800-25999", ...extraEnv });
  }
}

const fleet = new SmokeFleet();
let ref = "";

function smoke(args: string[]): Promise<CliRun> {
  return runCli(["projects", "smoke", ref, ...args], {
    PATH: process.env.PATH ?? "",
    HOME: fleet.tmpDir("smoke-home"),
    SUPAMANAGER_URL: fleet.url,
    SUPAMANAGER_TOKEN: fleet.token,
  });
}

interface Report {
  ref: string;
  release: string;
  api_url: string;
  ok: boolean;
  counts: { ok: number; failed: number; skipped: number };
  steps: { name: string; status: string; detail: string; ms: number }[];
}

const SKIPPED = {
  "auth-signup": "Auth (GoTrue)",
  "auth-signin": "Auth (GoTrue)",
  rest: "PostgREST",
  storage: "Storage",
  realtime: "Realtime",
  functions: "Edge Functions",
};

async function smokeTables(): Promise<number> {
  const r = await request<{ n: number }[]>(
    { url: fleet.url, token: fleet.token },
    "POST",
    `/v1/projects/${ref}/database/query`,
    { query: "select count(*)::int as n from pg_tables where tablename like 'supamanager_smoke_%'" },
  );
  expect(r.status, r.text).toBe(201);
  return r.body[0]?.n ?? -1;
}

describe.skipIf(!pre.ok && !CI)("supamanager projects smoke on a real local-release project", () => {
  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the smoke check tests cannot run: ${pre.why}`);
    ensureAgentBuilt();
    ensureCliBuilt();
    await fleet.start();
    await fleet.enroll(HOST.agent, HOST.region, HOST.bind);
    await fleet.waitForHost(HOST.agent, (h) => h.status === "online", 30_000);
    ref = (await fleet.createProject("smoke", HOST.region, "smoke-Test-password-0123")).ref;
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 180_000);
  }, 300_000);

  afterAll(async () => {
    const errors = await fleet.cleanup();
    if (errors.length > 0) console.warn(`cleanup problems:\n${errors.join("\n")}`);
  }, 120_000);

  it("--json: gateway and database pass for real, every other step is skipped with the reason, exit 0", {
    timeout: 60_000,
  }, async () => {
    const r = await smoke(["--json"]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report).toMatchObject({ ref, release: "local", ok: true, counts: { ok: 3, failed: 0, skipped: 6 } });
    expect(report.api_url).toMatch(new RegExp(`^http://${HOST.bind.replaceAll(".", "\\.")}:\\d+$`));
    const step = Object.fromEntries(report.steps.map((s) => [s.name, s]));
    expect(report.steps.map((s) => s.name)).toEqual([
      "gateway",
      "database",
      "auth-signup",
      "auth-signin",
      "rest",
      "storage",
      "realtime",
      "functions",
      "cleanup",
    ]);
    // The real nginx gateway refused the keyless request and passed the keyed one to postgres-meta.
    expect(step.gateway?.status).toBe("ok");
    expect(step.gateway?.detail).toContain("without a key: HTTP 401");
    expect(step.gateway?.detail).toMatch(/with the service_role key: PostgreSQL 15\.\d+/);
    expect(step.database?.status).toBe("ok");
    expect(step.database?.detail).toMatch(
      /^public\.supamanager_smoke_[0-9a-f]{8} created; one row written and read back$/,
    );
    for (const [name, label] of Object.entries(SKIPPED)) {
      expect(step[name], name).toMatchObject({
        status: "skipped",
        detail: `release local (as this project runs it) has no ${label}`,
      });
    }
    expect(step.cleanup?.status).toBe("ok");
    // The scratch table is gone from the real database.
    expect(await smokeTables()).toBe(0);
    // Progress went to stderr, one line per step.
    expect(r.stderr).toContain(`Smoke check of ${ref} (release local)`);
    expect(r.stderr.match(/^(ok|FAILED|skipped) [a-z-]+: /gm)).toHaveLength(9);
  });

  it("human output: a table of the steps and a summary line", { timeout: 60_000 }, async () => {
    const r = await smoke([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^STEP\s+RESULT\s+TIME\s+DETAIL$/m);
    expect(r.stdout).toMatch(/^storage\s+skipped\s+-\s+release local \(as this project runs it\) has no Storage$/m);
    expect(r.stdout).toMatch(/^gateway\s+ok\s+\d+ ms\s+http:\/\//m);
    expect(r.stdout.trim().split("\n").at(-1)).toBe("Smoke check passed: 3 ok, 0 failed, 6 skipped.");
  });

  it("an API address not reachable from here fails the API steps and exits 4; the table is still dropped", {
    timeout: 60_000,
  }, async () => {
    // Nothing listens on port 1 of the host's bind address.
    const r = await smoke(["--json", "--api-url", `http://${HOST.bind}:1`]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(4);
    const report = JSON.parse(r.stdout) as Report;
    const step = Object.fromEntries(report.steps.map((s) => [s.name, s]));
    expect(report.ok).toBe(false);
    expect(step.gateway?.status).toBe("failed");
    expect(step.gateway?.detail).toContain(`cannot reach http://${HOST.bind}:1`);
    expect(step.database?.status).toBe("ok");
    expect(step.cleanup?.status).toBe("ok");
    expect(r.stderr).toMatch(/^FAILED gateway: /m);
    expect(await smokeTables()).toBe(0);
  });
});
