import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projects } from "../../../db/schema.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { ensureHost } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createOrg, TEST_DB_PASS, type TestOrg } from "../../../test-support/projects-factory.js";

/**
 * The requests Studio's new-project page makes (apps/studio ProjectCreationForm,
 * project-create-mutation, organization-available-regions-query and
 * project-creation-postgres-versions-query, February 2026), sent as Studio sends them.
 */
let t: TestApp;
let owner: TestUser;
let org: TestOrg;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await ensureHost(t, "us-east-1");
  await ensureHost(t, "lab");
});
afterEach(async () => {
  await t.close();
});

/** The body project-create-mutation builds; `undefined` fields vanish in JSON as in Studio. */
function studioBody(region: { db_region?: string; region_selection?: unknown }) {
  const body = {
    cloud_provider: "AWS",
    organization_slug: org.slug,
    name: "From the form",
    db_pass: TEST_DB_PASS,
    ...region,
    db_sql: undefined,
    auth_site_url: undefined,
    desired_instance_size: undefined, // free plan: Studio leaves the size to us
    data_api_exposed_schemas: undefined,
    data_api_use_api_schema: false,
    postgres_engine: undefined,
    release_channel: undefined,
    high_availability: false,
  };
  return JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
}

const create = (json: unknown) => t.request("/platform/projects", { method: "POST", token: owner.token, json });

describe("Studio's new-project form", () => {
  it("creates a project from the region label Studio's built-in list posts as db_region", async () => {
    const body = studioBody({ db_region: "East US (North Virginia)" });
    expectMatchesSchema("CreateProjectBody", body);
    const res = await create(body);
    expect(res.status).toBe(201);
    const project = (await res.json()) as Record<string, unknown>;
    expectMatchesSchema("CreateProjectResponse", project);
    expect(project).toMatchObject({ region: "us-east-1", status: "COMING_UP", organization_slug: org.slug });
  });

  it("offers the fleet's regions and creates from the choice the form posts as region_selection", async () => {
    const res = await t.request(
      `/platform/projects/available-regions?cloud_provider=AWS&organization_slug=${org.slug}&desired_instance_size=micro`,
      { token: owner.token },
    );
    expect(res.status).toBe(200);
    const info = (await res.json()) as {
      all: { smartGroup: { code: string; name: string }[]; specific: { code: string; name: string }[] };
      recommendations: { smartGroup: { name: string } };
    };
    expectMatchesSchema("RegionsInfo", info);
    // The fleet's own regions, under Studio's label where Studio has one.
    expect(info.all.specific.map((r) => [r.code, r.name])).toEqual([
      ["lab", "lab"],
      ["us-east-1", "East US (North Virginia)"],
    ]);
    // The form's default is the recommended group, found by name in `all` on submit.
    const group = info.all.smartGroup.find((g) => g.name === info.recommendations.smartGroup.name);
    expect(group).toBeDefined();
    const viaGroup = await create(studioBody({ region_selection: group }));
    expect(viaGroup.status).toBe(201);

    // Choosing a specific region: Studio posts the whole option object it found by its name.
    const lab = info.all.specific.find((r) => r.name === "lab");
    const body = studioBody({ region_selection: lab });
    expectMatchesSchema("CreateProjectBody", body);
    const viaSpecific = await create(body);
    expect(viaSpecific.status).toBe(201);
    expect(((await viaSpecific.json()) as { region: string }).region).toBe("lab");
  });

  it("answers a label whose region has no host with a 400 that names the fleet's regions", async () => {
    const res = await create(studioBody({ db_region: "West EU (Ireland)" }));
    expect(res.status).toBe(400);
    const { message } = (await res.json()) as { message: string };
    expect(message).toBe(
      'Region "West EU (Ireland)" (eu-west-1) has no host in this fleet; choose one of: lab, East US (North Virginia) (us-east-1)',
    );
    expect(await t.deps.database.db.select().from(projects)).toHaveLength(0);
  });

  describe("POST /platform/organizations/{slug}/available-versions", () => {
    const versions = (token: string | undefined, slug: string, json: unknown = {}) =>
      t.request(`/platform/organizations/${slug}/available-versions`, {
        method: "POST",
        ...(token ? { token } : {}),
        json,
      });

    it("answers the one Postgres every new project gets, for the body Studio posts", async () => {
      const res = await versions(owner.token, org.slug, { provider: "AWS", region: "East US (North Virginia)" });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        available_versions: [{ postgres_engine: "15", release_channel: "ga", version: "15.8.1.085" }],
      });
    });

    it("is 404 for another organization, 401 without a session, 400 for a bad provider", async () => {
      const stranger = await signUpAndLogin(t);
      expect((await versions(stranger.token, org.slug, { provider: "AWS", region: "x" })).status).toBe(404);
      expect((await versions(undefined, org.slug)).status).toBe(401);
      const bad = await versions(owner.token, org.slug, { provider: "GCP" });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { message: string }).message).toMatch(/provider must be one of/);
    });
  });
});
