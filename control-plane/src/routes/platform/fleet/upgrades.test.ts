import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Job } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projects, projectUpgrades, upgradeRollouts } from "../../../db/schema.js";
import { LOCAL_RELEASE } from "../../../releases/local.js";
import { runMaintenance } from "../../../services/maintenance.js";
import { advanceRollout } from "../../../services/upgrades/rollout.js";
import { enrollHost, type FakeConnection, type JoinedHost } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { auditActions, createTeam, type TeamFixture } from "../../../test-support/org-fixtures.js";
import { createProjectViaApi } from "../../../test-support/projects-factory.js";

/**
 * Fleet-wide upgrades against the real control plane (ADR 0039), a FakeConnection playing the
 * host's agent: the canary alone first, then `parallel` at a time, the stop at the first failure,
 * the report, and the maintenance tick moving a rollout on when nothing else did.
 */

const SERVICES = ["db", "meta", "gateway"];
let dir: string;
let t: TestApp;
let fleet: TeamFixture;
let tenant: TeamFixture;
let host: JoinedHost & { conn: FakeConnection };

interface Rollout {
  id: number;
  status: string;
  stop_reason: string | null;
  counts: Record<string, number>;
  projects: { ref: string; status: string; canary: boolean; upgrade_id: number | null; error: string | null }[];
}

async function makeHealthy(ref: string) {
  await host.conn.settle();
  await host.conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  await host.conn.send({
    type: "health",
    ref,
    services: SERVICES.map((name) => ({ name, state: "running", health: "healthy" })),
  });
}

async function newProjects(n: number): Promise<string[]> {
  const refs: string[] = [];
  for (let i = 0; i < n; i++) {
    const ref = (await createProjectViaApi(t, tenant.members.owner, tenant, { name: `p${i}` })).ref;
    await makeHealthy(ref);
    refs.push(ref);
  }
  return refs;
}

const admin = () => fleet.members.owner.token;

async function post(path: string, json: unknown, token = admin()) {
  const res = await t.request(path, { method: "POST", token, json });
  return { status: res.status, body: (await res.json()) as Rollout & { message?: string } };
}

async function get(id: number): Promise<Rollout> {
  const res = await t.request(`/platform/fleet/upgrades/${id}`, { token: admin() });
  expect(res.status).toBe(200);
  return (await res.json()) as Rollout;
}

/** The upgrade jobs the agent has been sent so far, by project. */
function upgradeJobs(): Map<string, Job> {
  return new Map(
    host.conn
      .ofType("job")
      .filter((j) => j.kind === "upgrade")
      .map((j) => [j.ref as string, j]),
  );
}

async function finish(ref: string, outcome: "upgraded" | "rolled_back") {
  // The job reaches the agent after the kick that follows its start: let that delivery land first.
  await host.conn.settle();
  const job = upgradeJobs().get(ref);
  if (!job) throw new Error(`no upgrade job for ${ref}`);
  await host.conn.send({
    type: "job_result",
    jobId: job.jobId,
    ok: true,
    result: outcome === "upgraded" ? { outcome } : { outcome, failedStep: "post_check", error: "row counts differ" },
  });
  await host.conn.settle();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "fleet-upgrade-"));
  const releasesFile = join(dir, "releases.json");
  writeFileSync(releasesFile, JSON.stringify([{ ...LOCAL_RELEASE, name: "local-next", description: "next" }]));
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASES_FILE: releasesFile });
  fleet = await createTeam(t); // its owner is the first account: the instance admin
  tenant = await createTeam(t);
  host = await enrollHost(t, fleet.members.owner);
}, 60_000);

afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("POST /platform/fleet/upgrades", () => {
  it("is for the instance admin only", async () => {
    const r = await post(
      "/platform/fleet/upgrades",
      { from_release: "local", to_release: "local-next", org_slug: tenant.slug },
      tenant.members.owner.token,
    );
    expect(r.status).toBe(403);
  });

  it.each([
    [{ from_release: "local", to_release: "local-next" }, 400, /organization \(org_slug\), a region, or both/],
    [{ from_release: "local", to_release: "nope", region: "local" }, 400, /No release named nope/],
    [{ from_release: "local", to_release: "local-next", org_slug: "no-such-org" }, 404, /not found/],
    [{ from_release: "local", to_release: "local-next", region: "mars-1" }, 400, /No project of region mars-1/],
    [{ from_release: "local", to_release: "local-next", region: "local", parallel: 0 }, 400, /parallel/],
    [{ from_release: "local", to_release: "local-next", region: "local", extra: 1 }, 400, /extra/],
  ])("refuses %o with %i", async (body, status, message) => {
    await newProjects(1);
    const r = await post("/platform/fleet/upgrades", body);
    expect(r.status).toBe(status);
    expect(r.body.message).toMatch(message);
  });

  it("refuses an organization without backup storage unless upgrades without a backup are allowed", async () => {
    const r = await post("/platform/fleet/upgrades", {
      from_release: "local",
      to_release: "local-next",
      org_slug: tenant.slug,
    });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(new RegExp(`Organization ${tenant.slug} has no backup storage`));
  });
});

describe("a rollout", () => {
  it("upgrades a canary alone, then N at a time, stops at the first failure and reports", async () => {
    // Move the projects earlier tests made out of the way: this rollout takes the org's four new ones.
    await t.deps.database.db.update(projects).set({ release: "local-next" }).where(eq(projects.orgId, tenant.id));
    const refs = await newProjects(4);
    const start = await post("/platform/fleet/upgrades", {
      from_release: "local",
      to_release: "local-next",
      org_slug: tenant.slug,
      parallel: 2,
      allow_without_backup: true,
    });
    expect(start.status, JSON.stringify(start.body)).toBe(202);
    const id = start.body.id;
    await host.conn.settle();
    // The canary alone.
    expect(start.body.projects.map((p) => [p.ref, p.status, p.canary])).toEqual([
      [refs[0], "RUNNING", true],
      [refs[1], "PENDING", false],
      [refs[2], "PENDING", false],
      [refs[3], "PENDING", false],
    ]);
    expect([...upgradeJobs().keys()]).toEqual([refs[0]]);

    // The canary completes: the next two start at once (its end advances the rollout).
    await finish(refs[0] as string, "upgraded");
    let r = await get(id);
    expect(r.projects.map((p) => p.status)).toEqual(["COMPLETED", "RUNNING", "RUNNING", "PENDING"]);
    expect([...upgradeJobs().keys()].sort()).toEqual([refs[0], refs[1], refs[2]].sort());

    // One of them rolls back: nothing new starts, the other finishes, the rest is not started.
    await finish(refs[1] as string, "rolled_back");
    r = await get(id);
    expect(r.status).toBe("STOPPING");
    expect(r.projects.map((p) => p.status)).toEqual(["COMPLETED", "ROLLED_BACK", "RUNNING", "SKIPPED"]);
    expect(r.stop_reason).toBe(`the upgrade of ${refs[1]} was rolled back: row counts differ`);
    await finish(refs[2] as string, "upgraded");
    r = await get(id);
    expect(r.status).toBe("STOPPED");
    expect(r.counts).toMatchObject({ total: 4, COMPLETED: 2, ROLLED_BACK: 1, SKIPPED: 1, RUNNING: 0 });
    expect(r.projects[3]?.error).toMatch(/^not started: the fleet upgrade stopped/);
    expect(upgradeJobs().has(refs[3] as string)).toBe(false);
    // The projects: two on the new release, the rolled back one and the skipped one on the old.
    const releases = await Promise.all(
      refs.map(
        async (ref) => (await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref)))[0]?.release,
      ),
    );
    expect(releases).toEqual(["local-next", "local", "local-next", "local"]);

    const stop = await post(`/platform/fleet/upgrades/${id}/stop`, {});
    expect(stop.status).toBe(409);
    const list = await t.request("/platform/fleet/upgrades", { token: admin() });
    expect(((await list.json()) as Rollout[])[0]).toMatchObject({ id, status: "STOPPED" });
    const audit = await auditActions(t, tenant.slug, tenant.members.owner.token);
    expect(audit.map((a) => a.action.name)).toContain("project.upgrade");
  });

  it("skips a project that cannot start, and is moved on by the maintenance tick", async () => {
    await t.deps.database.db.update(projects).set({ release: "local-next" }).where(eq(projects.orgId, tenant.id));
    const refs = await newProjects(2);
    // The first is paused: refused when its turn comes, so the second becomes the canary.
    await t.deps.database.db
      .update(projects)
      .set({ status: "INACTIVE", desiredState: "paused" })
      .where(eq(projects.ref, refs[0] as string));
    const start = await post("/platform/fleet/upgrades", {
      from_release: "local",
      to_release: "local-next",
      org_slug: tenant.slug,
      region: "local",
      allow_without_backup: true,
    });
    expect(start.status).toBe(202);
    const id = start.body.id;
    expect(start.body.projects.map((p) => [p.status, p.canary])).toEqual([
      ["SKIPPED", false],
      ["RUNNING", true],
    ]);
    expect(start.body.projects[0]?.error).toMatch(/is paused/);
    // The upgrade ends without the rollout hearing of it (as on a replica that missed it): the
    // maintenance tick finds it.
    const upgradeId = start.body.projects[1]?.upgrade_id as number;
    await t.deps.database.db
      .update(projectUpgrades)
      .set({ status: "COMPLETED", step: "done" })
      .where(eq(projectUpgrades.id, upgradeId));
    expect((await get(id)).status).toBe("RUNNING");
    await runMaintenance(t.deps);
    const r = await get(id);
    expect(r.status).toBe("COMPLETED");
    expect(r.counts).toMatchObject({ COMPLETED: 1, SKIPPED: 1 });
  });

  it("is advanced by one replica at a time (a lease)", async () => {
    await t.deps.database.db.update(projects).set({ release: "local-next" }).where(eq(projects.orgId, tenant.id));
    await newProjects(1);
    const start = await post("/platform/fleet/upgrades", {
      from_release: "local",
      to_release: "local-next",
      org_slug: tenant.slug,
      allow_without_backup: true,
    });
    const id = start.body.id;
    // Another replica holds it: this one does nothing.
    await t.deps.database.db
      .update(upgradeRollouts)
      .set({ leaseUntil: new Date(t.clock.now() + 60_000) })
      .where(eq(upgradeRollouts.id, id));
    expect(await advanceRollout(t.deps, id)).toBe(false);
    await t.deps.database.db.update(upgradeRollouts).set({ leaseUntil: null }).where(eq(upgradeRollouts.id, id));
    expect(await advanceRollout(t.deps, id)).toBe(true);
    // Stopped by the operator while the canary runs: it finishes, nothing else would start.
    const stop = await post(`/platform/fleet/upgrades/${id}/stop`, {});
    expect(stop.status).toBe(200);
    expect(stop.body.status).toBe("STOPPING");
    await finish(stop.body.projects[0]?.ref as string, "upgraded");
    expect((await get(id)).status).toBe("STOPPED");
  });
});
