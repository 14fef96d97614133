import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, hosts, joinTokens } from "../../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { createJoinToken, enrollHost, GiB, joinHost } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

let t: TestApp;
let admin: TestUser;
let user: TestUser;
let org: TestOrg;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  admin = await signUpAndLogin(t); // first account: instance admin
  user = await signUpAndLogin(t);
  org = await createOrg(t, admin);
});
afterEach(async () => {
  await t.close();
});

const db = () => t.deps.database.db;
const join = (json: unknown) => t.request("/agent/v1/join", { method: "POST", json });

describe("POST /platform/fleet/join-tokens", () => {
  it("creates a token shown once and stored hashed, with defaults", async () => {
    const res = await t.request("/platform/fleet/join-tokens", {
      method: "POST",
      token: admin.token,
      json: { region: "eu-1" },
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { token: string; expires_at: string; region: string; uses: number };
    expect(body.token).toMatch(/^smj_[A-Za-z0-9]{40}$/);
    expect(body).toMatchObject({
      region: "eu-1",
      uses: 1,
      expires_at: new Date(t.clock.now() + 3600_000).toISOString(),
    });
    const rows = await db().select().from(joinTokens);
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(body.token);
    const audit = await db().select().from(auditLog).where(eq(auditLog.action, "fleet.join_token.create"));
    expect(audit).toHaveLength(1);
    expect(audit[0]?.orgId).toBeNull();
    expect(JSON.stringify(audit)).not.toContain(body.token);
  });

  it.each([
    [{}, /region/],
    [{ region: "EU 1" }, /region/],
    [{ region: "eu-1", expires_in_seconds: 8 * 24 * 3600 }, /7 days/],
    [{ region: "eu-1", expires_in_seconds: 10 }, /at least 60/],
    [{ region: "eu-1", uses: 0 }, /uses/],
    [{ region: "eu-1", extra: 1 }, /extra|Unrecognized/i],
  ])("rejects %j with 400", async (json, message) => {
    const res = await t.request("/platform/fleet/join-tokens", { method: "POST", token: admin.token, json });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });

  it("is for the instance admin only", async () => {
    const res = await t.request("/platform/fleet/join-tokens", {
      method: "POST",
      token: user.token,
      json: { region: "x" },
    });
    expect(res.status).toBe(403);
    expect((await t.request("/platform/fleet/join-tokens", { method: "POST", json: { region: "x" } })).status).toBe(
      401,
    );
  });
});

describe("POST /agent/v1/join", () => {
  it("exchanges a token for a host id and a credential stored hashed", async () => {
    const token = await createJoinToken(t, admin, { region: "us-1" });
    const res = await join({ token, hostname: "box-1", bind_address: "10.0.0.5" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { host_id: string; credential: string; region: string };
    expect(body.credential).toMatch(/^smh_[A-Za-z0-9]{40}$/);
    expect(body.host_id).toMatch(/^host_[a-z0-9]{20}$/);
    expect(body.region).toBe("us-1");
    const [row] = await db().select().from(hosts).where(eq(hosts.id, body.host_id));
    expect(row).toMatchObject({ name: "box-1", region: "us-1", bindAddress: "10.0.0.5" });
    expect(row?.credentialHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(body.credential);
  });

  it("honours uses: a single-use token works once, a two-use token twice", async () => {
    const once = await createJoinToken(t, admin, { region: "local" });
    expect((await join({ token: once, hostname: "a" })).status).toBe(201);
    const second = await join({ token: once, hostname: "b" });
    expect(second.status).toBe(401);
    expect(((await second.json()) as { message: string }).message).toMatch(/invalid, expired or used up/);
    const twice = await createJoinToken(t, admin, { region: "local", uses: 2 });
    expect((await join({ token: twice, hostname: "c" })).status).toBe(201);
    expect((await join({ token: twice, hostname: "d" })).status).toBe(201);
    expect((await join({ token: twice, hostname: "e" })).status).toBe(401);
  });

  it("refuses an expired token", async () => {
    const token = await createJoinToken(t, admin, { region: "local", expires_in_seconds: 60 });
    t.clock.advance(61);
    expect((await join({ token, hostname: "late" })).status).toBe(401);
  });

  it("lets only one of two racing agents use a single-use token", async () => {
    const token = await createJoinToken(t, admin, { region: "local" });
    const results = await Promise.all([join({ token, hostname: "x" }), join({ token, hostname: "y" })]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 401]);
  });

  it.each([
    [{ token: `smj_${"a".repeat(40)}`, hostname: "h" }, 401],
    [{ token: "garbage", hostname: "h" }, 401],
    [{ hostname: "h" }, 400],
    [{ token: "x", hostname: "bad host name" }, 400],
    [{ token: "x", hostname: "h", bind_address: "not-an-ip" }, 400],
  ])("answers %j with %i", async (json, statusCode) => {
    expect((await join(json)).status).toBe(statusCode);
  });
});

describe("hosts", () => {
  it("lists hosts with status, capacity and project counts; cordon, drain, uncordon", async () => {
    const h = await enrollHost(t, admin, { region: "eu-1", memFreeBytes: 6 * GiB });
    await createProjectViaApi(t, admin, org, { db_region: "eu-1" });
    const list = (await (await t.request("/platform/fleet/hosts", { token: admin.token })).json()) as Record<
      string,
      unknown
    >[];
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      id: h.hostId,
      region: "eu-1",
      status: "online",
      cordoned: false,
      draining: false,
      agent_version: "test-0.1.0",
      project_count: 1,
      capacity: { cpus: 4, mem_free_bytes: 6 * GiB },
      last_seen_at: new Date(t.clock.now()).toISOString(),
    });
    expect(JSON.stringify(list)).not.toMatch(/credential/);

    const post = (path: string) =>
      t.request(`/platform/fleet/hosts/${h.hostId}/${path}`, { method: "POST", token: admin.token });
    expect(await (await post("cordon")).json()).toMatchObject({ cordoned: true, draining: false });
    expect(await (await post("drain")).json()).toMatchObject({ cordoned: true, draining: true });
    expect(await (await post("uncordon")).json()).toMatchObject({ cordoned: false, draining: false });
    const actions = (await db().select().from(auditLog)).map((a) => a.action);
    expect(actions).toEqual(
      expect.arrayContaining(["fleet.host.join", "fleet.host.cordon", "fleet.host.drain", "fleet.host.uncordon"]),
    );

    t.clock.advance(46);
    const later = (await (await t.request("/platform/fleet/hosts", { token: admin.token })).json()) as {
      status: string;
    }[];
    expect(later[0]?.status).toBe("offline");
  });

  it("refuses to remove a host with projects (409) unless forced", async () => {
    const h = await enrollHost(t, admin);
    await createProjectViaApi(t, admin, org);
    const res = await t.request(`/platform/fleet/hosts/${h.hostId}`, { method: "DELETE", token: admin.token });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { message: string }).message).toMatch(/1 project/);
    const forced = await t.request(`/platform/fleet/hosts/${h.hostId}?force=true`, {
      method: "DELETE",
      token: admin.token,
    });
    expect(forced.status).toBe(200);
    expect(await (await t.request("/platform/fleet/hosts", { token: admin.token })).json()).toEqual([]);
    expect(h.conn.closedWith?.code).toBe(4001);
    // A frame from the removed host's old session is refused too.
    const [removed] = await db().select().from(auditLog).where(eq(auditLog.action, "fleet.host.remove"));
    expect(removed).toMatchObject({ orgId: null, target: h.hostId, details: { force: true, projects: 1 } });
  });

  it("answers 404 for unknown hosts and 403 for non-admins on every fleet route", async () => {
    const h = await joinHost(t, admin);
    const routes: [string, string][] = [
      ["GET", "/platform/fleet/hosts"],
      ["GET", "/platform/fleet/regions"],
      ["POST", `/platform/fleet/hosts/${h.hostId}/cordon`],
      ["POST", `/platform/fleet/hosts/${h.hostId}/uncordon`],
      ["POST", `/platform/fleet/hosts/${h.hostId}/drain`],
      ["DELETE", `/platform/fleet/hosts/${h.hostId}`],
    ];
    for (const [method, path] of routes) {
      expect((await t.request(path, { method, token: user.token })).status, `${method} ${path}`).toBe(403);
    }
    for (const path of ["host_aaaaaaaaaaaaaaaaaaaa/cordon", "nope/drain"]) {
      expect((await t.request(`/platform/fleet/hosts/${path}`, { method: "POST", token: admin.token })).status).toBe(
        404,
      );
    }
    expect(
      (await t.request("/platform/fleet/hosts/host_aaaaaaaaaaaaaaaaaaaa", { method: "DELETE", token: admin.token }))
        .status,
    ).toBe(404);
  });
});

describe("regions", () => {
  it("are the regions of enrolled hosts, with counts; available-regions answers RegionsInfo", async () => {
    await enrollHost(t, admin, { region: "eu-1" });
    const cordoned = await enrollHost(t, admin, { region: "us-1" });
    await t.request(`/platform/fleet/hosts/${cordoned.hostId}/cordon`, { method: "POST", token: admin.token });
    await joinHost(t, admin, "ap-1"); // never connected: offline
    const regions = await (await t.request("/platform/fleet/regions", { token: admin.token })).json();
    expect(regions).toEqual([
      { code: "ap-1", hosts: 1, online_hosts: 0, schedulable_hosts: 0 },
      { code: "eu-1", hosts: 1, online_hosts: 1, schedulable_hosts: 1 },
      { code: "us-1", hosts: 1, online_hosts: 1, schedulable_hosts: 0 },
    ]);
    const res = await t.request("/platform/projects/available-regions?cloud_provider=AWS", { token: user.token });
    expect(res.status).toBe(200);
    const info = (await res.json()) as { all: { specific: { code: string; status?: string }[] } };
    const { expectMatchesSchema } = await import("../../../test-support/contracts.js");
    expectMatchesSchema("RegionsInfo", info);
    expect(info.all.specific.map((s) => [s.code, s.status ?? null])).toEqual([
      ["ap-1", "capacity"],
      ["eu-1", null],
      ["us-1", "capacity"],
    ]);
  });
});
