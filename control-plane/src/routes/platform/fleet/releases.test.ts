import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projects } from "../../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, GiB } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createOrg, TEST_DB_PASS, type TestOrg } from "../../../test-support/projects-factory.js";

let t: TestApp;
let admin: TestUser;
let user: TestUser;
let org: TestOrg;

// Without SUPAMANAGER_RELEASE the control plane's default applies: the v0.8 release.
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "supabase-v0.8.2" });
  admin = await signUpAndLogin(t);
  user = await signUpAndLogin(t);
  org = await createOrg(t, admin);
  await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 64 * GiB });
});
afterEach(async () => {
  await t.close();
});

const create = (json: Record<string, unknown>) =>
  t.request("/platform/projects", {
    method: "POST",
    token: admin.token,
    json: { name: "P", organization_slug: org.slug, db_pass: TEST_DB_PASS, ...json },
  });
const row = async (ref: string) =>
  (await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref)))[0] as typeof projects.$inferSelect;

describe("GET /platform/fleet/releases", () => {
  it("lists every release: upstream tag, parts, minimum size, default (instance admin only)", async () => {
    const res = await t.request("/platform/fleet/releases", { token: admin.token });
    expect(res.status).toBe(200);
    const list = (await res.json()) as Record<string, unknown>[];
    const byName = Object.fromEntries(list.map((r) => [r.name, r]));
    expect(byName["supabase-v0.8.2"]).toMatchObject({
      upstream: "supabase/supabase self-hosted/v0.8.2",
      parts: ["logs", "realtime", "storage", "functions"],
      default_parts: ["realtime", "storage", "functions"],
      minimum_compute_size: "small",
      default: true,
    });
    expect(byName["supabase-2026.02"]).toMatchObject({ minimum_compute_size: "medium", default: false });
    expect(byName.local).toMatchObject({ parts: [], minimum_compute_size: "nano", default: false });
    expect((await t.request("/platform/fleet/releases", { token: user.token })).status).toBe(403);
  });
});

describe("creating a project on a release, with parts", () => {
  it("new projects get the default release and its default parts, sized to its minimum", async () => {
    const res = await create({});
    expect(res.status, await res.clone().text()).toBe(201);
    const p = await row(((await res.json()) as { ref: string }).ref);
    expect(p).toMatchObject({ release: "supabase-v0.8.2", computeSize: "small" });
    expect(p.parts).toEqual(["realtime", "storage", "functions"]);
  });

  it("names a release and parts; the minimum follows the parts", async () => {
    const kong = await create({ release: "supabase-2026.02", parts: [] });
    expect(kong.status, await kong.clone().text()).toBe(201);
    expect(await row(((await kong.json()) as { ref: string }).ref)).toMatchObject({
      release: "supabase-2026.02",
      parts: [],
      computeSize: "small",
    });
    const logs = await create({ release: "supabase-v0.8.2", parts: ["logs"], desired_instance_size: "small" });
    expect(logs.status).toBe(400);
    expect(((await logs.json()) as { message: string }).message).toMatch(
      /needs at least the medium compute size.*with the parts logs/,
    );
    const local = await create({ release: "local" });
    expect(await row(((await local.json()) as { ref: string }).ref)).toMatchObject({
      release: "local",
      computeSize: "nano",
    });
  });

  it("refuses an unknown release or part with 400 naming the valid ones", async () => {
    const unknown = await create({ release: "nope" });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { message: string }).message).toMatch(/known releases: .*supabase-v0.8.2/);
    const part = await create({ release: "local", parts: ["storage"] });
    expect(part.status).toBe(400);
    expect(((await part.json()) as { message: string }).message).toMatch(
      /has no part storage; its optional parts: none/,
    );
    const bad = await create({ parts: ["mail"] });
    expect(bad.status).toBe(400);
  });

  it("/v1/projects takes the release and parts too", async () => {
    const res = await t.request("/v1/projects", {
      method: "POST",
      token: admin.token,
      json: {
        name: "V1",
        organization_slug: org.slug,
        db_pass: TEST_DB_PASS,
        release: "supabase-2026.02",
        parts: ["realtime"],
      },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await row(((await res.json()) as { ref: string }).ref)).toMatchObject({
      release: "supabase-2026.02",
      parts: ["realtime"],
    });
  });
});
