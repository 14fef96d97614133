import { createDecipheriv, createHash } from "node:crypto";
import type { Rpc } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projects } from "../../../db/schema.js";
import { META_RESOURCES } from "../../../services/pg-meta/resources.js";
import { connectionToken } from "../../../services/secrets/connection-token.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * Database access through the agent, control-plane side: the routes, the RPC plumbing of the
 * host session and the read-only path, against a fake agent (a HostSession over an in-memory
 * transport) that answers `rpc` frames as the test says. test/data-plane/ runs the real thing.
 */

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let developer: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
/** The rpc frames the control plane sent, in order. */
let rpcs: Rpc[];
/** How the fake agent answers an rpc (null: never answers). */
let answer: ((rpc: Rpc) => Record<string, unknown> | null) | null;

async function makeHealthy() {
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  await conn.send({
    type: "health",
    ref,
    services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
  });
}

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
  await makeHealthy();
});
afterEach(async () => {
  await t.close();
});

const query = (body: unknown, user = owner, headers: Record<string, string> = {}, qs = "") =>
  t.request(`/platform/pg-meta/${ref}/query${qs}`, { method: "POST", token: user.token, json: body, headers });

/** CryptoJS-format AES (what postgres-meta decrypts) reversed, to read what we sent. */
function decryptPgMeta(ciphertext: string, passphrase: string): string {
  const raw = Buffer.from(ciphertext, "base64");
  expect(raw.subarray(0, 8).toString("ascii")).toBe("Salted__");
  const salt = raw.subarray(8, 16);
  let d = Buffer.alloc(0);
  let prev = Buffer.alloc(0);
  while (d.length < 48) {
    prev = createHash("md5")
      .update(Buffer.concat([prev, Buffer.from(passphrase), salt]))
      .digest();
    d = Buffer.concat([d, prev]);
  }
  const decipher = createDecipheriv("aes-256-cbc", d.subarray(0, 32), d.subarray(32, 48));
  return Buffer.concat([decipher.update(raw.subarray(16)), decipher.final()]).toString("utf8");
}

describe("POST /platform/pg-meta/:ref/query", () => {
  it("answers 201 with the bare array of rows, through an rpc to the project's postgres-meta", async () => {
    const res = await query({ query: "select 1 as one" }, owner, {}, "?key=table-editor");
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toEqual([{ one: 1 }]);
    expect(rpcs).toHaveLength(1);
    const rpc = rpcs[0] as Rpc;
    expect(rpc).toMatchObject({ ref, service: "gateway", method: "POST", body: { query: "select 1 as one" } });
    expect(rpc.path).toBe("/pg/query?statementTimeoutSecs=60&queryTimeoutSecs=65");
    expect(rpc.timeoutMs).toBe(70_000);
    // The owner runs as postgres-meta's own connection: no per-request connection.
    expect(rpc.headers["x-connection-encrypted"]).toBeUndefined();
    expect(conn.session.pendingRpcs).toBe(0);
  });

  it("passes parameters through and answers [] for an empty result", async () => {
    answer = () => ({ status: 200, body: [] });
    const res = await query({ query: "select $1::int", parameters: [7] });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual([]);
    expect(rpcs[0]?.body).toEqual({ query: "select $1::int", parameters: [7] });
    // A SET prefix would make it two commands, which a prepared statement refuses: client-side timeout only.
    expect(rpcs[0]?.path).toBe("/pg/query?queryTimeoutSecs=60");
  });

  it("a SQL error answers 400 with postgres-meta's message, formattedError and code", async () => {
    const formatted = 'ERROR:  42P01: relation "nope" does not exist\nLINE 1: select * from nope\n';
    answer = () => ({
      status: 400,
      body: {
        error: formatted,
        length: 104,
        name: "error",
        severity: "ERROR",
        code: "42P01",
        position: "15",
        message: 'relation "nope" does not exist',
        formattedError: formatted,
      },
    });
    const res = await query({ query: "select * from nope" });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      message: 'relation "nope" does not exist',
      formattedError: formatted,
      code: "42P01",
      severity: "ERROR",
      position: "15",
    });
  });

  it("a read_only member's SQL runs on a per-request connection as the read-only role", async () => {
    const res = await query({ query: "select 1" }, readOnly);
    expect(res.status, await res.clone().text()).toBe(201);
    const header = rpcs[0]?.headers["x-connection-encrypted"];
    expect(header).toBeTruthy();
    // Decrypt with the project's PG_META_CRYPTO_KEY as postgres-meta would.
    const { projectVariables } = await import("../../../services/secrets/variables.js");
    const { projectPorts } = await import("../../../services/fleet/scheduling.js");
    const [p] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    if (!p) throw new Error("no project");
    const vars = await projectVariables(
      t.deps,
      t.deps.database.db,
      p,
      { bindAddress: "127.0.0.1" },
      await projectPorts(t.deps.database.db, ref),
    );
    const url = new URL(decryptPgMeta(header as string, vars.PG_META_CRYPTO_KEY as string));
    expect(url.username).toBe("supamanager_read_only");
    expect(decodeURIComponent(url.password)).toBe(vars.READ_ONLY_PASSWORD);
    expect(`${url.hostname}:${url.port}${url.pathname}`).toBe("db:5432/postgres");
    // Its limits travel as startup options (they outrank settings the role gives itself), and a
    // per-request application_name lets the control plane find the backend again.
    expect(url.searchParams.get("options")).toBe(
      "-c default_transaction_read_only=on -c statement_timeout=60s -c lock_timeout=60s -c idle_in_transaction_session_timeout=60s -c idle_session_timeout=70s -c client_connection_check_interval=1s",
    );
    expect(rpcs[0]?.headers["x-pg-application-name"]).toMatch(/^supamanager-ro-[0-9a-f-]{36}$/);
    // Through the gateway, with the project's service-role key (postgres-meta is not published).
    expect(rpcs[0]).toMatchObject({ service: "gateway", path: expect.stringMatching(/^\/pg\/query\?/) });
    expect(rpcs[0]?.headers.apikey).toBe(vars.SERVICE_ROLE_KEY);
    expect(rpcs[0]?.headers.authorization).toBe(`Bearer ${vars.SERVICE_ROLE_KEY}`);
    // No secret reaches the logs.
    expect(t.logs.join("\n")).not.toContain(vars.READ_ONLY_PASSWORD as string);
    expect(t.logs.join("\n")).not.toContain(header as string);
  });

  it("disable_statement_timeout lifts the timeout for members who may write, not for read_only", async () => {
    expect((await query({ query: "select 1", disable_statement_timeout: true }, developer)).status).toBe(201);
    expect(rpcs[0]?.path).toBe("/pg/query?queryTimeoutSecs=270");
    expect((await query({ query: "select 1", disable_statement_timeout: true }, readOnly)).status).toBe(201);
    expect(rpcs[1]?.path).toBe("/pg/query?statementTimeoutSecs=60&queryTimeoutSecs=65");
  });

  it("a read_only request the database did not answer ends its backend, as the superuser", async () => {
    answer = (rpc) =>
      rpc.headers["x-connection-encrypted"]
        ? { status: 408, body: { error: "Query read timeout", message: "Query read timeout" } }
        : { status: 200, body: [{ ended: 1 }] };
    const res = await query({ query: "set statement_timeout = 0; select pg_sleep(1000)" }, readOnly);
    expect(res.status).toBe(408);
    expect(rpcs).toHaveLength(2);
    const [request, kill] = rpcs;
    expect(kill?.headers["x-connection-encrypted"]).toBeUndefined();
    expect(kill?.path).toMatch(/^\/pg\/query\?/);
    expect(String(kill?.body && (kill.body as { query: string }).query)).toMatch(/pg_terminate_backend/);
    expect(((kill?.body ?? {}) as { parameters?: unknown[] }).parameters?.slice(0, 2)).toEqual([
      "supamanager_read_only",
      request?.headers["x-pg-application-name"],
    ]);
    // A SQL error (the statement ended on the server) and an answer need no such step.
    rpcs = [];
    answer = () => ({ status: 400, body: { message: "canceling statement due to statement timeout", code: "57014" } });
    expect((await query({ query: "select pg_sleep(100)" }, readOnly)).status).toBe(400);
    expect(rpcs).toHaveLength(1);
    // The agent's timeout too.
    rpcs = [];
    answer = (rpc) =>
      rpc.headers["x-connection-encrypted"]
        ? { code: "timeout", error: "did not answer" }
        : { status: 200, body: [{ ended: 0 }] };
    expect((await query({ query: "select 1" }, readOnly)).status).toBe(504);
    expect(rpcs).toHaveLength(2);
    // An owner's SQL is never followed by it.
    rpcs = [];
    answer = () => ({ code: "timeout", error: "did not answer" });
    expect((await query({ query: "select 1" }, owner)).status).toBe(504);
    expect(rpcs).toHaveLength(1);
  });

  const agentFailures: [string, Record<string, unknown>, number, RegExp][] = [
    [
      "the agent's timeout",
      { code: "timeout", error: 'service "meta" did not answer within 70000 ms' },
      504,
      /did not answer in time/,
    ],
    [
      "a result over the frame limit",
      { code: "too_large", error: "result too large (5000000 bytes, the limit is 3932160); add a LIMIT" },
      413,
      /query result too large \(5000000 bytes.*add a LIMIT/,
    ],
    [
      "an unreachable postgres-meta",
      { code: "unreachable", error: "ECONNREFUSED" },
      503,
      /not reachable: ECONNREFUSED/,
    ],
    [
      "a refusal by the agent",
      { code: "refused", error: "no endpoint for service" },
      503,
      /cannot reach postgres-meta/,
    ],
    [
      "postgres-meta failing itself",
      { status: 500, body: { message: "failed to get upstream connection details" } },
      502,
      /postgres-meta failed/,
    ],
  ];
  it.each(agentFailures)("%s → the matching status and a clear message", async (_name, result, status, message) => {
    answer = () => result;
    const res = await query({ query: "select 1" });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });

  const badBodies: [string, unknown][] = [
    ["no query", {}],
    ["an empty query", { query: "" }],
    ["a non-string query", { query: 1 }],
    ["parameters that are not an array", { query: "select 1", parameters: "x" }],
    ["a non-boolean disable_statement_timeout", { query: "select 1", disable_statement_timeout: "yes" }],
  ];
  it.each(badBodies)("%s → 400 before anything is sent", async (_name, body) => {
    const res = await query(body);
    expect(res.status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });

  it("x-connection-encrypted: this project's token is accepted; another's or garbage is 404; empty is ignored", async () => {
    const mine = await connectionToken(t.deps, ref);
    expect((await query({ query: "select 1" }, owner, { "x-connection-encrypted": mine })).status).toBe(201);
    expect((await query({ query: "select 1" }, owner, { "x-connection-encrypted": "" })).status).toBe(201);
    const other = await connectionToken(t.deps, "zzzzzzzzzzzzzzzzzzzz");
    expect((await query({ query: "select 1" }, owner, { "x-connection-encrypted": other })).status).toBe(404);
    expect((await query({ query: "select 1" }, owner, { "x-connection-encrypted": "U2FsdGVkX1..." })).status).toBe(404);
    // The header is never forwarded as is.
    for (const r of rpcs) expect(r.headers["x-connection-encrypted"]).toBeUndefined();
  });

  it("a project that is not active answers 409 naming its status", async () => {
    await t.deps.database.db.update(projects).set({ status: "INACTIVE" }).where(eq(projects.ref, ref));
    const res = await query({ query: "select 1" });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(/is INACTIVE.*paused/);
    expect(rpcs).toHaveLength(0);
  });

  it("an offline host answers 503 'the project's host is offline'", async () => {
    conn.session.closed();
    const res = await query({ query: "select 1" });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { message: string }).message).toMatch(/host is offline/);
  });

  it("a host that disconnects while a query waits answers 503", async () => {
    answer = () => null;
    const pending = query({ query: "select pg_sleep(10)" });
    for (let i = 0; i < 100 && rpcs.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(conn.session.pendingRpcs).toBe(1);
    conn.session.closed();
    const res = await pending;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { message: string }).message).toMatch(/disconnected before answering/);
    expect(conn.session.pendingRpcs).toBe(0);
  });

  it("tenant scoping: a non-member gets 404 and nothing is sent", async () => {
    const stranger = await signUpAndLogin(t);
    expect((await query({ query: "select 1" }, stranger)).status).toBe(404);
    expect((await t.request(`/platform/pg-meta/${ref}/tables`, { token: stranger.token })).status).toBe(404);
    expect(rpcs).toHaveLength(0);
  });
});

describe("HostSession.rpc", () => {
  it("times out with 504 when no answer comes, and drops a late answer", async () => {
    answer = () => null;
    const started = Date.now();
    const err = await conn.session
      .rpc({ ref, service: "gateway", method: "GET", path: "/tables", headers: {}, timeoutMs: 50 })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ status: 504, message: expect.stringMatching(/did not answer within/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    expect(conn.session.pendingRpcs).toBe(0);
    // The late answer is dropped without harm.
    await conn.send({ type: "rpc_result", id: rpcs.at(-1)?.id, status: 200, body: [] });
    expect(conn.ofType("error")).toHaveLength(0);
  }, 10_000);
});

describe("GET /platform/pg-meta/:ref/<resource>", () => {
  it("every resource is proxied 1:1 with its query string", async () => {
    answer = (rpc) => ({ status: 200, body: [{ path: rpc.path }] });
    for (const resource of META_RESOURCES) {
      const qs = "?included_schemas=public&include_columns=true&limit=10";
      const res = await t.request(`/platform/pg-meta/${ref}/${resource}${qs}`, { token: readOnly.token });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await res.json()).toEqual([{ path: `/pg/${resource}${qs}` }]);
      expect(rpcs.at(-1)).toMatchObject({ service: "gateway", method: "GET", path: `/pg/${resource}${qs}` });
    }
    expect(rpcs).toHaveLength(10);
  });

  it("refuses a malformed query string with 400", async () => {
    const bad = await t.request(`/platform/pg-meta/${ref}/tables?Bad-Name=1`, { token: owner.token });
    expect(bad.status).toBe(400);
    const many = Array.from({ length: 21 }, (_, i) => `p${i}=1`).join("&");
    expect((await t.request(`/platform/pg-meta/${ref}/tables?${many}`, { token: owner.token })).status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });

  it("postgres-meta's own failure is a 502, its 4xx passes through", async () => {
    answer = () => ({ status: 500, body: { error: "boom" } });
    const res = await t.request(`/platform/pg-meta/${ref}/tables`, { token: owner.token });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { message: string }).message).toMatch(/postgres-meta failed to list tables: boom/);
    answer = () => ({
      status: 400,
      body: { statusCode: 400, error: "Bad Request", message: "querystring/limit must be integer" },
    });
    const r2 = await t.request(`/platform/pg-meta/${ref}/tables?limit=x`, { token: owner.token });
    expect(r2.status).toBe(400);
    expect(await r2.json()).toEqual({ message: "querystring/limit must be integer" });
  });
});

describe("HEAD|GET /platform/projects/:ref/api/rest", () => {
  it("answers 409 on a release without a REST service, naming the release and the service", async () => {
    const res = await t.request(`/platform/projects/${ref}/api/rest`, { token: owner.token });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(
      /release \(local\) does not run the Data API \(PostgREST\) service, so the REST API and its documentation is not available/,
    );
    const head = await t.request(`/platform/projects/${ref}/api/rest`, { method: "HEAD", token: owner.token });
    expect(head.status).toBe(409);
    expect(rpcs).toHaveLength(0);
  });

  it("is tenant scoped", async () => {
    const stranger = await signUpAndLogin(t);
    expect((await t.request(`/platform/projects/${ref}/api/rest`, { token: stranger.token })).status).toBe(404);
  });
});
