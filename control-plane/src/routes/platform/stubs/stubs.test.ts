import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppEnv } from "../../../deps.js";
import { ApiError } from "../../../errors.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { stubRoutes } from "./index.js";

let t: TestApp;
let user: TestUser;
beforeAll(async () => {
  t = await createTestApp();
  user = await signUpAndLogin(t);
});
afterAll(async () => {
  await t.close();
});

type Method = "GET" | "POST" | "PATCH";
const placeholder = { message: expect.stringContaining("placeholder"), code: "not_found" };

/** Every stub, with the exact answer docs/studio-stubs.md promises. */
const STUBS: [Method, string, number, unknown][] = [
  ["GET", "/platform/notifications", 200, []],
  ["GET", "/platform/notifications?offset=0&limit=10&status=new,seen&org_slug=x", 200, []],
  ["GET", "/platform/notifications/summary", 200, { has_critical: false, has_warning: false, unread_count: 0 }],
  ["PATCH", "/platform/notifications", 200, []],
  ["PATCH", "/platform/notifications/archive-all", 200, {}],
  ["GET", "/platform/stripe/invoices/overdue", 200, []],
  ["GET", "/platform/projects-resource-warnings", 200, []],
  ["GET", "/platform/status", 200, { is_healthy: true }],
  ["GET", "/platform/integrations", 200, []],
  ["GET", "/platform/integrations/some-org", 200, []],
  ["GET", "/platform/integrations/github/connections?organization_id=1", 200, { connections: [] }],
  [
    "GET",
    "/platform/integrations/github/authorization",
    404,
    { message: expect.stringContaining("GitHub"), code: "not_found" },
  ],
  ["GET", "/platform/integrations/github/repositories", 200, { repositories: [] }],
  ["GET", "/platform/integrations/vercel/connections/project/abcdefghijklmnopqrst", 200, []],
  ["GET", "/platform/telemetry/feature-flags", 200, {}],
  ["GET", "/platform/telemetry/feature-flags?project_ref=abcdefghijklmnopqrst", 200, {}],
  ["POST", "/platform/telemetry/event", 200, {}],
  ["POST", "/platform/telemetry/identify", 200, {}],
  ["POST", "/platform/telemetry/reset", 200, {}],
  ["POST", "/platform/telemetry/page", 200, {}],
  ["POST", "/platform/telemetry/page-leave", 200, {}],
  ["POST", "/platform/telemetry/groups/identify", 200, {}],
  ["POST", "/platform/telemetry/groups/reset", 200, {}],
  ["POST", "/platform/telemetry/feature-flags/track", 200, {}],
  ["GET", "/platform/auth/_/config", 404, placeholder],
  ["GET", "/platform/projects/_/config/storage", 404, placeholder],
];

describe("Studio stubs", () => {
  it.each(STUBS)("%s %s answers %i with the documented body", async (method, path, status, body) => {
    const res = await t.request(path, {
      method,
      token: user.token,
      ...(method === "GET" ? {} : { json: { ignored: true, event: "x" } }),
    });
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(status === 200 ? body : { ...(body as object), requestId: expect.any(String) });
  });

  const beforeSignIn = (method: Method, path: string) =>
    method === "GET" && path.startsWith("/platform/telemetry/feature-flags");

  it.each(STUBS.filter(([m, p]) => !beforeSignIn(m, p)))(
    "%s %s needs a session (401 without a token)",
    async (method, path) => {
      const res = await t.request(path, { method });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe("unauthorized");
    },
  );

  it.each(STUBS.filter(([m, p]) => beforeSignIn(m, p)))(
    "%s %s answers before sign-in too (Studio asks on the sign-in page)",
    async (method, path) => {
      const res = await t.request(path, { method });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
    },
  );

  it("rejects an invalid token on a stub", async () => {
    const res = await t.request("/platform/notifications", { token: `${user.token}x` });
    expect(res.status).toBe(401);
  });

  it("accepts a telemetry POST without a body", async () => {
    const res = await t.request("/platform/telemetry/page", { method: "POST", token: user.token });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
  });
});

describe("unsupported /platform paths", () => {
  it.each([
    ["GET", "/platform/feedback/categories"],
    ["POST", "/platform/feedback/send"],
    ["DELETE", "/platform/integrations/github/authorization"],
    ["GET", "/platform/organizations/some-org/no-such-thing"],
    ["PUT", "/platform/telemetry/event"],
    ["GET", "/platform"],
  ])("%s %s answers a JSON 404 naming the call", async (method, path) => {
    const res = await t.request(path, { method, token: user.token });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { message: string; code: string; requestId: string };
    expect(body).toEqual({
      message: `${method} ${new URL(path, "http://x").pathname} is not supported by SupaManager`,
      code: "not_found",
      requestId: expect.any(String),
    });
  });

  it("needs a session too, so it does not reveal which paths exist", async () => {
    const res = await t.request("/platform/feedback/send", { method: "POST" });
    expect(res.status).toBe(401);
  });

  it("lets routes registered before it win", async () => {
    const profile = await t.request("/platform/profile", { token: user.token });
    expect(profile.status).toBe(200);
    expect(((await profile.json()) as { primary_email: string }).primary_email).toBe(user.email);
    const permissions = await t.request("/platform/profile/permissions", { token: user.token });
    expect(permissions.status).toBe(200);
    expect(Array.isArray(await permissions.json())).toBe(true);
    const orgs = await t.request("/platform/organizations", { token: user.token });
    expect(orgs.status).toBe(200);
    expect(Array.isArray(await orgs.json())).toBe(true);
  });

  it("leaves paths outside /platform to the app's own 404", async () => {
    const res = await t.request("/nowhere", { token: user.token });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { message: string }).message).not.toContain("SupaManager");
  });
});

describe("catch-all ordering", () => {
  /** A bare app mounting the stubs first and other routes after them, as a later area might. */
  function appWithLaterRoutes() {
    const app = new Hono<AppEnv>();
    app.route("/platform", stubRoutes());
    // Middleware registered later must not make the catch-all step aside on its own.
    app.use(
      "/platform/*",
      createMiddleware<AppEnv>(async (_c, next) => {
        await next();
      }),
    );
    app.get("/platform/fleet/hosts", (c) => c.json({ hosts: [] }));
    app.all("/platform/fleet/echo", (c) => c.json({ method: c.req.method }));
    app.route(
      "/platform/later",
      new Hono<AppEnv>().get("/", (c) => c.json({ later: true })),
    );
    app.onError((err, c) =>
      err instanceof ApiError
        ? c.json({ message: err.message, code: err.code }, 404)
        : c.json({ message: "boom" }, 500),
    );
    return app;
  }

  it.each([
    ["GET", "/platform/fleet/hosts", 200, { hosts: [] }],
    ["DELETE", "/platform/fleet/echo", 200, { method: "DELETE" }],
    ["GET", "/platform/later", 200, { later: true }],
    ["GET", "/platform/notifications", 200, []],
  ])("a route registered after the stubs still answers %s %s", async (method, path, status, body) => {
    const res = await appWithLaterRoutes().request(path, { method });
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual(body);
  });

  it.each([
    ["POST", "/platform/fleet/hosts"],
    ["GET", "/platform/fleet/nothing"],
  ])("still answers 404 for %s %s when nothing later matches", async (method, path) => {
    const res = await appWithLaterRoutes().request(path, { method });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      message: `${method} ${path} is not supported by SupaManager`,
      code: "not_found",
    });
  });
});
