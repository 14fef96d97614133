import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, projects } from "../../../db/schema.js";
import { roleCan } from "../../../services/permissions/matrix.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

let t: TestApp;
let owner: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  conn = (await enrollHost(t, owner)).conn;
  ref = (await createProjectViaApi(t, owner, org)).ref;
  await conn.settle();
});
afterEach(async () => {
  await t.close();
});

const post = (path: string, user = owner, json?: unknown) =>
  t.request(`/platform/projects/${ref}/${path}`, { method: "POST", token: user.token, ...(json ? { json } : {}) });
const row = async () => (await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref)))[0];

async function setStatus(status: string) {
  await t.deps.database.db.update(projects).set({ status }).where(eq(projects.ref, ref));
}

async function makeHealthy() {
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  await conn.send({
    type: "health",
    ref,
    services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
  });
  expect((await row())?.status).toBe("ACTIVE_HEALTHY");
}

describe("lifecycle requests", () => {
  it("sends the apply to the connected host at once and audits", async () => {
    await makeHealthy();
    expect(conn.ofType("apply")).toHaveLength(1);
    expect((await post("pause")).status).toBe(200);
    await conn.settle();
    expect(conn.ofType("apply").at(-1)).toMatchObject({ ref, version: 2, desiredState: "paused" });
    expect(await row()).toMatchObject({ status: "PAUSING", desiredState: "paused", specVersion: 2, health: null });
    const audits = await t.deps.database.db.select().from(auditLog).where(eq(auditLog.action, "project.pause"));
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({
      orgId: org.id,
      projectRef: ref,
      details: { from: "ACTIVE_HEALTHY", spec_version: 2 },
    });
  });

  it("restart-services restarts the whole stack with a new nonce", async () => {
    await makeHealthy();
    const res = await post("restart-services", owner, { restartRequest: { services: ["db"] } });
    expect(res.status).toBe(200);
    expect(await row()).toMatchObject({ status: "RESTARTING", restartNonce: 1, specVersion: 2 });
    await conn.send({ type: "applied", ref, version: 2, desiredState: "running", ok: false, error: "boom" });
    expect(await row()).toMatchObject({ status: "ACTIVE_UNHEALTHY", statusReason: "boom" });
    const detail = (await (await t.request(`/platform/projects/${ref}`, { token: owner.token })).json()) as Record<
      string,
      unknown
    >;
    expectMatchesSchema("ProjectDetailResponse", detail);
    expect(detail).toMatchObject({ status: "ACTIVE_UNHEALTHY", status_reason: "boom" });
  });

  const illegal: [string, string, RegExp][] = [
    ["pause", "INACTIVE", /cannot be paused while its status is INACTIVE \(it is paused\)/],
    ["pause", "PAUSING", /already pausing/],
    ["pause", "COMING_UP", /still coming up/],
    ["restore", "ACTIVE_HEALTHY", /cannot be restored while its status is ACTIVE_HEALTHY/],
    ["restore", "RESTORING", /being restored/],
    ["restart", "INACTIVE", /cannot be restarted while its status is INACTIVE/],
    ["restart", "GOING_DOWN", /being deleted/],
    ["restart-services", "COMING_UP", /cannot be restarted/],
  ];
  it.each(illegal)("%s from %s → 409", async (path, status, message) => {
    await setStatus(status);
    const before = await row();
    const res = await post(path);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
    expect((await row())?.specVersion).toBe(before?.specVersion);
  });

  it("validates the restore body", async () => {
    await setStatus("INACTIVE");
    expect((await post("restore", owner, { postgres_engine: "17" })).status).toBe(400);
    expect((await post("restore", owner, { postgres_engine: "15", release_channel: "ga" })).status).toBe(200);
  });

  it("answers pause/status as PauseStatusResponse", async () => {
    let res = await t.request(`/platform/projects/${ref}/pause/status`, { token: owner.token });
    let body = (await res.json()) as Record<string, unknown>;
    expectMatchesSchema("PauseStatusResponse", body);
    expect(body).toMatchObject({
      can_restore: false,
      last_paused_on: null,
      remaining_days_till_restore_disabled: null,
    });
    await makeHealthy();
    await post("pause");
    await conn.send({ type: "applied", ref, version: 2, desiredState: "paused", ok: true });
    res = await t.request(`/platform/projects/${ref}/pause/status`, { token: owner.token });
    body = (await res.json()) as Record<string, unknown>;
    expectMatchesSchema("PauseStatusResponse", body);
    expect(body).toMatchObject({ can_restore: true, last_paused_on: new Date(t.clock.now()).toISOString() });
  });

  it.each(["administrator", "developer", "read_only"] as const)("follows the role matrix for %s", async (role) => {
    const member = await signUpAndLogin(t);
    await addMember(t, org, member, role);
    await makeHealthy();
    const restart = await post("restart", member);
    expect(restart.status).toBe(roleCan(role, "projects.restart") ? 200 : 403);
    await setStatus("ACTIVE_HEALTHY");
    expect((await post("pause", member)).status).toBe(roleCan(role, "projects.lifecycle") ? 200 : 403);
  });

  it("answers 404 to outsiders and 401 without a session", async () => {
    const stranger = await signUpAndLogin(t);
    for (const path of ["pause", "restore", "restart", "restart-services"]) {
      expect((await post(path, stranger)).status).toBe(404);
      expect((await t.request(`/platform/projects/${ref}/${path}`, { method: "POST" })).status).toBe(401);
    }
    expect((await t.request(`/platform/projects/${ref}/pause/status`, { token: stranger.token })).status).toBe(404);
  });
});
