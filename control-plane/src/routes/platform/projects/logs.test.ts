import type { Rpc } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, type FakeConnection } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { addMember, createOrg, createProjectViaApi, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * GET /platform/projects/:ref/logs against a protocol-level fake agent (a HostSession over an
 * in-memory transport) that answers the reserved `docker-logs` rpc as the test says.
 */

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let org: TestOrg;
let conn: FakeConnection;
let ref: string;
let rpcs: Rpc[];
let answer: ((rpc: Rpc) => Record<string, unknown> | null) | null;

const LINES = [
  { service: "db", stream: "stdout", text: "database system is ready", timestamp: "2026-01-01T00:00:00.000Z" },
  { service: "meta", stream: "stderr", text: "warn: x" },
];

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  conn = (await enrollHost(t, owner)).conn;
  rpcs = [];
  answer = () => ({ status: 200, contentType: "application/json", body: { lines: LINES } });
  conn.answerRpc = (rpc) => {
    rpcs.push(rpc);
    return answer?.(rpc) ?? null;
  };
  ref = (await createProjectViaApi(t, owner, org)).ref;
  await conn.settle();
});
afterEach(async () => {
  await t.close();
});

const logs = (qs = "", user: TestUser | null = owner) =>
  t.request(`/platform/projects/${ref}/logs${qs}`, user ? { token: user.token } : {});

describe("GET /platform/projects/:ref/logs", () => {
  it("answers the lines through a docker-logs rpc (default tail 100)", async () => {
    const res = await logs();
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ ref, lines: LINES });
    expect(rpcs).toHaveLength(1);
    expect(rpcs[0]).toMatchObject({ ref, service: "docker-logs", method: "GET", path: "/logs?tail=100" });
  });

  it("passes service and tail on, and echoes the service", async () => {
    const res = await logs("?service=db&tail=5");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { service: string }).service).toBe("db");
    expect(rpcs[0]?.path).toBe("/logs?tail=5&service=db");
  });

  it("read_only members may read logs", async () => {
    expect((await logs("", readOnly)).status).toBe(200);
  });

  it("rebuilds the agent's lines field by field (unknown fields dropped, bad lines skipped)", async () => {
    answer = () => ({
      status: 200,
      body: { lines: [{ service: "db", stream: "stdout", text: "ok", secret: "x" }, { text: 1 }, null] },
    });
    const res = await logs();
    expect(await res.json()).toEqual({ ref, lines: [{ service: "db", stream: "stdout", text: "ok" }] });
  });

  it.each([
    ["?tail=0", /tail/],
    ["?tail=1001", /tail/],
    ["?tail=abc", /tail/],
    ["?tail=-1", /tail/],
    ["?service=..%2F", /service/],
    ["?service=", /service/],
  ])("400 for %s, nothing sent", async (qs, message) => {
    const res = await logs(qs);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
    expect(rpcs).toHaveLength(0);
  });

  it("security: no token 401, another tenant 404, unknown or malformed ref 404; nothing sent", async () => {
    expect((await logs("", null)).status).toBe(401);
    const stranger = await signUpAndLogin(t);
    expect((await logs("", stranger)).status).toBe(404);
    expect((await t.request(`/platform/projects/abcdefghijklmnopqrst/logs`, { token: owner.token })).status).toBe(404);
    expect((await t.request(`/platform/projects/NOT_A_REF/logs`, { token: owner.token })).status).toBe(404);
    expect(rpcs).toHaveLength(0);
  });

  it("an offline host answers 503", async () => {
    conn.session.closed();
    const res = await logs();
    expect(res.status).toBe(503);
    expect(((await res.json()) as { message: string }).message).toMatch(/host is offline/);
  });

  it("agent failures map to clear errors", async () => {
    answer = () => ({ code: "refused", error: "this host does not run project" });
    expect((await logs()).status).toBe(503);
    answer = () => ({ code: "timeout", error: "slow" });
    expect((await logs()).status).toBe(504);
    answer = () => ({ status: 200, body: "nope" });
    expect((await logs()).status).toBe(502);
  });
});
