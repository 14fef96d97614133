import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { createTeam, type TeamFixture } from "../../../test-support/org-fixtures.js";
import { createProjectViaApi } from "../../../test-support/projects-factory.js";

/**
 * Studio's Data API settings page saving (apps/studio/data/config/
 * project-postgrest-config-update-mutation.ts): `PATCH /platform/projects/{ref}/config/postgrest`
 * with `{db_schema, max_rows, db_extra_search_path}` and `db_pool` only when the form has one; on
 * an error Studio toasts "Failed to update Postgrest config: <message>". Every release runs
 * PostgREST with fixed settings, so the form sent back unchanged passes and a change is refused
 * by name (nothing is stored, nothing claimed).
 */

let t: TestApp;
let team: TeamFixture;
let ref: string;

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  ref = (await createProjectViaApi(t, team.members.owner, team)).ref;
});
afterAll(async () => {
  await t.close();
});

type Role = keyof TeamFixture["members"];
const patch = (body: unknown, role: Role | "outsider" = "owner") =>
  t.request(`/platform/projects/${ref}/config/postgrest`, {
    method: "PATCH",
    token: role === "outsider" ? team.outsider.token : team.members[role].token,
    json: body,
  });

/** The form's values as GET gave them (Studio's payload when nothing was changed). */
const UNCHANGED = {
  db_schema: "public,storage,graphql_public",
  max_rows: 1000,
  db_extra_search_path: "public,extensions",
};

describe("PATCH /platform/projects/{ref}/config/postgrest", () => {
  it("the form sent back unchanged passes and answers UpdatePostgrestConfigResponse", async () => {
    const before = (await (
      await t.request(`/platform/projects/${ref}/config/postgrest`, { token: team.members.owner.token })
    ).json()) as Record<string, unknown>;
    const res = await patch({
      db_schema: before.db_schema,
      max_rows: before.max_rows,
      db_extra_search_path: before.db_extra_search_path,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ ...UNCHANGED, db_pool: null });
    // Spacing inside the lists is not a change.
    expect((await patch({ ...UNCHANGED, db_schema: "public, storage, graphql_public" })).status).toBe(200);
  });

  it("a change is refused with 400 naming the fields, and GET still states the release's settings", async () => {
    const res = await patch({ ...UNCHANGED, db_schema: "public,api", max_rows: 500, db_pool: 20 });
    expect(res.status).toBe(400);
    const { message } = (await res.json()) as { message: string };
    expect(message).toMatch(/^Not changed: db_schema, max_rows, db_pool are not managed by SupaManager yet\./);
    expect(message).toMatch(/exposed schemas public,storage,graphql_public/);
    const get = await t.request(`/platform/projects/${ref}/config/postgrest`, { token: team.members.owner.token });
    expect(await get.json()).toMatchObject({ db_schema: UNCHANGED.db_schema, max_rows: 1000 });
  });

  it("a reordered schema list is a change (the first schema is PostgREST's default)", async () => {
    const res = await patch({ ...UNCHANGED, db_schema: "storage,public,graphql_public" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/^Not changed: db_schema is not/);
  });

  it("values out of range, wrong types and unknown fields are 400 naming the field", async () => {
    for (const [body, field] of [
      [{ max_rows: -1 }, "body.max_rows"],
      [{ max_rows: 1_000_001 }, "body.max_rows"],
      [{ db_pool: 1001 }, "body.db_pool"],
      [{ db_schema: 5 }, "body.db_schema"],
      [{ jwt_secret: "x" }, "body"],
    ] as const) {
      const res = await patch(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { message: string }).message).toContain(field);
    }
  });

  it("developer and read_only members get 403, another organization's member 404, before the body is read", async () => {
    for (const [role, status] of [
      ["developer", 403],
      ["read_only", 403],
      ["outsider", 404],
    ] as const) {
      const res = await patch({ nope: 1 }, role);
      expect(res.status, role).toBe(status);
    }
    expect((await patch(UNCHANGED, "administrator")).status).toBe(200);
    expect(
      (await t.request(`/platform/projects/${ref}/config/postgrest`, { method: "PATCH", json: UNCHANGED })).status,
    ).toBe(401);
  });
});
