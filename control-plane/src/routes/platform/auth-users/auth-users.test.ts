import type { Rpc } from "@supamanager/shared";
import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog } from "../../../db/schema.js";
import { PRODUCTION_RELEASE_NAME } from "../../../releases/production/index.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * Studio's Authentication → Users actions against the real control plane, with a fake agent
 * standing in for the project's gateway and GoTrue. A real GoTrue cannot run here (no image), so
 * the translation is held to GoTrue's published API:
 *
 * Source: supabase/supabase apps/docs/spec/auth_v1_openapi.json (GoTrue's swagger 2.0: admin
 * operations need a bearer token) and GoTrue's router (supabase/auth internal/api/api.go):
 *   POST /admin/users · PUT /admin/users/{user_id} (ban_duration: "none" or a Go duration) ·
 *   DELETE /admin/users/{user_id} · GET /admin/users/{user_id}/factors ·
 *   DELETE /admin/users/{user_id}/factors/{factor_id} · POST /invite {email} ·
 *   POST /recover {email} · POST /magiclink {email} · POST /otp {phone}
 * Errors carry `msg` (newer GoTrue: also `code`, `error_code`).
 * Kong routes /auth/v1/* to GoTrue and wants the key in `apikey` (supabase-stack.md).
 * Studio's side: platform.d.ts operations /platform/auth/{ref}/users, /users/{id},
 * /users/{id}/factors, /invite, /recover, /magiclink, /otp; create sends {email, password,
 * email_confirm} (apps/studio/data/auth/user-create-mutation.ts).
 */

const GOTRUE = {
  createUser: { method: "POST", path: "/auth/v1/admin/users" },
  updateUser: (id: string) => ({ method: "PUT", path: `/auth/v1/admin/users/${id}` }),
  deleteUser: (id: string) => ({ method: "DELETE", path: `/auth/v1/admin/users/${id}` }),
  listFactors: (id: string) => ({ method: "GET", path: `/auth/v1/admin/users/${id}/factors` }),
  deleteFactor: (id: string, f: string) => ({ method: "DELETE", path: `/auth/v1/admin/users/${id}/factors/${f}` }),
  invite: { method: "POST", path: "/auth/v1/invite" },
  recover: { method: "POST", path: "/auth/v1/recover" },
  magiclink: { method: "POST", path: "/auth/v1/magiclink" },
  otp: { method: "POST", path: "/auth/v1/otp" },
} as const;

const USER_ID = "7b0d6c3e-2f4a-4c1e-9d3b-5a6f7e8d9c01";
const FACTOR_A = "11111111-2222-4333-8444-555555555555";
const FACTOR_B = "66666666-7777-4888-8999-aaaaaaaaaaaa";
const GOTRUE_USER = { id: USER_ID, aud: "authenticated", role: "authenticated", email: "ada@example.test" };

let t: TestApp;
let owner: TestUser;
let developer: TestUser;
let readOnly: TestUser;
let stranger: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
let answer: (rpc: Rpc) => Record<string, unknown> | null;

async function healthyProject(app: TestApp, user: TestUser, o: TestOrg, c: FakeConnection, release: string) {
  const r = (
    await createProjectViaApi(app, user, o, { desired_instance_size: release === "local" ? "small" : "medium" })
  ).ref;
  await c.settle();
  await c.send({ type: "applied", ref: r, version: 1, desiredState: "running", ok: true });
  const services = Object.keys(app.deps.releases.get(release)?.services ?? {});
  await c.send({
    type: "health",
    ref: r,
    services: services.map((name) => ({ name, state: "running", health: "healthy" })),
  });
  return r;
}

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: PRODUCTION_RELEASE_NAME });
  owner = await signUpAndLogin(t);
  developer = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, developer, "developer");
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = () => ({ status: 200, body: GOTRUE_USER, contentType: "application/json" });
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return answer(rpc);
  };
  ref = await healthyProject(t, owner, org, conn, PRODUCTION_RELEASE_NAME);
});
afterEach(async () => {
  await t.close();
});

const call = (method: string, path: string, json?: unknown, user = owner) =>
  t.request(`/platform/auth/${ref}${path}`, { method, token: user.token, ...(json !== undefined ? { json } : {}) });

/** The JWT payload of the key sent to the gateway. */
const keyClaims = (rpc: Rpc) =>
  JSON.parse(Buffer.from((rpc.headers.apikey ?? "").split(".")[1] ?? "", "base64url").toString()) as { role: string };

describe("Auth users through the project's GoTrue admin API", () => {
  it("create: POST /admin/users through the gateway with the service-role key, which never reaches Studio", async () => {
    const res = await call("POST", "/users", {
      email: "ada@example.test",
      password: "pw-0123456789",
      email_confirm: true,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual(GOTRUE_USER);
    expect(rpcs).toHaveLength(1);
    const rpc = rpcs[0] as Rpc;
    expect(rpc).toMatchObject({ ref, service: "gateway", ...GOTRUE.createUser });
    expect(rpc.body).toEqual({ email: "ada@example.test", password: "pw-0123456789", email_confirm: true });
    expect(keyClaims(rpc).role).toBe("service_role");
    expect(rpc.headers.authorization).toBe(`Bearer ${rpc.headers.apikey}`);
    expect(text).not.toContain(rpc.headers.apikey as string);
    expect(t.logs.join("\n")).not.toContain(rpc.headers.apikey as string);
    expect(t.logs.join("\n")).not.toContain("pw-0123456789");
    // The organization's audit log names the user, never the password.
    const rows = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.projectRef, ref), eq(auditLog.action, "project.auth_user.create")));
    expect(rows).toHaveLength(1);
    expect(rows[0]?.target).toBe(USER_ID);
    expect(JSON.stringify(rows[0])).not.toContain("pw-0123456789");
  });

  it("a developer may manage users too", async () => {
    expect((await call("POST", "/users", { email: "b@example.test", password: "x" }, developer)).status).toBe(200);
  });

  it.each([
    ["ban for 24h", { ban_duration: "24h" }, "project.auth_user.ban"],
    ["lift the ban", { ban_duration: "none" }, "project.auth_user.unban"],
  ])("%s: PATCH users/{id} → PUT /admin/users/{id} {ban_duration}", async (_n, body, action) => {
    const res = await call("PATCH", `/users/${USER_ID}`, body);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(rpcs[0]).toMatchObject({ ...GOTRUE.updateUser(USER_ID), body });
    const rows = await t.deps.database.db.select().from(auditLog).where(eq(auditLog.action, action));
    expect(rows).toHaveLength(1);
  });

  it("delete: DELETE /admin/users/{id}", async () => {
    answer = () => ({ status: 200, body: {} });
    const res = await call("DELETE", `/users/${USER_ID}`);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(rpcs[0]).toMatchObject(GOTRUE.deleteUser(USER_ID));
  });

  it("remove MFA factors: lists them, then deletes each one", async () => {
    answer = (rpc) =>
      rpc.method === "GET"
        ? {
            status: 200,
            body: [
              { id: FACTOR_A, factor_type: "totp" },
              { id: FACTOR_B, factor_type: "phone" },
            ],
          }
        : { status: 200, body: {} };
    const res = await call("DELETE", `/users/${USER_ID}/factors`);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(rpcs.map((r) => ({ method: r.method, path: r.path }))).toEqual([
      GOTRUE.listFactors(USER_ID),
      GOTRUE.deleteFactor(USER_ID, FACTOR_A),
      GOTRUE.deleteFactor(USER_ID, FACTOR_B),
    ]);
  });

  it.each([
    ["/invite", { email: "new@example.test" }, GOTRUE.invite, { email: "new@example.test" }],
    // Older Studio builds post the whole user row: only the address goes to GoTrue.
    ["/recover", { ...GOTRUE_USER, email: "ada@example.test" }, GOTRUE.recover, { email: "ada@example.test" }],
    ["/magiclink", { email: "ada@example.test" }, GOTRUE.magiclink, { email: "ada@example.test" }],
    ["/otp", { phone: "+15550001111" }, GOTRUE.otp, { phone: "+15550001111" }],
  ])("POST %s → GoTrue's own endpoint with just the address", async (path, body, target, sent) => {
    const res = await call("POST", path, body);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(rpcs[0]).toMatchObject({ ...target, body: sent });
  });

  it.each([
    [
      "GoTrue's 422 (weak password)",
      {
        status: 422,
        body: { code: 422, error_code: "weak_password", msg: "Password should be at least 6 characters." },
      },
      422,
      /^Auth: Password should be at least 6 characters\.$/,
    ],
    [
      "GoTrue's 400 (already registered)",
      { status: 400, body: { msg: "A user with this email address has already been registered" } },
      400,
      /already been registered/,
    ],
    [
      "GoTrue refusing our key",
      { status: 401, body: { msg: "invalid JWT" } },
      502,
      /refused the project's service-role key/,
    ],
    ["GoTrue failing", { status: 500, body: { msg: "database error" } }, 502, /Auth: database error/],
    ["the agent timing out", { error: "no answer", code: "timeout" }, 504, /did not answer in time/],
  ])("%s → our status with a readable message", async (_n, result, status, message) => {
    answer = () => result;
    const res = await call("POST", "/users", { email: "ada@example.test", password: "x" });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });

  it.each([
    ["no email or phone", "POST", "/users", { password: "x" }],
    ["a malformed email", "POST", "/invite", { email: "not-an-email" }],
    ["a ban that is not a duration", "PATCH", `/users/${USER_ID}`, { ban_duration: "forever" }],
    ["a malformed phone", "POST", "/otp", { phone: "call me" }],
  ])("%s → 400 without reaching GoTrue", async (_n, method, path, body) => {
    const res = await call(method, path, body);
    expect(res.status).toBe(400);
    expect(rpcs).toHaveLength(0);
  });

  it("security: read_only → 403, another tenant → 404, a malformed user id → 404, no token → 401; no rpc", async () => {
    expect((await call("POST", "/users", { email: "a@example.test", password: "x" }, readOnly)).status).toBe(403);
    expect((await call("DELETE", `/users/${USER_ID}`, undefined, stranger)).status).toBe(404);
    expect((await call("DELETE", "/users/not-a-uuid")).status).toBe(404);
    expect((await t.request(`/platform/auth/${ref}/users/${USER_ID}`, { method: "DELETE" })).status).toBe(401);
    expect(rpcs).toHaveLength(0);
  });
});

describe("a release without Auth (local)", () => {
  it("answers 409 naming the release and the missing service, without an rpc", async () => {
    const local = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "local" });
    try {
      const u = await signUpAndLogin(local);
      const o = await createOrg(local, u);
      const c = (await enrollHost(local, u)).conn;
      const sent: Rpc[] = [];
      c.answerRpc = (rpc) => {
        sent.push(rpc);
        return { status: 200, body: {} };
      };
      const r = await healthyProject(local, u, o, c, "local");
      for (const [method, path, json] of [
        ["POST", "/users", { email: "a@example.test", password: "x" }],
        ["POST", "/invite", { email: "a@example.test" }],
        ["DELETE", `/users/${USER_ID}`, undefined],
      ] as const) {
        const res = await local.request(`/platform/auth/${r}${path}`, {
          method,
          token: u.token,
          ...(json ? { json } : {}),
        });
        expect(res.status).toBe(409);
        expect(((await res.json()) as { message: string }).message).toMatch(
          /release \(local\) does not run the Auth \(GoTrue\) service, so managing Auth users is not available/,
        );
      }
      expect(sent).toHaveLength(0);
    } finally {
      await local.close();
    }
  });
});
