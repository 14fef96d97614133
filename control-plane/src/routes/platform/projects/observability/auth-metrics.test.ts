import type { DockerLogLine, Rpc } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PRODUCTION_RELEASE_NAME } from "../../../../releases/production/index.js";
import { authUsersSql } from "../../../../services/analytics/usage.js";
import { signUpAndLogin, type TestUser } from "../../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../../test-support/projects-factory.js";

/**
 * The Auth overview's metrics (apps/studio/data/auth/auth-overview-query.ts):
 * `GET /platform/projects/{ref}/analytics/endpoints/auth.metrics?interval=1day`, whose answer Studio
 * checks with RawAuthMetricsResponseSchema (components/interfaces/Auth/Overview/OverviewUsage.schema.ts):
 * `{result: [{period: "current"|"previous", active_users, api_error_requests, api_total_requests,
 * auth_total_errors, auth_total_requests, password_reset_requests, sign_up_count}], error}` with
 * every count a number ≥ 0. A fake agent answers postgres-meta (auth.users counts) and the
 * gateway's (Kong's) access log.
 */

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0); // the harness's ManualClock
const hoursAgo = (h: number) => new Date(NOW - h * 3_600_000).toISOString();
const kong = (h: number, request: string, status: number): DockerLogLine => ({
  service: "kong",
  stream: "stdout",
  text: `172.18.0.1 - - [25/Nov/2026:00:00:00 +0000] "${request} HTTP/1.1" ${status} 10 "-" "supabase-js"`,
  timestamp: hoursAgo(h),
});

/** Studio's schema, restated from OverviewUsage.schema.ts (facts: field names, types, bounds). */
function expectStudioShape(body: unknown) {
  const b = body as { result: Record<string, unknown>[]; error: unknown };
  expect(Object.keys(b).sort()).toEqual(["error", "result"]);
  expect(b.error).toBeNull();
  expect(Array.isArray(b.result)).toBe(true);
  for (const row of b.result) {
    expect(["current", "previous"]).toContain(row.period);
    for (const k of [
      "active_users",
      "api_error_requests",
      "api_total_requests",
      "auth_total_errors",
      "auth_total_requests",
      "password_reset_requests",
      "sign_up_count",
    ]) {
      expect(typeof row[k], k).toBe("number");
      expect(row[k] as number, k).toBeGreaterThanOrEqual(0);
    }
  }
}

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let stranger: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
let usersAnswer: Record<string, unknown>;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: PRODUCTION_RELEASE_NAME });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  usersAnswer = {
    status: 201,
    body: [
      {
        current_active_users: "3",
        previous_active_users: "5",
        current_sign_up_count: "2",
        previous_sign_up_count: "0",
      },
    ],
  };
  const lines: DockerLogLine[] = [
    kong(30, "POST /auth/v1/recover", 200), // previous day
    kong(26, "GET /rest/v1/todos", 500), // previous day
    kong(5, "POST /auth/v1/signup", 200),
    kong(4, "POST /auth/v1/token?grant_type=password", 400),
    kong(3, "POST /auth/v1/recover", 200),
    kong(2, "GET /rest/v1/todos?select=*", 200),
    kong(1, "GET /storage/v1/object/list", 404),
    kong(50, "GET /auth/v1/user", 200), // older than both days
  ];
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    if (rpc.service === "docker-logs") {
      const service = new URLSearchParams(rpc.path.split("?")[1]).get("service");
      return { status: 200, body: { lines: service === "kong" ? lines : [] } };
    }
    return usersAnswer;
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

const url = () => `/platform/projects/${ref}/analytics/endpoints/auth.metrics?interval=1day`;

describe("GET /platform/projects/{ref}/analytics/endpoints/auth.metrics", () => {
  it("counts the last day against the day before: users from auth.users, requests from the gateway", async () => {
    const res = await t.request(url(), { token: readOnly.token });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    expectStudioShape(body);
    expect(body).toEqual({
      error: null,
      result: [
        {
          period: "current",
          active_users: 3,
          sign_up_count: 2,
          api_total_requests: 5,
          api_error_requests: 2,
          auth_total_requests: 3,
          auth_total_errors: 1,
          password_reset_requests: 1,
        },
        {
          period: "previous",
          active_users: 5,
          sign_up_count: 0,
          api_total_requests: 2,
          api_error_requests: 1,
          auth_total_requests: 1,
          auth_total_errors: 0,
          password_reset_requests: 1,
        },
      ],
    });
    const sql = rpcs.find((r) => r.service !== "docker-logs")?.body as { query: string };
    expect(sql.query).toBe(authUsersSql(NOW));
    expect(sql.query).toContain("from auth.users u");
    expect(sql.query).not.toMatch(/encrypted_password|email|phone/);
  });

  it("before Auth has created its tables: 409 saying so; another SQL error: 502 naming it", async () => {
    usersAnswer = { status: 400, body: { message: 'relation "auth.users" does not exist', code: "42P01" } };
    const missing = await t.request(url(), { token: owner.token });
    expect(missing.status).toBe(409);
    expect(((await missing.json()) as { message: string }).message).toMatch(/has not created its tables yet/);
    usersAnswer = { status: 400, body: { message: "permission denied for schema auth", code: "42501" } };
    const denied = await t.request(url(), { token: owner.token });
    expect(denied.status).toBe(502);
    expect(((await denied.json()) as { message: string }).message).toMatch(/permission denied for schema auth/);
  });

  it("another interval is 400; another organization's member 404; no session 401", async () => {
    const bad = await t.request(`/platform/projects/${ref}/analytics/endpoints/auth.metrics?interval=7day`, {
      token: owner.token,
    });
    expect(bad.status).toBe(400);
    expect((await t.request(url(), { token: stranger.token })).status).toBe(404);
    expect((await t.request(url())).status).toBe(401);
    expect(rpcs).toHaveLength(0);
  });

  it("a release without Auth (local): 409 naming the release and the missing service", async () => {
    const local = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "local" });
    try {
      const u = await signUpAndLogin(local);
      const o = await createOrg(local, u);
      await enrollHost(local, u);
      const r = (await createProjectViaApi(local, u, o, { desired_instance_size: "small" })).ref;
      const res = await local.request(`/platform/projects/${r}/analytics/endpoints/auth.metrics?interval=1day`, {
        token: u.token,
      });
      expect(res.status).toBe(409);
      expect(((await res.json()) as { message: string }).message).toMatch(
        /release \(local\) does not run the Auth \(GoTrue\) service, so the Auth overview's metrics is not available/,
      );
    } finally {
      await local.close();
    }
  });
});
