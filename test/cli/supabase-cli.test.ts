import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fleet, prerequisites, request } from "../fleet/fleet-harness.js";
import { ensureAgentBuilt } from "../support/agent-process.js";
import {
  type CliOptions,
  cliInstalled,
  jsonOf,
  runSupabase,
  SUPABASE_CLI,
  SUPABASE_CLI_VERSION,
  writeProfile,
} from "./supabase-cli.js";

/**
 * The official `supabase` CLI (pinned, from npm) against a control plane started here: the built
 * entry on a fresh PostgreSQL database, one real host agent running projects on the `local`
 * release in Docker, a personal access token created through the platform API, and a profile
 * file pointing the CLI's api_url at us. The steps run in order and share the project.
 *
 * The CLI validates `--region` against AWS region codes client-side (a fixed choice list), so
 * the agent is enrolled in `us-east-1`, a code it accepts.
 */

const CI = process.env.CI === "true";
const fleetPre = await prerequisites();
const pre = !cliInstalled()
  ? { ok: false, why: `the supabase CLI is not installed at ${SUPABASE_CLI} (npm ci)` }
  : fleetPre;
if (!pre.ok && !CI) {
  console.warn(`\n!!! SKIPPING the supabase CLI tests: ${pre.why}.\n`);
}

const REGION = "us-east-1";
const AGENT = { name: "cli-host", bind: "127.0.0.3" };
const DB_PASS = "cli-Test-password-0123456789";

/** The shared Fleet harness, on its own port range so it can run beside the fleet tests. */
class CliFleet extends Fleet {
  override startControlPlane(extraEnv: Record<string, string> = {}) {
    return super.startControlPlane({ SUPAMANAGER_PORT_RANGE: "27000-27499", ...extraEnv });
  }
}

const fleet = new CliFleet();
let cli: CliOptions;
let pat = "";
let ref = "";
let createdOrgSlug = "";

const supabase = (...args: string[]) => runSupabase(args, cli);
const needRef = () => {
  if (!ref) throw new Error("no project: `projects create` failed earlier");
  return ref;
};

/** A /v1 call with the personal access token, as any script would make it. */
const v1 = (method: string, path: string, json?: unknown) =>
  request({ url: fleet.url, token: pat }, method, path, json);

describe.skipIf(!pre.ok && !CI)(`the official supabase CLI ${SUPABASE_CLI_VERSION} against SupaManager`, () => {
  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the supabase CLI tests cannot run: ${pre.why}`);
    ensureAgentBuilt();
    await fleet.start();
    await fleet.enroll(AGENT.name, REGION, AGENT.bind);
    await fleet.waitForHost(AGENT.name, (h) => h.status === "online", 30_000);
    const created = await fleet.api<{ token: string }>("POST", "/platform/profile/access-tokens", {
      name: "supabase CLI test",
    });
    if (created.status !== 201) throw new Error(`create access token: ${created.status} ${created.text}`);
    pat = created.body.token;
    expect(pat).toMatch(/^sbp_[0-9a-f]{40}$/);
    const dir = fleet.tmpDir("cli");
    const home = join(dir, "home");
    const cwd = join(dir, "work");
    mkdirSync(home);
    mkdirSync(cwd);
    cli = { profile: writeProfile(dir, fleet.url), token: pat, home, cwd };
  }, 240_000);

  afterAll(async () => {
    const errors = await fleet.cleanup();
    if (errors.length > 0) console.warn(`cleanup problems:\n${errors.join("\n")}`);
  }, 120_000);

  it("prints its pinned version", async () => {
    const r = await supabase("--version");
    expect(r.code, r.describe).toBe(0);
    expect(r.stdout.trim()).toBe(SUPABASE_CLI_VERSION);
  });

  it("orgs list: the admin's organization", async () => {
    const r = await supabase("orgs", "list", "-o", "json");
    expect(r.code, r.describe).toBe(0);
    const orgs = jsonOf<Array<{ id: string; name: string }>>(r);
    expect(orgs, r.describe).toContainEqual(expect.objectContaining({ id: fleet.orgSlug, name: "Fleet e2e" }));
  });

  it("orgs create: a new organization, then listed", async () => {
    const r = await supabase("orgs", "create", "CLI made org", "-o", "json");
    expect(r.code, r.describe).toBe(0);
    const org = jsonOf<{ id: string; name: string }>(r);
    expect(org.name).toBe("CLI made org");
    expect(org.id).toMatch(/\S/);
    createdOrgSlug = org.id;
    const list = jsonOf<Array<{ id: string }>>(await supabase("orgs", "list", "-o", "json"));
    expect(list.map((o) => o.id)).toContain(createdOrgSlug);
  });

  it("a token that is not ours is refused with a non-zero exit", async () => {
    const r = await runSupabase(["orgs", "list", "-o", "json"], { ...cli, token: `sbp_${"0".repeat(40)}` });
    expect(r.code, r.describe).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/401|unauthori[sz]ed/i);
  });

  it("projects create: in our region, and it comes up on the agent", { timeout: 200_000 }, async () => {
    const r = await supabase(
      "projects",
      "create",
      "cli project",
      "--org-id",
      fleet.orgSlug,
      "--db-password",
      DB_PASS,
      "--region",
      REGION,
      "-o",
      "json",
    );
    expect(r.code, r.describe).toBe(0);
    const p = jsonOf<{ id?: string; ref?: string; name: string; region: string }>(r);
    ref = p.ref ?? p.id ?? "";
    expect(ref, r.describe).toMatch(/^[a-z]{20}$/);
    expect(p.name).toBe("cli project");
    expect(p.region).toBe(REGION);
    fleet.refs.add(ref);
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 180_000);
  });

  it("a region the CLI does not know is refused client-side", async () => {
    const r = await supabase(
      "projects",
      "create",
      "nowhere",
      "--org-id",
      fleet.orgSlug,
      "--db-password",
      DB_PASS,
      "--region",
      "local",
    );
    expect(r.code, r.describe).not.toBe(0);
  });

  it("projects list: the new project, active", async () => {
    const r = await supabase("projects", "list", "-o", "json");
    expect(r.code, r.describe).toBe(0);
    const list = jsonOf<Array<{ id?: string; ref?: string; name: string; status: string; region: string }>>(r);
    const mine = list.find((p) => (p.ref ?? p.id) === needRef());
    expect(mine, r.describe).toMatchObject({ name: "cli project", region: REGION, status: "ACTIVE_HEALTHY" });
  });

  // The CLI asks without `reveal`; legacy keys are listed in full to an owner, as on Supabase.
  it("projects api-keys: the anon and service_role keys in full", async () => {
    const r = await supabase("projects", "api-keys", "--project-ref", needRef(), "-o", "json");
    expect(r.code, r.describe).toBe(0);
    const keys = jsonOf<Array<{ name: string; api_key: string }>>(r);
    const byName = new Map(keys.map((k) => [k.name, k.api_key]));
    expect(byName.get("anon"), r.describe).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(byName.get("service_role"), r.describe).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it("database/query runs SQL on the real database; query/read-only refuses writes", async () => {
    const made = await v1("POST", `/v1/projects/${needRef()}/database/query`, {
      query: "create table public.cli_notes (id bigint primary key, body text not null, tagged boolean)",
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const read = await v1("POST", `/v1/projects/${ref}/database/query/read-only`, {
      query: "select count(*)::int as n from public.cli_notes",
    });
    expect(read.status, JSON.stringify(read.body)).toBe(201);
    expect(read.body).toEqual([{ n: 0 }]);
    const write = await v1("POST", `/v1/projects/${ref}/database/query/read-only`, {
      query: "insert into public.cli_notes values (1, 'x', null)",
    });
    expect(write.status, JSON.stringify(write.body)).toBe(400);
    expect(JSON.stringify(write.body)).toMatch(/read-only|permission denied/i);
  });

  it("gen types typescript: generated by the project's postgres-meta", { timeout: 90_000 }, async () => {
    const r = await supabase("gen", "types", "typescript", "--project-id", needRef());
    expect(r.code, r.describe).toBe(0);
    expect(r.stdout).toMatch(/export type Database\b/);
    expect(r.stdout).toContain("cli_notes");
    expect(r.stdout).toMatch(/body: string/);
    expect(r.stdout).toMatch(/tagged: boolean \| null/);
  });

  it("projects delete: REMOVED and gone from the list", { timeout: 150_000 }, async () => {
    const r = await supabase("projects", "delete", needRef(), "--yes");
    expect(r.code, r.describe).toBe(0);
    await fleet.waitForStatus(ref, "REMOVED", 120_000);
    const list = jsonOf<Array<{ id?: string; ref?: string }>>(await supabase("projects", "list", "-o", "json"));
    expect(list.map((p) => p.ref ?? p.id)).not.toContain(ref);
  });
});
