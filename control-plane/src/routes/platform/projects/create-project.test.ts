import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, hosts, portReservations, projects } from "../../../db/schema.js";
import { roleCan } from "../../../services/permissions/matrix.js";
import { dbPassAad } from "../../../services/projects/model.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { ensureHost, GiB } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { addMember, createOrg, TEST_DB_PASS, type TestOrg } from "../../../test-support/projects-factory.js";

let t: TestApp;
let owner: TestUser;
let org: TestOrg;
let euHost: string;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  // Regions are the regions of enrolled hosts; eu-1's host has the most free capacity.
  await ensureHost(t, "us-1");
  euHost = await ensureHost(t, "eu-1");
  await t.deps.database.db
    .update(hosts)
    .set({ memFreeBytes: 12 * GiB, memTotalBytes: 32 * GiB })
    .where(eq(hosts.id, euHost));
});
afterEach(async () => {
  await t.close();
});

const post = (token: string | undefined, json: unknown) =>
  t.request("/platform/projects", { method: "POST", ...(token ? { token } : {}), json });

const validBody = () => ({
  name: "Shop",
  organization_slug: org.slug,
  db_pass: TEST_DB_PASS,
  cloud_provider: "AWS",
  db_region: "us-1",
});

describe("POST /platform/projects", () => {
  it("creates a COMING_UP project and answers CreateProjectResponse", async () => {
    const res = await post(owner.token, { ...validBody(), desired_instance_size: "small", postgres_engine: "15" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expectMatchesSchema("CreateProjectResponse", body);
    expect(body).toMatchObject({
      name: "Shop",
      status: "COMING_UP",
      organization_id: org.id,
      organization_slug: org.slug,
      cloud_provider: "AWS",
      region: "us-1",
      infra_compute_size: "small",
    });
    // The creator (owner) gets the legacy keys: HS256 JWTs for the new project's ref.
    for (const [key, role] of [
      [body.anon_key, "anon"],
      [body.service_key, "service_role"],
    ]) {
      expect(decodeJwt(key as string)).toMatchObject({ role, ref: body.ref, iss: "supabase" });
    }
    expect(body.ref).toMatch(/^[a-z]{20}$/);
    const ports = await t.deps.database.db
      .select()
      .from(portReservations)
      .where(eq(portReservations.projectRef, body.ref as string));
    const gateway = ports.find((p) => p.service === "gateway:gateway");
    expect(ports.map((p) => p.service).sort()).toEqual(["db:db", "gateway:gateway"]);
    expect(body.endpoint).toBe(`127.0.0.1:${gateway?.port}`);

    const [row] = await t.deps.database.db
      .select()
      .from(projects)
      .where(eq(projects.ref, body.ref as string));
    expect(row).toMatchObject({
      id: body.id,
      orgId: org.id,
      status: "COMING_UP",
      desiredState: "running",
      specVersion: 1,
      computeSize: "small",
      region: "us-1",
    });
    expect(row?.createdAt.toISOString()).toBe(body.inserted_at);
  });

  it("without a region, places on the best host anywhere; size defaults to nano and provider to AWS", async () => {
    const res = await post(owner.token, { name: "Defaults", organization_slug: org.slug, db_pass: TEST_DB_PASS });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expectMatchesSchema("CreateProjectResponse", body);
    expect(body).toMatchObject({ region: "eu-1", infra_compute_size: "nano", cloud_provider: "AWS" });
  });

  it("takes the region from a specific region_selection and echoes the cloud provider", async () => {
    const res = await post(owner.token, {
      name: "Sel",
      organization_slug: org.slug,
      db_pass: TEST_DB_PASS,
      cloud_provider: "FLY",
      region_selection: { type: "specific", code: "us-1" },
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ region: "us-1", cloud_provider: "FLY" });
  });

  it("ignores fields Studio sends that we do not use", async () => {
    const res = await post(owner.token, { ...validBody(), auth_site_url: "http://x", data_api_use_api_schema: false });
    expect(res.status).toBe(201);
  });

  it("stores db_pass only encrypted, bound to the ref, and never returns or logs it", async () => {
    const res = await post(owner.token, validBody());
    const text = await res.text();
    expect(res.status).toBe(201);
    expect(text).not.toContain(TEST_DB_PASS);
    const { ref } = JSON.parse(text) as { ref: string };

    const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
    if (!row) throw new Error("row missing");
    expect(row.dbPassEncrypted).not.toContain(TEST_DB_PASS);
    expect(row.dbPassEncrypted.startsWith("v1.")).toBe(true);
    expect(await t.deps.secretBox.decrypt(row.dbPassEncrypted, dbPassAad(ref))).toBe(TEST_DB_PASS);
    // Bound to its ref: the ciphertext does not open under another project's AAD.
    await expect(t.deps.secretBox.decrypt(row.dbPassEncrypted, dbPassAad("a".repeat(20)))).rejects.toThrow();

    for (const path of [
      `/platform/projects/${ref}`,
      "/platform/projects",
      `/platform/organizations/${org.slug}/projects`,
    ]) {
      const r = await t.request(path, { token: owner.token });
      expect(r.status).toBe(200);
      expect(await r.text()).not.toContain(TEST_DB_PASS);
    }
    const audit = await t.deps.database.db.select().from(auditLog).where(eq(auditLog.projectRef, ref));
    expect(JSON.stringify(audit)).not.toContain(TEST_DB_PASS);
    expect(t.logs.length).toBeGreaterThan(0);
    expect(t.logs.join("\n")).not.toContain(TEST_DB_PASS);
  });

  it("writes a project.create audit row with org and ref", async () => {
    const res = await post(owner.token, validBody());
    const { ref } = (await res.json()) as { ref: string };
    const rows = await t.deps.database.db.select().from(auditLog).where(eq(auditLog.action, "project.create"));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      orgId: org.id,
      projectRef: ref,
      actorId: owner.userId,
      outcome: "success",
      details: { name: "Shop", region: "us-1", cloud_provider: "AWS", compute_size: "nano" },
    });
  });

  it("gives every project its own ref", async () => {
    const a = (await (await post(owner.token, validBody())).json()) as { ref: string };
    const b = (await (await post(owner.token, validBody())).json()) as { ref: string };
    expect(a.ref).not.toBe(b.ref);
  });

  const invalid: [string, (b: Record<string, unknown>) => Record<string, unknown>, RegExp][] = [
    ["missing name", ({ name: _n, ...b }) => b, /name/],
    ["blank name", (b) => ({ ...b, name: "   " }), /name/],
    ["name too long", (b) => ({ ...b, name: "x".repeat(257) }), /name/],
    ["missing organization_slug", ({ organization_slug: _s, ...b }) => b, /organization_slug/],
    ["missing db_pass", ({ db_pass: _p, ...b }) => b, /db_pass/],
    ["short db_pass", (b) => ({ ...b, db_pass: "short7!" }), /db_pass must be at least 8/],
    ["long db_pass", (b) => ({ ...b, db_pass: "x".repeat(129) }), /db_pass must be at most 128/],
    ["db_pass with a newline", (b) => ({ ...b, db_pass: "abcd\nefgh" }), /control characters/],
    ["blank db_pass", (b) => ({ ...b, db_pass: "          " }), /blank/],
    ["db_pass with a single quote", (b) => ({ ...b, db_pass: "it's a password" }), /single quote/],
    ["unknown region", (b) => ({ ...b, db_region: "mars-1" }), /valid regions: eu-1, us-1/],
    [
      "unknown region_selection",
      (b) => ({ ...b, db_region: undefined, region_selection: { type: "specific", code: "mars-1" } }),
      /valid regions: eu-1, us-1/,
    ],
    [
      "db_region and region_selection disagreeing",
      (b) => ({ ...b, region_selection: { type: "specific", code: "eu-1" } }),
      /Only one of/,
    ],
    ["unknown cloud provider", (b) => ({ ...b, cloud_provider: "GCP" }), /cloud_provider/],
    ["compute size we do not offer", (b) => ({ ...b, desired_instance_size: "2xlarge" }), /desired_instance_size/],
    ["unsupported postgres engine", (b) => ({ ...b, postgres_engine: "17" }), /Postgres 15/],
    ["name of the wrong type", (b) => ({ ...b, name: 42 }), /name/],
  ];
  it.each(invalid)("rejects %s with 400", async (_label, mutate, message) => {
    const res = await post(owner.token, mutate(validBody()));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { message: string; code: string };
    expect(body.message).toMatch(message);
    expect(await t.deps.database.db.select().from(projects)).toHaveLength(0);
  });

  it.each([
    ["an unknown organization", "no-such-org"],
    ["someone else's organization", null],
  ])("answers 404 for %s, with the same message either way", async (_label, slug) => {
    const other = await signUpAndLogin(t);
    const target = slug ?? org.slug;
    const res = await post(other.token, { ...validBody(), organization_slug: target });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { message: string }).message).toBe(`Organization ${target} not found`);
    expect(await t.deps.database.db.select().from(projects)).toHaveLength(0);
  });

  it("places a smart region group on the best host in any region", async () => {
    const res = await post(owner.token, {
      ...validBody(),
      db_region: undefined,
      region_selection: { type: "smartGroup", code: "emea" },
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { region: string }).region).toBe("eu-1");
  });

  it("requires a session", async () => {
    expect((await post(undefined, validBody())).status).toBe(401);
    expect((await post("not-a-token", validBody())).status).toBe(401);
  });

  it.each(["administrator", "developer", "read_only"] as const)("checks the role: %s", async (role) => {
    const member = await signUpAndLogin(t);
    await addMember(t, org, member, role);
    const res = await post(member.token, validBody());
    expect(res.status).toBe(roleCan(role, "projects.create") ? 201 : 403);
  });

  it("forbids read_only members to create (403) and writes nothing", async () => {
    const member = await signUpAndLogin(t);
    await addMember(t, org, member, "read_only");
    const res = await post(member.token, validBody());
    expect(res.status).toBe(403);
    expect(await t.deps.database.db.select().from(projects)).toHaveLength(0);
    expect(await t.deps.database.db.select().from(auditLog).where(eq(auditLog.action, "project.create"))).toHaveLength(
      0,
    );
  });
});
