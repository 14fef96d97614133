import { readFileSync } from "node:fs";
import type { Rpc } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projects } from "../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { expectMatchesOperation } from "../../test-support/openapi.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../test-support/projects-factory.js";

/**
 * /v1 database routes (query, query/read-only, backups list, types/typescript) against a fake
 * agent answering rpc frames; each answer checked against the v1 OpenAPI document. The real
 * postgres-meta path is exercised by test/cli/supabase-cli.test.ts (`gen types typescript`).
 */

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let developer: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
let answer: ((rpc: Rpc) => Record<string, unknown> | null) | null;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  developer = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  await addMember(t, org, developer, "developer");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = () => ({ status: 200, body: [{ one: 1 }], contentType: "application/json" });
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return answer?.(rpc) ?? null;
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

/** The 201 of the query operations declares no body schema: check the operation and status exist. */
function expectDeclared(path: string, status: number) {
  const url = new URL("../../../../../shared/contracts/api_v1_openapi.json", import.meta.url);
  let doc: { paths: Record<string, { post?: { responses?: Record<string, unknown> } }> };
  try {
    doc = JSON.parse(readFileSync(url, "utf8"));
  } catch {
    console.warn(`SKIPPED OpenAPI contract check: ../shared/contracts not found (POST ${path})`);
    return;
  }
  expect(doc.paths[path]?.post?.responses?.[String(status)], `POST ${path} → ${status}`).toBeDefined();
}

const post = (path: string, body: unknown, user: TestUser | null = owner) =>
  t.request(`/v1/projects/${ref}${path}`, { method: "POST", json: body, ...(user ? { token: user.token } : {}) });
const get = (path: string, user: TestUser | null = owner) =>
  t.request(`/v1/projects/${ref}${path}`, user ? { token: user.token } : {});

describe("POST /v1/projects/:ref/database/query", () => {
  it("answers 201 with the rows, through postgres-meta as its own connection for an owner", async () => {
    const res = await post("/database/query", { query: "select 1 as one" });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toEqual([{ one: 1 }]);
    expectDeclared("/v1/projects/{ref}/database/query", 201);
    expect(rpcs).toHaveLength(1);
    expect(rpcs[0]).toMatchObject({ ref, service: "gateway", method: "POST", body: { query: "select 1 as one" } });
    expect(rpcs[0]?.headers["x-connection-encrypted"]).toBeUndefined();
  });

  it("passes parameters; read_only: true and read_only members run as the read-only role", async () => {
    expect((await post("/database/query", { query: "select $1::int", parameters: [3] })).status).toBe(201);
    expect(rpcs[0]?.body).toEqual({ query: "select $1::int", parameters: [3] });
    expect((await post("/database/query", { query: "select 1", read_only: true }, developer)).status).toBe(201);
    expect(rpcs[1]?.headers["x-connection-encrypted"]).toBeTruthy();
    expect((await post("/database/query", { query: "select 1" }, readOnly)).status).toBe(201);
    expect(rpcs[2]?.headers["x-connection-encrypted"]).toBeTruthy();
    expect((await post("/database/query", { query: "select 1" }, developer)).status).toBe(201);
    expect(rpcs[3]?.headers["x-connection-encrypted"]).toBeUndefined();
  });

  it("a SQL error answers 400 with PostgreSQL's message and code", async () => {
    answer = () => ({ status: 400, body: { message: 'relation "nope" does not exist', code: "42P01" } });
    const res = await post("/database/query", { query: "select * from nope" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ message: 'relation "nope" does not exist', code: "42P01" });
  });

  it.each([
    ["no query", {}],
    ["empty query", { query: "" }],
    ["query not a string", { query: 1 }],
    ["parameters not an array", { query: "select 1", parameters: "x" }],
    ["read_only not a boolean", { query: "select 1", read_only: "yes" }],
  ])("refuses %s with 400 and sends nothing", async (_why, body) => {
    const res = await post("/database/query", body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBeTruthy();
    expect(rpcs).toHaveLength(0);
  });
});

describe("POST /v1/projects/:ref/database/query/read-only", () => {
  it("always runs as the read-only role, even for the owner", async () => {
    const res = await post("/database/query/read-only", { query: "select 1 as one" });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toEqual([{ one: 1 }]);
    expectDeclared("/v1/projects/{ref}/database/query/read-only", 201);
    expect(rpcs[0]?.headers["x-connection-encrypted"]).toBeTruthy();
    expect(rpcs[0]?.path).toBe("/pg/query?statementTimeoutSecs=60&queryTimeoutSecs=65");
  });

  it("refuses an empty query with 400", async () => {
    expect((await post("/database/query/read-only", { query: "" })).status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });
});

describe("GET /v1/projects/:ref/database/backups (a project without backups)", () => {
  it("answers the document's shape with the project's region and an empty list, for every role", async () => {
    for (const user of [owner, developer, readOnly]) {
      const res = await get("/database/backups", user);
      expect(res.status).toBe(200);
      const body = await res.json();
      expectMatchesOperation("GET", "/v1/projects/{ref}/database/backups", 200, body);
      expect(body).toEqual({
        region: "local",
        walg_enabled: false,
        pitr_enabled: false,
        backups: [],
        physical_backup_data: {},
      });
    }
    expect(rpcs).toHaveLength(0);
  });
});

describe("GET /v1/projects/:ref/types/typescript", () => {
  const TYPES = "export type Json = string | number\n";

  it("answers {types} generated by the project's postgres-meta, public by default", async () => {
    answer = () => ({ status: 200, body: TYPES, contentType: "text/plain; charset=utf-8" });
    const res = await get("/types/typescript");
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    expectMatchesOperation("GET", "/v1/projects/{ref}/types/typescript", 200, body);
    expect(body).toEqual({ types: TYPES });
    expect(rpcs[0]).toMatchObject({
      service: "gateway",
      method: "GET",
      path: "/pg/generators/typescript?included_schemas=public",
    });
  });

  it("passes included_schemas; read_only members generate through the read-only role", async () => {
    answer = () => ({ status: 200, body: TYPES, contentType: "text/plain" });
    expect((await get("/types/typescript?included_schemas=public,%20api", readOnly)).status).toBe(200);
    expect(rpcs[0]?.path).toBe("/pg/generators/typescript?included_schemas=public%2Capi");
    expect(rpcs[0]?.headers["x-connection-encrypted"]).toBeTruthy();
  });

  it.each([
    ["a bad schema name", "?included_schemas=public;drop"],
    ["no schema at all", "?included_schemas=,"],
  ])("refuses %s with 400", async (_why, qs) => {
    expect((await get(`/types/typescript${qs}`)).status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });

  it("postgres-meta's failure is a 502, its load shedding a 503", async () => {
    answer = () => ({ status: 500, body: { error: "boom" }, contentType: "application/json" });
    const failed = await get("/types/typescript");
    expect(failed.status).toBe(502);
    expect(((await failed.json()) as { message: string }).message).toMatch(/boom/);
    answer = () => ({ status: 503, body: { error: "queue full" }, contentType: "application/json" });
    expect((await get("/types/typescript")).status).toBe(503);
  });
});

describe("security, for every route", () => {
  const routes: Array<[string, (u: TestUser | null) => Promise<Response>]> = [
    ["query", (u) => post("/database/query", { query: "select 1" }, u)],
    ["query/read-only", (u) => post("/database/query/read-only", { query: "select 1" }, u)],
    ["backups", (u) => get("/database/backups", u)],
    ["types", (u) => get("/types/typescript", u)],
  ];

  it.each(routes)("%s: no token → 401, another tenant → 404, unknown ref → 404, nothing sent", async (_n, call) => {
    expect((await call(null)).status).toBe(401);
    const stranger = await signUpAndLogin(t);
    expect((await call(stranger)).status).toBe(404);
    const real = ref;
    ref = "zzzzzzzzzzzzzzzzzzzz";
    expect((await call(owner)).status).toBe(404);
    ref = real;
    expect(rpcs).toHaveLength(0);
  });

  it.each(routes.filter(([n]) => n !== "backups"))("%s: offline host 503, inactive project 409", async (_n, call) => {
    conn.session.closed();
    const offline = await call(owner);
    expect(offline.status).toBe(503);
    expect(((await offline.json()) as { message: string }).message).toMatch(/host is offline/);
    await t.deps.database.db.update(projects).set({ status: "INACTIVE" }).where(eq(projects.ref, ref));
    expect((await call(owner)).status).toBe(409);
  });
});
