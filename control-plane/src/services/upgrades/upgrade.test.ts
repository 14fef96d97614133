import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Job, UPGRADE_JOB_KIND, UpgradeJobParams } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { backups, jobs, portReservations, projects, projectUpgrades } from "../../db/schema.js";
import { LOCAL_RELEASE } from "../../releases/local.js";
import { enrollHost, FakeConnection, type JoinedHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { auditActions, createTeam, type TeamFixture } from "../../test-support/org-fixtures.js";
import { createProjectViaApi } from "../../test-support/projects-factory.js";
import { advanceUpgrades, latestUpgrade, startUpgrade, type UpgradeView } from "./index.js";

/**
 * The control-plane side of upgrades (ADR 0037) with a FakeConnection playing the agent: the
 * project held in UPGRADING while the job runs, each way the job can end, the job surviving an
 * agent restart, and the backup taken first. The agent side runs for real in test/upgrades.
 */

const SERVICES = ["db", "meta", "gateway"];
let dir: string;
let releasesFile: string;
let t: TestApp;
let team: TeamFixture;
let host: JoinedHost & { conn: FakeConnection };
let ref: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "upgrades-test-"));
  releasesFile = join(dir, "releases.json");
  // A second release of the same PostgreSQL major: what a same-major upgrade moves to. Its gateway
  // port has another name, so the upgrade reserves a port and gives the old one back.
  const gateway = LOCAL_RELEASE.services.gateway;
  writeFileSync(
    releasesFile,
    JSON.stringify([
      {
        ...LOCAL_RELEASE,
        name: "local-next",
        description: "next",
        services: { ...LOCAL_RELEASE.services, gateway: { ...gateway, ports: [{ name: "api", container: 8000 }] } },
      },
    ]),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function makeHealthy(conn: FakeConnection, projectRef: string, version = 1) {
  await conn.send({ type: "applied", ref: projectRef, version, desiredState: "running", ok: true });
  await health(conn, projectRef, "healthy");
}

function health(conn: FakeConnection, projectRef: string, state: "healthy" | "unhealthy") {
  return conn.send({
    type: "health",
    ref: projectRef,
    services: SERVICES.map((name) => ({ name, state: "running", health: state })),
  });
}

async function projectRow() {
  const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
  if (!row) throw new Error("project row missing");
  return row;
}

function ctx(member: "owner" | "developer" = "owner") {
  const m = team.members[member];
  return {
    db: t.deps.database.db,
    deps: t.deps,
    meta: { requestId: "test", ip: undefined, userAgent: undefined },
    actor: { userId: m.userId, email: m.email, sessionId: "s", isInstanceAdmin: false },
  };
}

/** Start a no-backup upgrade to local-next; returns the view and the job frame the agent got. */
async function startWithoutBackup(): Promise<{ view: UpgradeView; job: Job }> {
  const before = host.conn.ofType("job").length;
  const view = await startUpgrade(ctx(), ref, { targetRelease: "local-next", allowWithoutBackup: true });
  await host.conn.settle();
  const sent = host.conn.ofType("job");
  expect(sent.length).toBe(before + 1);
  return { view, job: sent.at(-1) as Job };
}

function answer(job: Job, ok: boolean, result?: unknown, error?: string) {
  return host.conn.send({
    type: "job_result",
    jobId: job.jobId,
    ok,
    ...(result !== undefined ? { result } : {}),
    ...(error ? { error } : {}),
  });
}

const FACTS = { tables: { "public.t": 3 }, extensions: ["plpgsql"], views: [], functions: [] };

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASES_FILE: releasesFile });
  team = await createTeam(t);
  host = await enrollHost(t, team.members.owner);
  ref = (await createProjectViaApi(t, team.members.owner, team)).ref;
  await host.conn.settle();
  await makeHealthy(host.conn, ref);
  expect((await projectRow()).status).toBe("ACTIVE_HEALTHY");
});
afterEach(async () => {
  await t.close();
});

describe("starting an upgrade", () => {
  it("is refused without a backup target unless allowed, and to a release that is not eligible", async () => {
    await expect(startUpgrade(ctx(), ref, { targetRelease: "local-next" })).rejects.toMatchObject({
      code: "bad_request",
      message: expect.stringMatching(/without a backup.*allow the upgrade without a backup explicitly/),
    });
    await expect(startUpgrade(ctx(), ref, { targetRelease: "local", allowWithoutBackup: true })).rejects.toMatchObject({
      code: "bad_request",
      message: expect.stringContaining("already runs release local"),
    });
    await expect(startUpgrade(ctx(), ref, { targetRelease: "nope", allowWithoutBackup: true })).rejects.toMatchObject({
      message: expect.stringContaining("No release named nope"),
    });
    // Developers may not (projects.lifecycle is owners' and administrators').
    await expect(
      startUpgrade(ctx("developer"), ref, { targetRelease: "local-next", allowWithoutBackup: true }),
    ).rejects.toMatchObject({ code: "forbidden" });
    expect((await projectRow()).status).toBe("ACTIVE_HEALTHY");
    expect(await latestUpgrade(t.deps, (await projectRow()).id)).toBeNull();
  });

  it("holds the project in UPGRADING and sends the agent the target's stack with the same secrets", async () => {
    const before = await projectRow();
    const { view, job } = await startWithoutBackup();
    expect(view).toMatchObject({
      ref,
      fromRelease: "local",
      toRelease: "local-next",
      status: "RUNNING",
      step: "waiting_for_agent",
      backupId: null,
      error: null,
    });
    expect(job.kind).toBe(UPGRADE_JOB_KIND);
    const params = UpgradeJobParams.parse(job.params);
    expect(params).toMatchObject({
      upgradeId: String(view.id),
      fromRelease: "local",
      toRelease: "local-next",
      database: {
        service: "db",
        volume: "db-data",
        user: "postgres",
        database: "postgres",
        fromMajor: 15,
        toMajor: 15,
      },
    });
    expect(params.stack.release).toBe("local-next");
    // The stack is rendered from the project's own secrets: the password the project has.
    const current = host.conn.ofType("apply").find((a) => a.ref === ref)?.stack;
    expect(params.stack.env.POSTGRES_PASSWORD).toBe(current?.env.POSTGRES_PASSWORD);
    // The stored job row keeps no stack (no secrets at rest in jobs).
    const [row] = await t.deps.database.db.select().from(jobs).where(eq(jobs.id, job.jobId));
    expect(row?.params).toEqual({ upgradeId: String(view.id) });

    const held = await projectRow();
    expect(held).toMatchObject({ status: "UPGRADING", upgradeId: view.id, specVersion: before.specVersion });
    // Health reports while the stack is down do not move it, nor do healthy ones finish it.
    await health(host.conn, ref, "unhealthy");
    expect((await projectRow()).status).toBe("UPGRADING");
    await health(host.conn, ref, "healthy");
    expect((await projectRow()).status).toBe("UPGRADING");
    // A spec change meanwhile is held: no apply goes out until the upgrade ends.
    const applies = host.conn.ofType("apply").length;
    await t.deps.database.db
      .update(projects)
      .set({ specVersion: held.specVersion + 1 })
      .where(eq(projects.ref, ref));
    await t.deps.hub.kick(host.hostId);
    await host.conn.settle();
    expect(host.conn.ofType("apply").length).toBe(applies);
    // A second upgrade is refused while this one runs.
    await expect(
      startUpgrade(ctx(), ref, { targetRelease: "local-next", allowWithoutBackup: true }),
    ).rejects.toMatchObject({ code: "conflict", message: expect.stringContaining("already upgrading") });
    const audit = await auditActions(t, team.slug, team.members.owner.token);
    expect(audit.map((a) => a.action.name)).toContain("project.upgrade");
  });
});

describe("how an upgrade ends", () => {
  it("upgraded: the project runs the target release under a new spec version, ACTIVE_HEALTHY", async () => {
    const before = await projectRow();
    const { view, job } = await startWithoutBackup();
    await host.conn.send({
      type: "applied",
      ref,
      version: before.specVersion,
      desiredState: "running",
      ok: true,
    });
    await answer(job, true, {
      outcome: "upgraded",
      before: FACTS,
      after: FACTS,
      timings: [{ step: "starting", ms: 5 }],
    });
    await host.conn.settle();
    const after = await projectRow();
    expect(after).toMatchObject({
      release: "local-next",
      status: "ACTIVE_HEALTHY",
      statusReason: null,
      upgradeId: null,
      specVersion: before.specVersion + 1,
    });
    // The new spec goes to the agent, rendered from the target release.
    const apply = host.conn.ofType("apply").at(-1);
    expect(apply).toMatchObject({ ref, version: before.specVersion + 1 });
    expect(apply?.stack?.release).toBe("local-next");
    const done = await latestUpgrade(t.deps, after.id);
    expect(done).toMatchObject({ id: view.id, status: "COMPLETED", step: "done", error: null, failedStep: null });
    const [row] = await t.deps.database.db.select().from(projectUpgrades).where(eq(projectUpgrades.id, view.id));
    expect(row?.report).toMatchObject({ before: FACTS, after: FACTS });
    // The port only the old release named went back to the host; the target's are held.
    const held = await t.deps.database.db.select().from(portReservations).where(eq(portReservations.projectRef, ref));
    expect(held.map((r) => r.service).sort()).toEqual(["db:db", "gateway:api"]);
  });

  it("rolled back: the old release, ACTIVE_HEALTHY, and the failure in status_reason", async () => {
    const before = await projectRow();
    const { view, job } = await startWithoutBackup();
    await answer(job, true, {
      outcome: "rolled_back",
      failedStep: "health_check",
      error: "service gateway is unhealthy",
      before: FACTS,
      after: null,
    });
    await host.conn.settle();
    const after = await projectRow();
    expect(after).toMatchObject({ release: "local", status: "ACTIVE_HEALTHY", upgradeId: null });
    expect(after.specVersion).toBe(before.specVersion);
    expect(after.statusReason).toBe(
      "Upgrade to local-next failed (health check): service gateway is unhealthy. The project runs release local with the data it had before the upgrade.",
    );
    expect(await latestUpgrade(t.deps, after.id)).toMatchObject({
      id: view.id,
      status: "ROLLED_BACK",
      failedStep: "health_check",
      error: "service gateway is unhealthy",
    });
    // Studio's next start of an upgrade is possible again.
    await startWithoutBackup();
  });

  it("a failed job (the rollback failed): FAILED, ACTIVE_UNHEALTHY, and what to do next", async () => {
    const { job } = await startWithoutBackup();
    await answer(job, false, undefined, "rollback failed: docker compose up exited with 1");
    await host.conn.settle();
    const after = await projectRow();
    expect(after).toMatchObject({ release: "local", status: "ACTIVE_UNHEALTHY", upgradeId: null });
    expect(after.statusReason).toMatch(/could not be verified on release local: rollback failed.*No backup was taken/);
    expect(await latestUpgrade(t.deps, after.id)).toMatchObject({ status: "FAILED" });
  });

  it("survives an agent restart: delivered again to the new process, and answered from there", async () => {
    const { view, job } = await startWithoutBackup();
    // The agent process restarts (a new boot id) and reconnects.
    const conn = new FakeConnection(t, host.hostId);
    await conn.send({
      type: "hello",
      agentVersion: "test-0.1.0",
      hostname: "fake",
      compose: "v1",
      capacity: { cpus: 4, memTotalBytes: 2 ** 34, memFreeBytes: 2 ** 33, memReservedBytes: 0, load1: 0.1 },
      inventory: [],
      bootId: "boot_after_restart",
    });
    await conn.settle();
    const [row] = await t.deps.database.db.select().from(jobs).where(eq(jobs.id, job.jobId));
    expect(row?.status).toBe("running");
    expect(conn.ofType("job").map((j) => j.jobId)).toContain(job.jobId);
    expect((await projectRow()).status).toBe("UPGRADING");
    await conn.send({
      type: "job_result",
      jobId: job.jobId,
      ok: true,
      result: { outcome: "rolled_back", failedStep: "starting", error: "the host agent restarted during the upgrade" },
    });
    await conn.settle();
    expect(await latestUpgrade(t.deps, (await projectRow()).id)).toMatchObject({ id: view.id, status: "ROLLED_BACK" });
    expect((await projectRow()).status).toBe("ACTIVE_HEALTHY");
  });

  it("the agent's progress shows as the upgrade's step; another host cannot report it", async () => {
    const { view, job } = await startWithoutBackup();
    const res = await t.request(`/agent/v1/jobs/${job.jobId}/progress`, {
      method: "POST",
      token: host.credential,
      json: { step: "migrating_data" },
    });
    expect(res.status, await res.clone().text()).toBe(204);
    expect(await latestUpgrade(t.deps, (await projectRow()).id)).toMatchObject({ id: view.id, step: "migrating_data" });
    const bad = await t.request(`/agent/v1/jobs/${job.jobId}/progress`, {
      method: "POST",
      token: host.credential,
      json: { step: "nonsense" },
    });
    expect(bad.status).toBe(400);
    const other = await enrollHost(t, team.members.owner);
    const foreign = await t.request(`/agent/v1/jobs/${job.jobId}/progress`, {
      method: "POST",
      token: other.credential,
      json: { step: "done" },
    });
    expect(foreign.status).toBe(404);
  });
});

describe("the backup taken first", () => {
  it("a failed backup ends the upgrade before anything changed: ROLLED_BACK, ACTIVE_HEALTHY", async () => {
    // A target is all the start needs here; the backup job is failed by the (fake) agent.
    const now = new Date(t.clock.now());
    const [p] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    if (!p) throw new Error("no project");
    const [b] = await t.deps.database.db
      .insert(backups)
      .values({
        projectId: p.id,
        projectRef: ref,
        orgId: p.orgId,
        status: "FAILED",
        trigger: "manual",
        encrypted: false,
        artifacts: [],
        error: "pg_dump exited with 1",
        createdAt: now,
      })
      .returning();
    const [u] = await t.deps.database.db
      .insert(projectUpgrades)
      .values({
        projectId: p.id,
        projectRef: ref,
        orgId: p.orgId,
        fromRelease: "local",
        toRelease: "local-next",
        status: "RUNNING",
        step: "backing_up",
        backupId: b?.id ?? null,
      })
      .returning();
    await t.deps.database.db
      .update(projects)
      .set({ status: "UPGRADING", upgradeId: u?.id ?? null })
      .where(eq(projects.id, p.id));
    expect(await advanceUpgrades(t.deps)).toBe(1);
    const after = await projectRow();
    expect(after).toMatchObject({ status: "ACTIVE_HEALTHY", upgradeId: null, release: "local" });
    expect(after.statusReason).toMatch(
      /did not start: the backup taken first did not complete \(pg_dump exited with 1\)/,
    );
    expect(await latestUpgrade(t.deps, p.id)).toMatchObject({ status: "ROLLED_BACK", failedStep: "backing_up" });
    // No job was queued.
    expect(host.conn.ofType("job").filter((j) => j.kind === UPGRADE_JOB_KIND)).toEqual([]);
  });
});
