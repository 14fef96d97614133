import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Job } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projects } from "../../../db/schema.js";
import { LOCAL_RELEASE } from "../../../releases/local.js";
import { enrollHost, type FakeConnection, type JoinedHost } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { createTeam, type TeamFixture } from "../../../test-support/org-fixtures.js";
import { createProjectViaApi } from "../../../test-support/projects-factory.js";

/**
 * The upgrade endpoints, SupaManager's (/platform, the CLI's) and the Management API's (/v1,
 * Studio's), against the real control plane with a FakeConnection playing the host's agent.
 */

const SERVICES = ["db", "meta", "gateway"];
let dir: string;
let t: TestApp;
let team: TeamFixture;
let other: TeamFixture;
let host: JoinedHost & { conn: FakeConnection };
let ref: string;
let otherRef: string;
type Role = keyof TeamFixture["members"];

async function makeHealthy(projectRef: string) {
  await host.conn.settle();
  await host.conn.send({ type: "applied", ref: projectRef, version: 1, desiredState: "running", ok: true });
  await host.conn.send({
    type: "health",
    ref: projectRef,
    services: SERVICES.map((name) => ({ name, state: "running", health: "healthy" })),
  });
}

async function projectRow(projectRef = ref) {
  const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, projectRef));
  if (!row) throw new Error("project row missing");
  return row;
}

const call = async (method: string, path: string, role: Role | null = "owner", json?: unknown, fixture = team) => {
  const res = await t.request(path, {
    method,
    ...(role ? { token: fixture.members[role].token } : {}),
    ...(json !== undefined ? { json } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "upgrade-api-"));
  const releasesFile = join(dir, "releases.json");
  writeFileSync(releasesFile, JSON.stringify([{ ...LOCAL_RELEASE, name: "local-next", description: "same major" }]));
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASES_FILE: releasesFile });
  team = await createTeam(t);
  other = await createTeam(t);
  host = await enrollHost(t, team.members.owner);
  ref = (await createProjectViaApi(t, team.members.owner, team)).ref;
  await makeHealthy(ref);
  otherRef = (await createProjectViaApi(t, other.members.owner, other)).ref;
  await makeHealthy(otherRef);
  expect((await projectRow()).status).toBe("ACTIVE_HEALTHY");
}, 60_000);

afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("eligibility", () => {
  it.each(["owner", "administrator", "developer", "read_only"] as const)(
    "GET /platform/…/upgrade/eligibility lists every release for %s",
    async (role) => {
      const { status, body } = await call("GET", `/platform/projects/${ref}/upgrade/eligibility`, role);
      expect(status).toBe(200);
      expect(body).toMatchObject({ ref, current_release: "local", current_postgres_major: 15, eligible: true });
      const releases = body.releases as { release: string; eligible: boolean; reason_code: string | null }[];
      const byName = Object.fromEntries(releases.map((r) => [r.release, r]));
      expect(byName.local).toMatchObject({ eligible: false, reason_code: "same_release" });
      expect(byName["local-next"]).toMatchObject({ eligible: true, reason_code: null, major_upgrade: false });
      expect(byName["local-17"]).toMatchObject({ eligible: true, major_upgrade: true, postgres_major: 17 });
      expect(byName["supabase-2026.02"]).toMatchObject({ eligible: false, reason_code: "compute_too_small" });
    },
  );

  it("GET /v1/…/upgrade/eligibility answers the Management API's shape, one target per major", async () => {
    const { status, body } = await call("GET", `/v1/projects/${ref}/upgrade/eligibility`, "read_only");
    expect(status).toBe(200);
    expectMatchesOperation("GET", "/v1/projects/{ref}/upgrade/eligibility", 200, body);
    expect(body).toMatchObject({
      eligible: true,
      current_app_version: "supabase-postgres-15 (local)",
      latest_app_version: "supabase-postgres-17 (local-17)",
    });
    expect(
      (body.target_upgrade_versions as { postgres_version: string; release: string }[]).map((v) => [
        v.postgres_version,
        v.release,
      ]),
    ).toEqual([
      ["17", "local-17"],
      ["15", "local-next"],
    ]);
  });

  it.each([
    ["GET", "/platform/projects/{ref}/upgrade/eligibility"],
    ["GET", "/v1/projects/{ref}/upgrade/eligibility"],
    ["GET", "/platform/projects/{ref}/upgrade/status"],
    ["GET", "/v1/projects/{ref}/upgrade/status"],
    ["POST", "/platform/projects/{ref}/upgrade"],
    ["POST", "/v1/projects/{ref}/upgrade"],
  ])("%s %s: another organization's project is 404, no token 401", async (method, template) => {
    const json =
      method !== "POST"
        ? undefined
        : template.startsWith("/v1")
          ? { target_version: "15" }
          : { target_release: "local-next" };
    const foreign = await call(method, template.replace("{ref}", otherRef), "owner", json);
    expect(foreign.status).toBe(404);
    const anonymous = await call(method, template.replace("{ref}", ref), null, json);
    expect(anonymous.status).toBe(401);
  });
});

describe("starting an upgrade", () => {
  it("is for owners and administrators only (403), with the body validated (400)", async () => {
    for (const role of ["developer", "read_only"] as const) {
      const p = await call("POST", `/platform/projects/${ref}/upgrade`, role, { target_release: "local-next" });
      expect(p.status, role).toBe(403);
      const v = await call("POST", `/v1/projects/${ref}/upgrade`, role, { target_version: "15" });
      expect(v.status, role).toBe(403);
    }
    const bad = await call("POST", `/platform/projects/${ref}/upgrade`, "owner", { target_release: 5 });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/target_release/);
    const extra = await call("POST", `/platform/projects/${ref}/upgrade`, "owner", {
      target_release: "local-next",
      force: true,
    });
    expect(extra.status).toBe(400);
    const v1 = await call("POST", `/v1/projects/${ref}/upgrade`, "owner", { release_channel: "ga" });
    expect(v1.status).toBe(400);
    expect(v1.body.message).toMatch(/target_version/);
    expect((await projectRow()).status).toBe("ACTIVE_HEALTHY");
  });

  it("refuses a target that is not eligible with the reason, and an organization without backup storage", async () => {
    const same = await call("POST", `/platform/projects/${ref}/upgrade`, "owner", {
      target_release: "local",
      allow_without_backup: true,
    });
    expect(same).toMatchObject({ status: 400, body: { message: expect.stringMatching(/already runs release local/) } });
    const big = await call("POST", `/v1/projects/${ref}/upgrade`, "owner", {
      target_version: "supabase-2026.02",
      allow_without_backup: true,
    });
    expect(big).toMatchObject({ status: 400, body: { message: expect.stringMatching(/small compute size/) } });
    const none = await call("POST", `/v1/projects/${ref}/upgrade`, "owner", { target_version: "16" });
    expect(none).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/no release runs PostgreSQL 16/) },
    });
    const backup = await call("POST", `/v1/projects/${ref}/upgrade`, "owner", { target_version: "17" });
    expect(backup).toMatchObject({ status: 400, body: { message: expect.stringMatching(/without a backup/) } });
  });

  it("starts from Studio's call, shows it in both status endpoints, and answers the result", async () => {
    expect(await call("GET", `/v1/projects/${ref}/upgrade/status`, "read_only")).toEqual({
      status: 200,
      body: { databaseUpgradeStatus: null },
    });
    expect((await call("GET", `/platform/projects/${ref}/upgrade/status`, "read_only")).body).toMatchObject({
      ref,
      upgrade: null,
      release: "local",
    });

    const started = await call("POST", `/v1/projects/${ref}/upgrade`, "administrator", {
      target_version: "17",
      release_channel: "ga",
      allow_without_backup: true,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    expectMatchesOperation("POST", "/v1/projects/{ref}/upgrade", 201, started.body);
    const trackingId = started.body.tracking_id as string;
    expect((await projectRow()).status).toBe("UPGRADING");
    await host.conn.settle();
    const job = host.conn.ofType("job").at(-1) as Job;
    expect(job).toMatchObject({ kind: "upgrade", ref });

    const running = await call("GET", `/v1/projects/${ref}/upgrade/status?tracking_id=${trackingId}`, "read_only");
    expect(running.status).toBe(200);
    expectMatchesOperation("GET", "/v1/projects/{ref}/upgrade/status", 200, running.body);
    expect(running.body.databaseUpgradeStatus).toMatchObject({
      status: 0,
      progress: "1_started",
      target_version: 17,
      tracking_id: trackingId,
      from_release: "local",
      to_release: "local-17",
    });
    const platform = await call("GET", `/platform/projects/${ref}/upgrade/status?id=${trackingId}`, "developer");
    expect(platform.body).toMatchObject({
      project_status: "UPGRADING",
      upgrade: { id: Number(trackingId), status: "RUNNING", step: "waiting_for_agent", to_release: "local-17" },
    });
    // Another upgrade while this one runs: the project's state (409).
    const again = await call("POST", `/platform/projects/${ref}/upgrade`, "owner", {
      target_release: "local-next",
      allow_without_backup: true,
    });
    expect(again).toMatchObject({ status: 409, body: { message: expect.stringMatching(/already upgrading/) } });

    // The agent reports the data step, then rolls back after a failed health check.
    const progress = await t.request(`/agent/v1/jobs/${job.jobId}/progress`, {
      method: "POST",
      token: host.credential,
      json: { step: "migrating_data" },
    });
    expect(progress.status).toBe(204);
    const migrating = await call("GET", `/v1/projects/${ref}/upgrade/status`, "read_only");
    expect(migrating.body.databaseUpgradeStatus).toMatchObject({ status: 0, progress: "5_initiated_data_upgrade" });
    await host.conn.send({
      type: "job_result",
      jobId: job.jobId,
      ok: true,
      result: { outcome: "rolled_back", failedStep: "health_check", error: "gateway never became healthy" },
    });
    await host.conn.settle();
    const ended = await call("GET", `/v1/projects/${ref}/upgrade/status?tracking_id=${trackingId}`, "read_only");
    expectMatchesOperation("GET", "/v1/projects/{ref}/upgrade/status", 200, ended.body);
    expect(ended.body.databaseUpgradeStatus).toMatchObject({
      status: 2,
      error: "1_upgraded_instance_launch_failed",
      progress: "8_attached_volume_to_upgraded_instance",
      error_message: "gateway never became healthy",
    });
    const platformEnded = await call("GET", `/platform/projects/${ref}/upgrade/status`, "read_only");
    expect(platformEnded.body).toMatchObject({
      project_status: "ACTIVE_HEALTHY",
      release: "local",
      status_reason: expect.stringMatching(/Upgrade to local-17 failed/),
      upgrade: { status: "ROLLED_BACK", failed_step: "health_check" },
    });
  });

  it("answers an upgrade id of another project as 404 and a malformed one as 400", async () => {
    const mine = await call("GET", `/platform/projects/${ref}/upgrade/status`, "owner");
    const id = (mine.body.upgrade as { id: number }).id;
    const foreign = await call(
      "GET",
      `/platform/projects/${otherRef}/upgrade/status?id=${id}`,
      "owner",
      undefined,
      other,
    );
    expect(foreign.status).toBe(404);
    const v1Foreign = await call(
      "GET",
      `/v1/projects/${otherRef}/upgrade/status?tracking_id=${id}`,
      "owner",
      undefined,
      other,
    );
    expect(v1Foreign.status).toBe(404);
    expect((await call("GET", `/v1/projects/${ref}/upgrade/status?tracking_id=abc`)).status).toBe(400);
    expect((await call("GET", `/platform/projects/${ref}/upgrade/status?id=-1`)).status).toBe(400);
  });
});
