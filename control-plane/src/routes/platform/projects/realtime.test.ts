import type { Rpc } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PRODUCTION_RELEASE_NAME } from "../../../releases/production/index.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * Studio's Realtime settings page against the real control plane, with a fake agent standing in
 * for the project's postgres-meta (the SQL itself runs on a real PostgreSQL in
 * services/realtime/config.test.ts). Studio's calls (apps/studio/data/realtime/):
 * realtime-config-query.ts `GET /platform/projects/{ref}/config/realtime`; the settings form
 * (components/interfaces/Realtime/RealtimeSettings.tsx) saves with realtime-config-mutation.ts
 * `PATCH /platform/projects/{ref}/config/realtime` {private_only, connection_pool,
 * max_concurrent_users, max_events_per_second, max_presence_events_per_second,
 * max_payload_size_in_kb, suspend}. On an error Studio shows "Failed to retrieve realtime
 * settings" with the answer's message. The Management API's /v1/projects/{ref}/config/realtime
 * answers are held to api_v1_openapi.json.
 */

/** What postgres-meta answers for our tenant SQL: jsonb columns come back as JSON values. */
const ROW = {
  private_only: false,
  max_concurrent_users: 200,
  max_events_per_second: 100,
  max_bytes_per_second: 100000,
  max_channels_per_client: 100,
  max_joins_per_second: 100,
  max_presence_events_per_second: 1000,
  max_payload_size_in_kb: 3000,
  suspend: false,
  connection_pool: null,
};

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let developer: TestUser;
let stranger: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
let answer: (rpc: Rpc) => Record<string, unknown> | null;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: PRODUCTION_RELEASE_NAME });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  developer = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  await addMember(t, org, developer, "developer");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = () => ({ status: 201, body: [ROW], contentType: "application/json" });
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return answer(rpc);
  };
  ref = (await createProjectViaApi(t, owner, org, { desired_instance_size: "medium" })).ref;
  await conn.settle();
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  const services = Object.keys(t.deps.releases.get(PRODUCTION_RELEASE_NAME)?.services ?? {});
  await conn.send({
    type: "health",
    ref,
    services: services.map((name) => ({ name, state: "running", health: "healthy" })),
  });
});
afterEach(async () => {
  await t.close();
});

const call = (method: string, path: string, user: TestUser = owner, json?: unknown) =>
  t.request(path, { method, token: user.token, ...(json !== undefined ? { json } : {}) });

/** Studio's form body on save (RealtimeSettings.tsx onConfirmSave), with the values GET gave. */
const studioSave = (over: Record<string, unknown> = {}) => ({
  private_only: false,
  connection_pool: 2,
  max_concurrent_users: 200,
  max_events_per_second: 100,
  max_presence_events_per_second: 1000,
  max_payload_size_in_kb: 3000,
  suspend: false,
  ...over,
});

describe("GET /platform/projects/{ref}/config/realtime", () => {
  it("answers the limits of the project's Realtime tenant, read from its database (any member)", async () => {
    const res = await call("GET", `/platform/projects/${ref}/config/realtime`, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    expect(body).toEqual(ROW);
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/realtime", 200, body);
    expect(rpcs).toHaveLength(1);
    const rpc = rpcs[0] as Rpc;
    expect(rpc.path).toMatch(/^(\/pg)?\/query\?/);
    const sql = (rpc.body as { query: string }).query;
    expect(sql).toContain("from _realtime.tenants t where t.external_id = 'realtime-dev'");
    // Our own fixed SQL runs on postgres-meta's connection, even for a read_only member: the
    // read-only role cannot see _realtime, and no member-supplied SQL is involved.
    expect(rpc.headers["x-connection-encrypted"]).toBeUndefined();
    expect(sql).not.toMatch(/jwt_secret|db_password/);
  });

  it("states the connection pool when the tenant's extension sets one; numbers may come back as strings", async () => {
    answer = () => ({ status: 201, body: [{ ...ROW, connection_pool: "5", max_concurrent_users: "300" }] });
    const res = await call("GET", `/platform/projects/${ref}/config/realtime`);
    expect(await res.json()).toMatchObject({ connection_pool: 5, max_concurrent_users: 300 });
  });

  it("the Management API's GET answers the same, held to RealtimeConfigResponse", async () => {
    const res = await call("GET", `/v1/projects/${ref}/config/realtime`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual(ROW);
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/realtime", 200, body);
  });

  it.each([
    ["no tenant row yet", { status: 201, body: [] }],
    [
      "no _realtime schema yet",
      { status: 400, body: { message: 'relation "_realtime.tenants" does not exist', code: "42P01" } },
    ],
  ])("%s: 409 saying Realtime has not created its tenant yet", async (_, a) => {
    answer = () => a;
    const res = await call("GET", `/platform/projects/${ref}/config/realtime`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(/has not created its tenant yet/);
  });

  it("another SQL error is the database's fault, not the caller's: 502 with the reason", async () => {
    answer = () => ({ status: 400, body: { message: "permission denied for schema _realtime", code: "42501" } });
    const res = await call("GET", `/platform/projects/${ref}/config/realtime`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { message: string }).message).toMatch(/permission denied for schema _realtime/);
  });

  it("is 404 for a non-member and 401 without a session", async () => {
    expect((await call("GET", `/platform/projects/${ref}/config/realtime`, stranger)).status).toBe(404);
    expect((await t.request(`/platform/projects/${ref}/config/realtime`)).status).toBe(401);
    expect(rpcs).toHaveLength(0);
  });
});

describe("PATCH /platform/projects/{ref}/config/realtime (Studio's form)", () => {
  it("the form sent back unchanged passes and answers the settings; nothing is written", async () => {
    answer = () => ({ status: 201, body: [{ ...ROW, connection_pool: 2 }] });
    const res = await call("PATCH", `/platform/projects/${ref}/config/realtime`, owner, studioSave());
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ ...ROW, connection_pool: 2 });
    // One read, no write.
    expect(rpcs).toHaveLength(1);
    expect(((rpcs[0] as Rpc).body as { query: string }).query).toMatch(/^select /);
  });

  it("a change is refused with 400 naming the fields, so nobody believes it applied", async () => {
    answer = () => ({ status: 201, body: [{ ...ROW, connection_pool: 2 }] });
    const res = await call(
      "PATCH",
      `/platform/projects/${ref}/config/realtime`,
      owner,
      studioSave({ max_concurrent_users: 500, suspend: true }),
    );
    expect(res.status).toBe(400);
    const { message } = (await res.json()) as { message: string };
    expect(message).toMatch(/^Not changed: max_concurrent_users, suspend are not managed by SupaManager yet/);
    expect(message).toMatch(/re-creates its tenant/);
  });

  it("values out of the API's ranges and unknown fields are 400 before anything is read", async () => {
    for (const body of [{ max_concurrent_users: 0 }, { connection_pool: 101 }, { nope: 1 }, { suspend: "yes" }]) {
      const res = await call("PATCH", `/platform/projects/${ref}/config/realtime`, owner, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect(rpcs).toHaveLength(0);
  });

  it("read_only and developer members get 403, a non-member 404, before the body is read", async () => {
    for (const [user, status] of [
      [readOnly, 403],
      [developer, 403],
      [stranger, 404],
    ] as const) {
      const res = await call("PATCH", `/platform/projects/${ref}/config/realtime`, user, { nope: 1 });
      expect(res.status).toBe(status);
    }
    expect(rpcs).toHaveLength(0);
  });

  it("the Management API's PATCH answers 204 for unchanged values and 400 for a change", async () => {
    const same = await call("PATCH", `/v1/projects/${ref}/config/realtime`, owner, { max_events_per_second: 100 });
    expect(same.status).toBe(204);
    const changed = await call("PATCH", `/v1/projects/${ref}/config/realtime`, owner, { max_events_per_second: 50 });
    expect(changed.status).toBe(400);
  });
});

describe("projects that do not run Realtime", () => {
  it("a project created without the realtime part: 409 saying so", async () => {
    const r = (
      await createProjectViaApi(t, owner, org, { desired_instance_size: "medium", parts: ["storage", "functions"] })
    ).ref;
    const res = await call("GET", `/platform/projects/${r}/config/realtime`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(
      /does not run Realtime: .* optional part "realtime", which the project was created without/,
    );
  });

  it("the local release: 409 naming the release and the missing service", async () => {
    const local = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "local" });
    try {
      const u = await signUpAndLogin(local);
      const o = await createOrg(local, u);
      await enrollHost(local, u);
      const r = (await createProjectViaApi(local, u, o, { desired_instance_size: "small" })).ref;
      for (const path of [`/platform/projects/${r}/config/realtime`, `/v1/projects/${r}/config/realtime`]) {
        const res = await local.request(path, { token: u.token });
        expect(res.status).toBe(409);
        expect(((await res.json()) as { message: string }).message).toMatch(
          /release \(local\) does not run the Realtime service, so Realtime \(its settings and inspector\) is not available/,
        );
      }
    } finally {
      await local.close();
    }
  });
});
