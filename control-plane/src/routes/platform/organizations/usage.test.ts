import type { Rpc } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projects } from "../../../db/schema.js";
import { PRODUCTION_RELEASE_NAME } from "../../../releases/production/index.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * The organization usage page against the real control plane, with a fake agent standing in for
 * each project's postgres-meta (the statement itself runs on a real PostgreSQL in
 * services/organizations/usage.test.ts). Studio's call (apps/studio/data/usage/org-usage-query.ts):
 * `GET /platform/organizations/{slug}/usage?project_ref&start&end`; the page reads `usages[]` by
 * `metric` (DATABASE_SIZE, STORAGE_SIZE, MONTHLY_ACTIVE_USERS…: `usage` in GB for sizes,
 * `available_in_plan`, `unlimited`, `pricing_free_units`, `project_allocations`;
 * components/interfaces/Organization/Usage/UsageSection/AttributeUsage.tsx).
 */

const GIB = 1024 ** 3;
let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let stranger: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let alpha: string;
let beta: string;
let rpcs: Rpc[];
/** The usage row each project's database answers. */
let rows: Record<string, Record<string, unknown>>;

async function running(ref: string) {
  await conn.settle();
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  const services = Object.keys(t.deps.releases.get(PRODUCTION_RELEASE_NAME)?.services ?? {});
  await conn.send({
    type: "health",
    ref,
    services: services.map((name) => ({ name, state: "running", health: "healthy" })),
  });
}

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: PRODUCTION_RELEASE_NAME });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  rows = {};
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return { status: 201, body: [rows[rpc.ref] ?? {}], contentType: "application/json" };
  };
  alpha = (await createProjectViaApi(t, owner, org, { name: "Alpha", desired_instance_size: "medium" })).ref;
  await running(alpha);
  beta = (await createProjectViaApi(t, owner, org, { name: "Beta", desired_instance_size: "medium" })).ref;
  await running(beta);
  rows[alpha] = { database_size: String(2 * GIB), storage_size: String(GIB / 2), monthly_active_users: "3" };
  rows[beta] = { database_size: String(GIB), storage_size: null, monthly_active_users: null };
});
afterEach(async () => {
  await t.close();
});

const usageOf = (body: { usages: { metric: string }[] }, metric: string) =>
  body.usages.find((u) => u.metric === metric);

describe("GET /platform/organizations/{slug}/usage", () => {
  it("answers each running project's measured figures, summed, with the per-project allocation (any member)", async () => {
    const res = await t.request(`/platform/organizations/${org.slug}/usage`, { token: readOnly.token });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { usage_billing_enabled: boolean; usages: Record<string, unknown>[] } & {
      usages: { metric: string }[];
    };
    expect(body.usage_billing_enabled).toBe(false);
    expect(body.usages.map((u) => u.metric)).toEqual(["DATABASE_SIZE", "STORAGE_SIZE", "MONTHLY_ACTIVE_USERS"]);
    expect(usageOf(body, "DATABASE_SIZE")).toEqual({
      metric: "DATABASE_SIZE",
      usage: 3,
      usage_original: 3,
      cost: 0,
      available_in_plan: true,
      unlimited: true,
      capped: false,
      pricing_strategy: "NONE",
      pricing_free_units: 0,
      project_allocations: [
        { ref: alpha, name: "Alpha", usage: 2 },
        { ref: beta, name: "Beta", usage: 1 },
      ],
    });
    // Beta has no Storage or Auth schema: only Alpha counts there.
    expect(usageOf(body, "STORAGE_SIZE")).toMatchObject({
      usage: 0.5,
      project_allocations: [{ ref: alpha, usage: 0.5 }],
    });
    expect(usageOf(body, "MONTHLY_ACTIVE_USERS")).toMatchObject({
      usage: 3,
      project_allocations: [{ ref: alpha, usage: 3 }],
    });
    // Our own statement for each project, on postgres-meta's connection (no read-only role needed for statistics).
    expect(rpcs).toHaveLength(2);
    for (const rpc of rpcs) {
      const sql = (rpc.body as { query: string }).query;
      expect(sql).toContain("pg_database_size");
      // The period is the current month by default (the test clock is 2026-11-25).
      expect(sql).toContain("last_sign_in_at >= ''2026-11-01T00:00:00.000Z''");
      expect(rpc.headers["x-connection-encrypted"]).toBeUndefined();
    }
  });

  it("Studio's project filter and window: one project, the window's sign-ins", async () => {
    const qs = new URLSearchParams({
      project_ref: beta,
      start: "2026-10-01T00:00:00.000Z",
      end: "2026-11-01T00:00:00.000Z",
    });
    const res = await t.request(`/platform/organizations/${org.slug}/usage?${qs}`, { token: owner.token });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { usages: { metric: string; project_allocations: unknown[] }[] };
    expect(body.usages.map((u) => u.metric)).toEqual(["DATABASE_SIZE"]);
    expect(usageOf(body, "DATABASE_SIZE")).toMatchObject({ usage: 1, project_allocations: [{ ref: beta }] });
    expect(rpcs).toHaveLength(1);
    expect((rpcs[0]?.body as { query: string } | undefined)?.query).toContain(
      "last_sign_in_at >= ''2026-10-01T00:00:00.000Z''",
    );
  });

  it("a paused project is left out; one that cannot answer is left out, not an error", async () => {
    await t.deps.database.db.update(projects).set({ status: "INACTIVE" }).where(eq(projects.ref, alpha));
    rows[beta] = { database_size: "not a number" };
    const res = await t.request(`/platform/organizations/${org.slug}/usage`, { token: owner.token });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { usages: unknown[] };
    // Beta's unparseable size is null: no metric has a measured project.
    expect(body.usages).toEqual([]);
    expect(rpcs.map((r) => r.ref)).toEqual([beta]);
  });

  it("is 404 for a non-member, 400 for a malformed filter", async () => {
    expect((await t.request(`/platform/organizations/${org.slug}/usage`, { token: stranger.token })).status).toBe(404);
    const bad = await t.request(`/platform/organizations/${org.slug}/usage?project_ref=nope`, { token: owner.token });
    expect(bad.status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });
});
