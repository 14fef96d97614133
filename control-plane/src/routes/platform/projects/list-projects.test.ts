import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projects } from "../../../db/schema.js";
import { expectMatchesSchema } from "../../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import {
  addMember,
  createOrg,
  createProjectViaApi,
  seedProjects,
  type TestOrg,
} from "../../../test-support/projects-factory.js";

interface Page<P> {
  pagination: { count: number; limit: number; offset: number };
  projects: P[];
}
interface OrgItem {
  ref: string;
  name: string;
  status: string;
  databases: { identifier: string; type: string; status: string; infra_compute_size: string }[];
}
interface ListItem {
  ref: string;
  name: string;
  organization_slug: string;
  organization_id: number;
}

let t: TestApp;
let owner: TestUser;
let org: TestOrg;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner, "Acme");
});
afterEach(async () => {
  await t.close();
});

async function orgList(qs = "", user = owner, slug = org.slug): Promise<Page<OrgItem>> {
  const res = await t.request(`/platform/organizations/${slug}/projects${qs}`, { token: user.token });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = (await res.json()) as Page<OrgItem>;
  expectMatchesSchema("OrganizationProjectsResponse", body);
  return body;
}

async function allList(qs = "", user = owner): Promise<Page<ListItem>> {
  const res = await t.request(`/platform/projects${qs}`, { token: user.token, headers: { Version: "2" } });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = (await res.json()) as Page<ListItem>;
  expectMatchesSchema("ListProjectsPaginatedResponse", body);
  return body;
}

const names = (p: Page<{ name: string }>) => p.projects.map((x) => x.name);

describe("GET /platform/organizations/:slug/projects", () => {
  it("lists a created project with one PRIMARY database", async () => {
    const created = await createProjectViaApi(t, owner, org, { name: "Alpha", desired_instance_size: "micro" });
    const page = await orgList();
    expect(page.pagination).toEqual({ count: 1, limit: 100, offset: 0 });
    expect(page.projects).toEqual([
      {
        ref: created.ref,
        name: "Alpha",
        status: "COMING_UP",
        region: "local",
        cloud_provider: "AWS",
        inserted_at: created.inserted_at,
        is_branch: false,
        databases: [
          {
            identifier: created.ref,
            type: "PRIMARY",
            status: "COMING_UP",
            region: "local",
            cloud_provider: "AWS",
            infra_compute_size: "micro",
          },
        ],
      },
    ]);
  });

  it("answers an empty page (not null) for an organization without projects", async () => {
    expect(await orgList()).toEqual({ pagination: { count: 0, limit: 100, offset: 0 }, projects: [] });
  });

  it("paginates with an exact count", async () => {
    await seedProjects(
      t,
      org,
      Array.from({ length: 25 }, (_, i) => ({ name: `p-${String(i).padStart(2, "0")}` })),
    );
    const first = await orgList("?limit=10&offset=0&sort=name_asc");
    expect(first.pagination).toEqual({ count: 25, limit: 10, offset: 0 });
    expect(names(first)).toEqual(Array.from({ length: 10 }, (_, i) => `p-${String(i).padStart(2, "0")}`));
    const last = await orgList("?limit=10&offset=20&sort=name_asc");
    expect(last.pagination).toEqual({ count: 25, limit: 10, offset: 20 });
    expect(names(last)).toEqual(["p-20", "p-21", "p-22", "p-23", "p-24"]);
    const beyond = await orgList("?limit=10&offset=100");
    expect(beyond.pagination.count).toBe(25);
    expect(beyond.projects).toEqual([]);

    // Walking every page visits every project exactly once.
    const seen: string[] = [];
    for (let offset = 0; offset < 25; offset += 7) seen.push(...names(await orgList(`?limit=7&offset=${offset}`)));
    expect(new Set(seen).size).toBe(25);
    expect(seen).toHaveLength(25);
  });

  it("sorts by name (case-insensitively) and by creation time, both ways", async () => {
    const t0 = t.clock.now();
    await seedProjects(t, org, [
      { name: "bravo", createdAt: new Date(t0 + 3000) },
      { name: "Alpha", createdAt: new Date(t0 + 1000) },
      { name: "charlie", createdAt: new Date(t0 + 2000) },
    ]);
    expect(names(await orgList())).toEqual(["Alpha", "bravo", "charlie"]);
    expect(names(await orgList("?sort=name_asc"))).toEqual(["Alpha", "bravo", "charlie"]);
    expect(names(await orgList("?sort=name_desc"))).toEqual(["charlie", "bravo", "Alpha"]);
    expect(names(await orgList("?sort=created_asc"))).toEqual(["Alpha", "charlie", "bravo"]);
    expect(names(await orgList("?sort=created_desc"))).toEqual(["bravo", "charlie", "Alpha"]);
  });

  it("searches name or ref case-insensitively, with % and _ taken literally", async () => {
    const [firstRef] = await seedProjects(t, org, [
      { name: "Shop-Backend" },
      { name: "shop-front" },
      { name: "100% uptime" },
      { name: "1000 uptime" },
      { name: "snake_case" },
      { name: "snakeXcase" },
      { name: "back\\slash" },
    ]);
    // Refs are letters only, so searches with a dash or digit cannot match a ref by chance.
    expect(names(await orgList("?search=SHOP-")).sort()).toEqual(["Shop-Backend", "shop-front"]);
    expect(names(await orgList(`?search=${encodeURIComponent("0%")}`))).toEqual(["100% uptime"]);
    expect(names(await orgList("?search=e_c"))).toEqual(["snake_case"]);
    expect(names(await orgList(`?search=${encodeURIComponent("%")}`))).toEqual(["100% uptime"]);
    expect(names(await orgList("?search=_"))).toEqual(["snake_case"]);
    expect(names(await orgList(`?search=${encodeURIComponent("k\\s")}`))).toEqual(["back\\slash"]);
    expect((await orgList(`?search=${firstRef?.slice(3, 12).toUpperCase()}`)).projects.map((p) => p.ref)).toEqual([
      firstRef,
    ]);
    const page = await orgList("?search=nothing-matches");
    expect(page).toEqual({ pagination: { count: 0, limit: 100, offset: 0 }, projects: [] });
    // An empty search is no filter.
    expect((await orgList("?search=")).pagination.count).toBe(7);
  });

  it("reads a healthy project on a host gone offline as UNKNOWN, as its detail does", async () => {
    const created = await createProjectViaApi(t, owner, org, { name: "Placed" });
    await t.deps.database.db.update(projects).set({ status: "ACTIVE_HEALTHY" }).where(eq(projects.ref, created.ref));
    expect((await orgList()).projects[0]?.status).toBe("ACTIVE_HEALTHY");
    t.clock.advance(t.deps.config.fleet.hostOfflineSeconds + 1);
    const page = await orgList();
    expect(page.projects[0]?.status).toBe("UNKNOWN");
    const detail = await t.request(`/platform/projects/${created.ref}`, { token: owner.token });
    expect(((await detail.json()) as { status: string }).status).toBe("UNKNOWN");
  });

  it("filters by statuses and never lists REMOVED projects", async () => {
    await seedProjects(t, org, [
      { name: "a", status: "ACTIVE_HEALTHY" },
      { name: "b", status: "INACTIVE" },
      { name: "c", status: "COMING_UP" },
      { name: "d", status: "REMOVED" },
      { name: "e", status: "PAUSING" },
    ]);
    const all = await orgList();
    expect(names(all)).toEqual(["a", "b", "c", "e"]);
    expect(all.pagination.count).toBe(4);
    const some = await orgList("?statuses=ACTIVE_HEALTHY,INACTIVE");
    expect(names(some)).toEqual(["a", "b"]);
    expect(some.pagination.count).toBe(2);
    expect((await orgList("?statuses=REMOVED")).pagination.count).toBe(0);
    // Database statuses stay inside the narrower vocabulary Studio declares for databases.
    expect(all.projects.find((p) => p.name === "b")?.databases[0]?.status).toBe("UNKNOWN");
    expect(all.projects.find((p) => p.name === "e")?.databases[0]?.status).toBe("UNKNOWN");
  });

  it("combines search, statuses and pagination in the count", async () => {
    await seedProjects(t, org, [
      ...Array.from({ length: 6 }, (_, i) => ({ name: `api-${i}`, status: "ACTIVE_HEALTHY" })),
      ...Array.from({ length: 4 }, (_, i) => ({ name: `api-paused-${i}`, status: "INACTIVE" })),
      ...Array.from({ length: 5 }, (_, i) => ({ name: `web-${i}`, status: "ACTIVE_HEALTHY" })),
    ]);
    const page = await orgList("?search=api-&statuses=ACTIVE_HEALTHY&limit=4&offset=4");
    expect(page.pagination).toEqual({ count: 6, limit: 4, offset: 4 });
    expect(names(page)).toEqual(["api-4", "api-5"]);
  });

  it("shows only this organization's projects", async () => {
    const otherOrg = await createOrg(t, owner, "Other");
    await seedProjects(t, org, [{ name: "mine" }]);
    await seedProjects(t, otherOrg, [{ name: "theirs" }]);
    expect(names(await orgList())).toEqual(["mine"]);
    expect(names(await orgList("", owner, otherOrg.slug))).toEqual(["theirs"]);
  });

  it("lets every role read", async () => {
    await seedProjects(t, org, [{ name: "x" }]);
    for (const role of ["administrator", "developer", "read_only"] as const) {
      const member = await signUpAndLogin(t);
      await addMember(t, org, member, role);
      expect(names(await orgList("", member))).toEqual(["x"]);
    }
  });

  it("answers 404 to a non-member, an unknown slug and a malformed slug", async () => {
    await seedProjects(t, org, [{ name: "secret-name" }]);
    const stranger = await signUpAndLogin(t);
    for (const slug of [org.slug, "no-such-org", "NOT_A_SLUG!"]) {
      const res = await t.request(`/platform/organizations/${encodeURIComponent(slug)}/projects`, {
        token: stranger.token,
      });
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain("secret-name");
    }
  });

  it("requires a session", async () => {
    expect((await t.request(`/platform/organizations/${org.slug}/projects`)).status).toBe(401);
  });

  it.each([
    ["limit=0", /limit must be at least 1/],
    ["limit=1001", /limit must be at most 1000/],
    ["limit=abc", /limit must be a whole number/],
    ["limit=-5", /limit/],
    ["limit=1.5", /limit/],
    ["offset=abc", /offset must be a whole number/],
    ["offset=-1", /offset/],
    ["sort=size_asc", /sort/],
    ["statuses=ACTIVE_HEALTHY,NOPE", /statuses/],
    ["statuses=active_healthy", /statuses/],
    [`search=${"x".repeat(257)}`, /search/],
  ])("rejects ?%s with 400", async (qs, message) => {
    const res = await t.request(`/platform/organizations/${org.slug}/projects?${qs}`, { token: owner.token });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });

  it("pages through 1,000 projects", async () => {
    await seedProjects(
      t,
      org,
      Array.from({ length: 1000 }, (_, i) => ({ name: `bulk-${String(i).padStart(4, "0")}` })),
    );
    const page = await orgList("?limit=100&offset=900&sort=name_desc");
    expect(page.pagination).toEqual({ count: 1000, limit: 100, offset: 900 });
    expect(page.projects).toHaveLength(100);
    expect(page.projects[0]?.name).toBe("bulk-0099");
    expect(page.projects[99]?.name).toBe("bulk-0000");
    expect((await orgList("?limit=1000")).projects).toHaveLength(1000);
  });

  it("accepts the largest limit", async () => {
    expect((await orgList("?limit=1000")).pagination.limit).toBe(1000);
  });
});

describe("GET /platform/projects", () => {
  it("lists projects across the caller's organizations, with their slugs", async () => {
    const second = await createOrg(t, owner, "Second");
    const a = await createProjectViaApi(t, owner, org, { name: "A" });
    const b = await createProjectViaApi(t, owner, second, { name: "B" });
    const page = await allList();
    expect(page.pagination).toEqual({ count: 2, limit: 100, offset: 0 });
    expect(page.projects).toMatchObject([
      { ref: a.ref, name: "A", organization_slug: org.slug, organization_id: org.id },
      { ref: b.ref, name: "B", organization_slug: second.slug, organization_id: second.id },
    ]);
  });

  it("never shows organizations the caller does not belong to", async () => {
    const stranger = await signUpAndLogin(t);
    const theirOrg = await createOrg(t, stranger, "Theirs");
    await seedProjects(t, org, [{ name: "mine" }]);
    await seedProjects(t, theirOrg, [{ name: "theirs" }]);
    expect(names(await allList())).toEqual(["mine"]);
    expect(names(await allList("", stranger))).toEqual(["theirs"]);
    const nobody = await signUpAndLogin(t);
    expect(await allList("", nobody)).toEqual({ pagination: { count: 0, limit: 100, offset: 0 }, projects: [] });
  });

  it("applies the same filters, sort and pagination", async () => {
    const second = await createOrg(t, owner, "Second");
    await seedProjects(t, org, [
      { name: "n-1" },
      { name: "n-2", status: "INACTIVE" },
      { name: "zz_1" },
      { name: "gone", status: "REMOVED" },
    ]);
    await seedProjects(t, second, [{ name: "n-3" }, { name: "zzz1" }]);
    expect((await allList()).pagination.count).toBe(5);
    expect(names(await allList("?sort=name_desc&limit=2"))).toEqual(["zzz1", "zz_1"]);
    expect(names(await allList("?search=z_"))).toEqual(["zz_1"]);
    const filtered = await allList("?statuses=ACTIVE_HEALTHY&search=N-&limit=1&offset=1");
    expect(filtered.pagination).toEqual({ count: 2, limit: 1, offset: 1 });
    expect(names(filtered)).toEqual(["n-3"]);
  });

  it.each(["limit=0", "limit=1001", "offset=x", "statuses=BOGUS", "sort=random"])(
    "rejects ?%s with 400",
    async (qs) => {
      const res = await t.request(`/platform/projects?${qs}`, { token: owner.token });
      expect(res.status).toBe(400);
    },
  );

  it("requires a session", async () => {
    expect((await t.request("/platform/projects")).status).toBe(401);
  });
});
