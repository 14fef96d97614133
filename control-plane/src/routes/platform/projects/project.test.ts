import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, projects } from "../../../db/schema.js";
import { roleCan } from "../../../services/permissions/matrix.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import {
  addMember,
  type CreatedProject,
  createOrg,
  createProjectViaApi,
  TEST_DB_PASS,
  type TestOrg,
} from "../../../test-support/projects-factory.js";

let t: TestApp;
let owner: TestUser;
let org: TestOrg;
let project: CreatedProject;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  project = await createProjectViaApi(t, owner, org, { name: "Original" });
});
afterEach(async () => {
  await t.close();
});

const db = () => t.deps.database.db;
const row = async (ref = project.ref) => (await db().select().from(projects).where(eq(projects.ref, ref)))[0];
const audits = (action: string) =>
  db()
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.action, action), eq(auditLog.projectRef, project.ref)));

const rename = (user: TestUser, json: unknown, ref = project.ref) =>
  t.request(`/platform/projects/${ref}`, { method: "PATCH", token: user.token, json });
const remove = (user: TestUser, ref = project.ref) =>
  t.request(`/platform/projects/${ref}`, { method: "DELETE", token: user.token });

describe("GET /platform/projects/:ref", () => {
  it("answers ProjectDetailResponse without secrets", async () => {
    const res = await t.request(`/platform/projects/${project.ref}`, { token: owner.token });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expectMatchesSchema("ProjectDetailResponse", body);
    expect(body).toEqual({
      id: project.id,
      ref: project.ref,
      name: "Original",
      status: "COMING_UP",
      organization_id: org.id,
      cloud_provider: "AWS",
      region: "local",
      inserted_at: project.inserted_at,
      db_host: "127.0.0.1",
      db_port: expect.any(Number),
      restUrl: `http://${project.endpoint}/rest/v1/`,
      connectionString: expect.stringMatching(new RegExp(`^cs1_${project.ref}_[0-9a-f]{32}$`)),
      dbVersion: "supabase-postgres-15.8.1.085",
      infra_compute_size: "nano",
      is_branch_enabled: false,
      is_physical_backups_enabled: false,
      subscription_id: "",
    });
    expect(JSON.stringify(body)).not.toContain(TEST_DB_PASS);
  });

  it("explains a failed project with status_reason", async () => {
    await db()
      .update(projects)
      .set({ status: "INIT_FAILED", statusReason: "no host in region local" })
      .where(eq(projects.ref, project.ref));
    const body = (await (
      await t.request(`/platform/projects/${project.ref}`, { token: owner.token })
    ).json()) as Record<string, unknown>;
    expectMatchesSchema("ProjectDetailResponse", body);
    expect(body).toMatchObject({ status: "INIT_FAILED", status_reason: "no host in region local" });
  });

  it("answers /status", async () => {
    const res = await t.request(`/platform/projects/${project.ref}/status`, { token: owner.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "COMING_UP" });
  });

  it("reads a status outside Studio's vocabulary as UNKNOWN", async () => {
    await db().update(projects).set({ status: "WEIRD" }).where(eq(projects.ref, project.ref));
    const res = await t.request(`/platform/projects/${project.ref}/status`, { token: owner.token });
    expect(await res.json()).toEqual({ status: "UNKNOWN" });
  });

  it("lets a read_only member read", async () => {
    const reader = await signUpAndLogin(t);
    await addMember(t, org, reader, "read_only");
    expect((await t.request(`/platform/projects/${project.ref}`, { token: reader.token })).status).toBe(200);
    expect((await t.request(`/platform/projects/${project.ref}/status`, { token: reader.token })).status).toBe(200);
  });
});

describe("PATCH /platform/projects/:ref", () => {
  it("renames, bumps updated_at and audits, without touching the spec version", async () => {
    const before = await row();
    t.clock.advance(60);
    const res = await rename(owner, { name: "  Renamed  " });
    expect(res.status).toBe(200);
    const body = await res.json();
    expectMatchesSchema("ProjectRefResponse", body);
    expect(body).toEqual({ id: project.id, ref: project.ref, name: "Renamed" });
    const after = await row();
    expect(after?.name).toBe("Renamed");
    expect(after?.specVersion).toBe(before?.specVersion);
    expect(after?.updatedAt.getTime()).toBe((before?.updatedAt.getTime() ?? 0) + 60_000);
    const [audit] = await audits("project.rename");
    expect(audit).toMatchObject({ orgId: org.id, actorId: owner.userId, details: { from: "Original", to: "Renamed" } });
    const detail = (await (await t.request(`/platform/projects/${project.ref}`, { token: owner.token })).json()) as {
      name: string;
    };
    expect(detail.name).toBe("Renamed");
  });

  it.each([
    ["missing name", {}],
    ["empty name", { name: "" }],
    ["blank name", { name: "   " }],
    ["name too long", { name: "x".repeat(257) }],
    ["name of the wrong type", { name: 5 }],
    ["unknown field", { name: "ok", status: "ACTIVE_HEALTHY" }],
  ])("rejects %s with 400", async (_label, json) => {
    const res = await rename(owner, json);
    expect(res.status).toBe(400);
    expect((await row())?.name).toBe("Original");
  });

  it("accepts a 256-character name", async () => {
    expect((await rename(owner, { name: "n".repeat(256) })).status).toBe(200);
  });
});

describe("DELETE /platform/projects/:ref", () => {
  it("marks the project GOING_DOWN with desired state deleted under a new spec version", async () => {
    t.clock.advance(5);
    const res = await remove(owner);
    expect(res.status).toBe(200);
    const body = await res.json();
    expectMatchesSchema("RemoveProjectResponse", body);
    expect(body).toEqual({ id: project.id, ref: project.ref, name: "Original" });
    expect(await row()).toMatchObject({ status: "GOING_DOWN", desiredState: "deleted", specVersion: 2 });
    expect((await row())?.updatedAt.toISOString()).toBe(new Date(t.clock.now()).toISOString());
    const [audit] = await audits("project.delete");
    expect(audit).toMatchObject({ orgId: org.id, actorId: owner.userId, outcome: "success" });
    const status = await t.request(`/platform/projects/${project.ref}/status`, { token: owner.token });
    expect(await status.json()).toEqual({ status: "GOING_DOWN" });
  });

  it("is idempotent while going down: 200 again, no second bump or audit row", async () => {
    expect((await remove(owner)).status).toBe(200);
    const again = await remove(owner);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ id: project.id, ref: project.ref, name: "Original" });
    expect((await row())?.specVersion).toBe(2);
    expect(await audits("project.delete")).toHaveLength(1);
  });

  it("answers 404 everywhere once the project is REMOVED", async () => {
    await db().update(projects).set({ status: "REMOVED" }).where(eq(projects.ref, project.ref));
    expect((await remove(owner)).status).toBe(404);
    expect((await t.request(`/platform/projects/${project.ref}`, { token: owner.token })).status).toBe(404);
    expect((await t.request(`/platform/projects/${project.ref}/status`, { token: owner.token })).status).toBe(404);
    expect((await rename(owner, { name: "x" })).status).toBe(404);
    const list = (await (await t.request("/platform/projects", { token: owner.token })).json()) as {
      projects: unknown[];
    };
    expect(list.projects).toEqual([]);
  });
});

describe("access", () => {
  const routes = (ref: string) =>
    [
      ["GET", `/platform/projects/${ref}`, undefined],
      ["GET", `/platform/projects/${ref}/status`, undefined],
      ["PATCH", `/platform/projects/${ref}`, { name: "Hijacked" }],
      ["DELETE", `/platform/projects/${ref}`, undefined],
    ] as const;

  it("answers 404 on every project route to someone outside the organization, and changes nothing", async () => {
    const stranger = await signUpAndLogin(t);
    await createOrg(t, stranger, "Stranger's own org");
    for (const [method, path, json] of routes(project.ref)) {
      const res = await t.request(path, { method, token: stranger.token, ...(json ? { json } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(await res.text()).not.toContain("Original");
    }
    expect(await row()).toMatchObject({ name: "Original", status: "COMING_UP", specVersion: 1 });
  });

  it("answers 404 for unknown and malformed refs", async () => {
    for (const ref of ["abcdefghijklmnopqrst", "short", "ABCDEFGHIJKLMNOPQRST", "abcdefghijklmnopqrs1"]) {
      for (const [method, path, json] of routes(ref)) {
        const res = await t.request(path, { method, token: owner.token, ...(json ? { json } : {}) });
        expect(res.status, `${method} ${path}`).toBe(404);
      }
    }
  });

  it("requires a session on every project route", async () => {
    for (const [method, path, json] of routes(project.ref)) {
      const res = await t.request(path, { method, ...(json ? { json } : {}) });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });

  it("forbids read_only members to rename or delete (403), changing nothing", async () => {
    const reader = await signUpAndLogin(t);
    await addMember(t, org, reader, "read_only");
    expect((await rename(reader, { name: "Nope" })).status).toBe(403);
    expect((await remove(reader)).status).toBe(403);
    expect(await row()).toMatchObject({ name: "Original", status: "COMING_UP", desiredState: "running" });
    expect(await audits("project.rename")).toHaveLength(0);
    expect(await audits("project.delete")).toHaveLength(0);
  });

  it.each(["administrator", "developer", "read_only"] as const)("follows the role matrix for %s", async (role) => {
    const member = await signUpAndLogin(t);
    await addMember(t, org, member, role);
    expect((await rename(member, { name: "By member" })).status).toBe(roleCan(role, "projects.update") ? 200 : 403);
    expect((await remove(member)).status).toBe(roleCan(role, "projects.delete") ? 200 : 403);
  });
});
