import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createTeam, json, type TeamFixture } from "../../../test-support/org-fixtures.js";

/**
 * GET /platform/profile/permissions/v2, as newer Studio builds call it
 * (apps/studio/data/permissions/permissions-query-v2.ts, no query) and read it
 * (hooks/misc/useCheckPermissionsV2.ts doPermissionsCheckV2: `organizations[].slug`, `.role`,
 * `.permissions` and `.projects[].ref/.role/.permissions`; snippets need role developer and up to
 * write). The ids are Supabase's FGA permission ids (@supabase/shared-types FgaPermissions).
 */

type V2 = { organizations: { slug: string; role: string; permissions: string[]; projects: unknown[] }[] };

let t: TestApp;
let team: TeamFixture;
beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
});
afterAll(async () => {
  await t.close();
});

const v2 = async (token: string) => {
  const res = await t.request("/platform/profile/permissions/v2", { token });
  expect(res.status, await res.clone().text()).toBe(200);
  return json<V2>(res);
};

describe("GET /platform/profile/permissions/v2", () => {
  it("lists each of the caller's organizations with its role and granted ids, and no project overrides", async () => {
    const body = await v2(team.members.developer.token);
    expect(body.organizations).toHaveLength(1);
    expect(body.organizations[0]).toMatchObject({ slug: team.slug, role: "developer", projects: [] });
    // Another account's organization never appears.
    const outsider = await v2(team.outsider.token);
    expect(outsider.organizations.map((o) => o.slug)).not.toContain(team.slug);
  });

  it.each([
    [
      "owner",
      ["organization_admin_write", "members_write", "project_admin_write", "database_write", "backups_write"],
      [],
    ],
    ["administrator", ["organization_admin_write", "auth_config_write", "database_write"], []],
    [
      "developer",
      ["database_write", "edge_functions_write", "storage_write", "api_gateway_keys_read"],
      ["project_admin_write", "organization_admin_write", "members_write", "auth_config_write"],
    ],
    [
      "read_only",
      ["database_read", "project_admin_read", "project_snippets_read", "project_snippets_write"],
      ["database_write", "edge_functions_write", "api_gateway_keys_read", "edge_functions_secrets_read"],
    ],
  ] as const)("%s: what its role allows here, nothing more", async (role, granted, denied) => {
    const [org] = (await v2(team.members[role].token)).organizations;
    expect(org?.role).toBe(role);
    for (const id of granted) expect(org?.permissions, id).toContain(id);
    for (const id of denied) expect(org?.permissions, id).not.toContain(id);
    // Features SupaManager does not have are granted to nobody, so Studio hides their controls.
    for (const id of [
      "branching_production_create",
      "custom_domain_write",
      "infra_read_replicas_write",
      "database_ssl_config_write",
    ]) {
      expect(org?.permissions, id).not.toContain(id);
    }
  });

  it("needs a session", async () => {
    expect((await t.request("/platform/profile/permissions/v2")).status).toBe(401);
  });
});
