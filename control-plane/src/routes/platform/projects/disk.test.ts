import type { Rpc } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DISK_USAGE_SQL, NO_DISK_MESSAGE, WAL_SIZE_SQL } from "../../../services/disk/utilization.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { expectMatchesOperation } from "../../../test-support/openapi.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * Studio's Compute and Disk page against the real control plane, with a fake agent standing in
 * for the project's postgres-meta (the SQL runs on a real PostgreSQL in
 * services/disk/utilization.test.ts). Studio's calls (apps/studio/data/config/):
 * disk-utilization-query.ts `GET /platform/projects/{ref}/disk/util` (read as
 * `metrics.fs_used_bytes`, `fs_avail_bytes`, `fs_size_bytes`), disk-attributes-query.ts
 * `GET /platform/projects/{ref}/disk` and disk-autoscale-config-query.ts
 * `GET /platform/projects/{ref}/disk/custom-config`; on an error DiskSizeField shows "Failed to
 * load disk size data" with the answer's message and disables the input. The Management API's
 * `GET /v1/projects/{ref}/config/disk/util` answer is held to api_v1_openapi.json.
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

const DB_BYTES = 52_428_800;
const WAL_BYTES = 16_777_216;

function byQuery(rpc: Rpc): Record<string, unknown> {
  const sql = (rpc.body as { query: string }).query;
  if (sql === DISK_USAGE_SQL) return { status: 201, body: [{ db_size_bytes: String(DB_BYTES), wal_visible: true }] };
  if (sql === WAL_SIZE_SQL) return { status: 201, body: [{ wal_size_bytes: String(WAL_BYTES) }] };
  return { status: 400, body: { message: "unexpected SQL" } };
}

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "local" });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = byQuery;
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return answer(rpc);
  };
  ref = (await createProjectViaApi(t, owner, org, { desired_instance_size: "small" })).ref;
  await conn.settle();
  await conn.send({ type: "applied", ref, version: 1, desiredState: "running", ok: true });
  const services = Object.keys(t.deps.releases.get("local")?.services ?? {});
  await conn.send({
    type: "health",
    ref,
    services: services.map((name) => ({ name, state: "running", health: "healthy" })),
  });
});
afterEach(async () => {
  await t.close();
});

const call = (path: string, user: TestUser = owner) => t.request(path, { token: user.token });

describe("GET /platform/projects/{ref}/disk/util", () => {
  it("answers the space the databases and the WAL occupy, size and free space unmeasured (any member)", async () => {
    const res = await call(`/platform/projects/${ref}/disk/util`, readOnly);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { timestamp: string; metrics: Record<string, number> };
    expect(body.metrics).toEqual({ fs_used_bytes: DB_BYTES + WAL_BYTES, fs_size_bytes: 0, fs_avail_bytes: 0 });
    expect(Number.isNaN(Date.parse(body.timestamp))).toBe(false);
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/disk/util", 200, body);
    // Our own fixed SQL, on postgres-meta's connection even for a read_only member.
    expect(rpcs.map((r) => (r.body as { query: string }).query)).toEqual([DISK_USAGE_SQL, WAL_SIZE_SQL]);
    for (const r of rpcs) {
      expect(r.path).toMatch(/^(\/pg)?\/query\?/);
      expect(r.headers["x-connection-encrypted"]).toBeUndefined();
    }
  });

  it("a role that may not list the WAL: the databases alone, and pg_ls_waldir is never called", async () => {
    answer = (rpc) =>
      (rpc.body as { query: string }).query === DISK_USAGE_SQL
        ? { status: 201, body: [{ db_size_bytes: DB_BYTES, wal_visible: false }] }
        : { status: 400, body: { message: "permission denied for function pg_ls_waldir" } };
    const res = await call(`/platform/projects/${ref}/disk/util`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { metrics: { fs_used_bytes: number } }).metrics.fs_used_bytes).toBe(DB_BYTES);
    expect(rpcs).toHaveLength(1);
  });

  it("a database error is a 502 naming it, never a made-up size", async () => {
    answer = () => ({ status: 400, body: { message: "permission denied for database postgres", code: "42501" } });
    const res = await call(`/platform/projects/${ref}/disk/util`);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { message: string }).message).toMatch(
      /database size could not be read: permission denied for database postgres/,
    );
  });

  it("the Management API's GET /v1/projects/{ref}/config/disk/util answers the same", async () => {
    const res = await call(`/v1/projects/${ref}/config/disk/util`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect((body as { metrics: { fs_used_bytes: number } }).metrics.fs_used_bytes).toBe(DB_BYTES + WAL_BYTES);
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/disk/util", 200, body);
  });

  it("is 404 for another organization's member and 401 without a session; the agent is not asked", async () => {
    expect((await call(`/platform/projects/${ref}/disk/util`, stranger)).status).toBe(404);
    expect((await call(`/v1/projects/${ref}/config/disk/util`, stranger)).status).toBe(404);
    expect((await t.request(`/platform/projects/${ref}/disk/util`)).status).toBe(401);
    expect(rpcs).toHaveLength(0);
  });
});

describe("GET /platform/projects/{ref}/disk and /disk/custom-config", () => {
  it.each(["disk", "disk/custom-config"])("%s: 404 saying a project has no disk of its own (members)", async (p) => {
    const res = await call(`/platform/projects/${ref}/${p}`, readOnly);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { message: string; code: string };
    expect(body.code).toBe("not_found");
    expect(body.message).toBe(NO_DISK_MESSAGE);
    expect(body.message).not.toMatch(/is not supported by SupaManager/);
    expect(rpcs).toHaveLength(0);
  });

  it.each(["disk", "disk/custom-config"])("%s: another organization's member gets the plain project 404", async (p) => {
    const res = await call(`/platform/projects/${ref}/${p}`, stranger);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { message: string }).message).toBe(`Project ${ref} not found`);
  });
});
