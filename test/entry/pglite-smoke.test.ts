import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultMigrationsFolder } from "../../control-plane/src/db/migrations.js";
import { migratePglite, openPglite } from "../../control-plane/src/db/pglite.js";
import { signUpAndLogin, type TestUser } from "../../control-plane/src/test-support/factories.js";
import { buildTestApp, type TestApp } from "../../control-plane/src/test-support/harness.js";

/**
 * The embedded database in process: the real migrations on PGlite and the main flows through
 * the app, so a query that only works on server PostgreSQL shows up here.
 */

let dataDir: string;
let t: TestApp;
let user: TestUser;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "supamanager-pglite-"));
  const database = await openPglite(dataDir);
  await migratePglite(database, defaultMigrationsFolder());
  t = await buildTestApp(database, {}, () => database.close());
  user = await signUpAndLogin(t);
}, 60_000);
afterAll(async () => {
  await t?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("PGlite smoke", () => {
  it("answers /ready through the PGlite driver", async () => {
    expect(t.deps.database.driver).toBe("pglite");
    const res = await t.request("/ready");
    expect(res.status).toBe(200);
  });

  it("signs up, logs in and reads the profile", async () => {
    const res = await t.request("/platform/profile", { token: user.token });
    expect(res.status).toBe(200);
    const profile = (await res.json()) as { primary_email: string; gotrue_id: string; disabled_features: unknown };
    expect(profile.primary_email).toBe(user.email);
    expect(profile.gotrue_id).toBe(user.userId);
    expect(profile.disabled_features).toEqual(expect.any(Array));
  });

  it("refreshes a session (refresh-token rotation runs on PGlite)", async () => {
    const res = await t.request("/auth/v1/token?grant_type=refresh_token", {
      method: "POST",
      json: { refresh_token: user.refreshToken },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { refresh_token: string };
    expect(body.refresh_token).not.toBe(user.refreshToken);
  });

  it("creates an organization and lists it with the creator's permissions", async () => {
    const created = await t.request("/platform/organizations", {
      method: "POST",
      token: user.token,
      json: { name: "PGlite Org", tier: "tier_free" },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const org = (await created.json()) as { id: number; slug: string; name: string };
    expect(org).toMatchObject({ id: expect.any(Number), slug: expect.any(String), name: "PGlite Org" });

    const list = await t.request("/platform/organizations", { token: user.token });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { slug: string }[]).map((o) => o.slug)).toContain(org.slug);

    const perms = await t.request("/platform/profile/permissions", { token: user.token });
    expect(perms.status).toBe(200);
    const rows = (await perms.json()) as { organization_slug: string }[];
    expect(rows.some((r) => r.organization_slug === org.slug)).toBe(true);
  });
});
