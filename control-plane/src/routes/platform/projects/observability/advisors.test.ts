import type { Rpc } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projects } from "../../../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../../test-support/projects-factory.js";

/**
 * Studio's Advisors pages against the real control plane and a fake agent (a HostSession over an
 * in-memory transport) standing in for postgres-meta: the exact requests Studio sends
 * (apps/studio/data/lint/lint-query.ts: `GET /platform/projects/{ref}/run-lints`;
 * lint-rules-query.ts: `GET /platform/projects/{ref}/notifications/advisor/exceptions`).
 * test/data-plane/observability.test.ts runs the lints against a real database through a real agent.
 */

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let stranger: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
let answer: (rpc: Rpc) => Record<string, unknown> | null;

const LINT = {
  name: "rls_disabled_in_public",
  title: "RLS Disabled in Public",
  level: "ERROR",
  facing: "EXTERNAL",
  categories: ["SECURITY"],
  description: "A table in a schema the Data API exposes has row level security turned off.",
  detail: "Table public.todos is exposed through the Data API and row level security is not enabled on it.",
  remediation: "https://supabase.com/docs/guides/database/database-linter?lint=0013_rls_disabled_in_public",
  metadata: { schema: "public", name: "todos", type: "table" },
  cache_key: "rls_disabled_in_public_public_todos",
};

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = () => ({ status: 201, body: [LINT], contentType: "application/json" });
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return answer(rpc);
  };
  ref = (await createProjectViaApi(t, owner, org)).ref;
  await conn.settle();
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  await conn.send({
    type: "health",
    ref,
    services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
  });
});
afterEach(async () => {
  await t.close();
});

const get = (path: string, user = owner) => t.request(path, { token: user.token });

describe("GET /platform/projects/:ref/run-lints", () => {
  it("runs the lint SQL through the project's postgres-meta and answers Studio's Lint array", async () => {
    const res = await get(`/platform/projects/${ref}/run-lints`);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual([LINT]);
    expect(rpcs).toHaveLength(1);
    const rpc = rpcs[0] as Rpc;
    // Wherever the pg-meta path sends SQL (services/pg-meta/target.ts: the gateway's /pg/ or meta's port).
    expect(rpc).toMatchObject({ ref, method: "POST" });
    expect(rpc.path).toMatch(/^(\/pg)?\/query\?statementTimeoutSecs=\d+/);
    const sql = (rpc.body as { query: string }).query;
    // The exposed schemas of /config/postgrest decide the security lints.
    expect(sql).toContain("n.nspname in ('public', 'storage', 'graphql_public')");
    for (const name of ["rls_disabled_in_public", "auth_rls_initplan", "unindexed_foreign_keys", "duplicate_index"]) {
      expect(sql).toContain(`'${name}'`);
    }
  });

  it("answers [] when the database is clean", async () => {
    answer = () => ({ status: 201, body: [] });
    const res = await get(`/platform/projects/${ref}/run-lints`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([]);
  });

  it("a read_only member's lints run on the read-only role's connection", async () => {
    const res = await get(`/platform/projects/${ref}/run-lints`, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(rpcs[0]?.headers["x-connection-encrypted"]).toEqual(expect.any(String));
  });

  it.each([
    [
      "a SQL error of our own query",
      { status: 400, body: { message: "permission denied for table pg_policy" } },
      502,
      /could not run/,
    ],
    ["rows of another shape", { status: 201, body: [{ name: "x" }] }, 502, /unexpected shape/],
    ["postgres-meta failing", { status: 500, body: { message: "boom" } }, 502, /postgres-meta failed/],
    ["the agent timing out", { error: "no answer", code: "timeout" }, 504, /did not answer in time/],
  ])("%s → a clear error status and message", async (_name, result, status, message) => {
    answer = () => result;
    const res = await get(`/platform/projects/${ref}/run-lints`);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });

  it("a paused project answers 409 saying so, without an rpc", async () => {
    await t.deps.database.db.update(projects).set({ status: "INACTIVE" }).where(eq(projects.ref, ref));
    const res = await get(`/platform/projects/${ref}/run-lints`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(/paused/);
    expect(rpcs).toHaveLength(0);
  });

  it.each([
    ["no token", ""],
    ["a bad token", "not-a-jwt"],
  ])("%s → 401", async (_n, token) => {
    const res = await t.request(`/platform/projects/${ref}/run-lints`, { token });
    expect(res.status).toBe(401);
  });

  it("another tenant's project and a malformed ref → 404, without an rpc", async () => {
    expect((await get(`/platform/projects/${ref}/run-lints`, stranger)).status).toBe(404);
    expect((await get("/platform/projects/NOT-A-REF/run-lints")).status).toBe(404);
    expect(rpcs).toHaveLength(0);
  });
});

describe("GET /platform/projects/:ref/notifications/advisor/exceptions (stub)", () => {
  it("answers an empty list of dismissed lints to members", async () => {
    const res = await get(`/platform/projects/${ref}/notifications/advisor/exceptions`, readOnly);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ exceptions: [] });
  });

  it("another tenant's project → 404", async () => {
    expect((await get(`/platform/projects/${ref}/notifications/advisor/exceptions`, stranger)).status).toBe(404);
  });
});
