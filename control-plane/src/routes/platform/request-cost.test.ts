import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createOrg, createProjectViaApi, seedProjects, type TestOrg } from "../../test-support/projects-factory.js";
import { countStatements } from "../../test-support/statements.js";

/**
 * How many SQL statements (= round trips to PostgreSQL) the hot read paths of Studio cost per
 * request (ADR 0033). Counts, not timings: a change that adds a round trip to one of these paths
 * fails here and has to say why in the ADR and docs/benchmarks.md.
 */

let t: TestApp;
let owner: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  conn = (await enrollHost(t, owner)).conn;
  conn.answerRpc = () => ({ status: 200, body: [{ one: 1 }], contentType: "application/json" });
  ref = (await createProjectViaApi(t, owner, org)).ref;
  await conn.settle();
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  await conn.send({
    type: "health",
    ref,
    services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
  });
  await seedProjects(
    t,
    org,
    Array.from({ length: 150 }, (_, i) => ({ name: `seeded-${i}` })),
  );
});
afterAll(async () => {
  await t?.close();
});

async function cost(path: string, init: { method?: string; json?: unknown } = {}) {
  const run = () => t.request(path, { token: owner.token, ...init });
  expect((await run()).status).toBeLessThan(300); // warm: first reads may create rows
  const { result, statements } = await countStatements(run);
  expect(result.status, await result.clone().text()).toBeLessThan(300);
  return statements;
}

describe("SQL statements per request", () => {
  // [route, path, expected statements (before ADR 0033), request]
  const routes: [string, () => string, number, { method?: string; json?: unknown }?][] = [
    ["GET /platform/profile", () => "/platform/profile", 1], // was 2
    ["GET /platform/organizations", () => "/platform/organizations", 1], // was 2
    // was 4: session, membership, count, page
    ["GET /platform/organizations/{slug}/projects", () => `/platform/organizations/${org.slug}/projects?limit=100`, 1],
    ["GET /platform/projects/{ref}", () => `/platform/projects/${ref}`, 1], // was 4
    ["GET /platform/projects/{ref}/status", () => `/platform/projects/${ref}/status`, 1], // was 4
    [
      "POST /platform/pg-meta/{ref}/query",
      () => `/platform/pg-meta/${ref}/query`,
      2, // was 6: session, project, host, ports, secrets, auth settings
      { method: "POST", json: { query: "select 1 as one" } },
    ],
  ];
  it.each(routes)("%s costs %i statement(s)", async (_name, path, expected, init) => {
    const statements = await cost(path(), init);
    expect(statements, statements.join("\n")).toHaveLength(expected);
  });

  it("an empty page still answers 404 to a non-member and counts the filter for a member", async () => {
    const outsider = await signUpAndLogin(t);
    const res = await t.request(`/platform/organizations/${org.slug}/projects?limit=10`, { token: outsider.token });
    expect(res.status).toBe(404);
    const past = await t.request(`/platform/organizations/${org.slug}/projects?limit=10&offset=5000`, {
      token: owner.token,
    });
    expect(past.status).toBe(200);
    const body = (await past.json()) as { pagination: { count: number }; projects: unknown[] };
    expect(body.projects).toEqual([]);
    expect(body.pagination.count).toBe(151);
  });
});
