import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, userContent } from "../../../../db/schema.js";
import { expectMatchesSchema } from "../../../../test-support/contracts.js";
import { signUpAndLogin, type TestUser } from "../../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../../test-support/harness.js";
import { addMember, createOrg, createTeam, json, type TeamFixture } from "../../../../test-support/org-fixtures.js";
import { createProjectViaApi } from "../../../../test-support/projects-factory.js";

let t: TestApp;
let team: TeamFixture;
let ref: string;
let projectId: number;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  const project = await createProjectViaApi(t, team.members.owner, team);
  ref = project.ref;
  projectId = project.id;
});
afterEach(async () => {
  await t.close();
});

type Item = {
  id: string;
  name: string;
  owner_id: number;
  project_id: number;
  visibility: string;
  type: string;
  favorite: boolean;
  folder_id: string | null;
  description: string;
  content: Record<string, unknown>;
  owner: { id: number; username: string };
  updated_by: { id: number; username: string };
  last_updated_by?: number;
  inserted_at: string;
};
type List = { data: Item[]; cursor?: string };

const base = (r = ref) => `/platform/projects/${r}/content`;

/** A body as Studio's SQL editor sends it (checked against UpsertContentBody). */
function snippet(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const body = {
    id: randomUUID(),
    name: "Untitled query",
    description: "",
    type: "sql",
    visibility: "user",
    project_id: projectId,
    content: { schema_version: "1.0", content_id: "", sql: "select 1;", favorite: false },
    ...overrides,
  };
  return body;
}

const put = (user: TestUser, body: unknown, r = ref) =>
  t.request(base(r), { method: "PUT", token: user.token, json: body });

async function save(user: TestUser, overrides: Record<string, unknown> = {}): Promise<Item> {
  const body = snippet(overrides);
  expectMatchesSchema("UpsertContentBody", body);
  const res = await put(user, body);
  expect(res.status, await res.clone().text()).toBe(200);
  return json<Item>(res);
}

async function list(user: TestUser, qs = ""): Promise<List> {
  const res = await t.request(`${base()}${qs}`, { token: user.token });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = await json<List>(res);
  expectMatchesSchema("GetUserContentResponse", body);
  return body;
}

const item = (user: TestUser, id: string, r = ref) => t.request(`${base(r)}/item/${id}`, { token: user.token });
const del = (user: TestUser, ids: string[]) =>
  t.request(`${base()}?${ids.map((id) => `ids=${id}`).join("&")}`, { method: "DELETE", token: user.token });

const audits = (action: string) =>
  t.deps.database.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.action, action), eq(auditLog.projectRef, ref)));

describe("saved snippets: happy path", () => {
  it("creates, lists, reads, updates and deletes a snippet, with an audit row per change", async () => {
    const dev = team.members.developer;
    const created = await save(dev, { name: "Top users" });
    expectMatchesSchema("GetUserContentResponse", { data: [created] });
    expect(created).toMatchObject({ name: "Top users", type: "sql", visibility: "user", favorite: false });
    expect(created.project_id).toBe(projectId);
    expect(created.owner.id).toBe(created.owner_id);
    expect(created.updated_by.id).toBe(created.owner_id);

    expect((await list(dev)).data.map((i) => i.id)).toEqual([created.id]);
    const one = await item(dev, created.id);
    expect(one.status).toBe(200);
    expect((await json<Item>(one)).content).toMatchObject({ sql: "select 1;" });

    const updated = await save(dev, {
      id: created.id,
      name: "Top users (v2)",
      content: { schema_version: "1.0", sql: "select 2;" },
      favorite: true,
    });
    expect(updated).toMatchObject({ id: created.id, name: "Top users (v2)", favorite: true });
    expect(updated.content).toEqual({ schema_version: "1.0", sql: "select 2;" });
    // `favorite` left out → unchanged; `content` left out → unchanged.
    const renamed = await save(dev, { id: created.id, name: "Renamed", content: undefined, favorite: undefined });
    expect(renamed.favorite).toBe(true);
    expect(renamed.content).toEqual({ schema_version: "1.0", sql: "select 2;" });

    const gone = await del(dev, [created.id]);
    expect(gone.status).toBe(200);
    expect(await json(gone)).toEqual([{ id: created.id }]);
    expect((await item(dev, created.id)).status).toBe(404);
    expect((await list(dev)).data).toEqual([]);

    expect(await audits("content.create")).toHaveLength(1);
    expect(await audits("content.update")).toHaveLength(2);
    const [deleted] = await audits("content.delete");
    expect(deleted?.target).toBe(created.id);
    // The snippet's SQL never lands in the audit trail.
    expect(JSON.stringify(await t.deps.database.db.select().from(auditLog))).not.toContain("select 2;");
  });

  it("generates an id when the body has none, and reports / log queries are stored the same way", async () => {
    const owner = team.members.owner;
    const noId = await save(owner, { id: undefined });
    expect(noId.id).toMatch(/^[0-9a-f-]{36}$/);
    const report = await save(owner, { type: "report", name: "Weekly", content: { layout: [] } });
    const logs = await save(owner, { type: "log_sql", name: "Errors", content: { sql: "select * from logs" } });
    expect((await list(owner, "?type=report")).data.map((i) => i.id)).toEqual([report.id]);
    expect((await list(owner, "?type=log_sql")).data.map((i) => i.id)).toEqual([logs.id]);
  });

  it("ignores a body's owner_id: the creator owns the item", async () => {
    const dev = team.members.developer;
    const admin = await save(team.members.administrator, { visibility: "project" });
    const mine = await save(dev, { owner_id: admin.owner_id });
    expect(mine.owner_id).not.toBe(admin.owner_id);
  });

  it("counts private, shared and favorite items the caller can see", async () => {
    const dev = team.members.developer;
    await save(dev, { favorite: true });
    await save(dev, { visibility: "project" });
    await save(team.members.administrator, { visibility: "project", favorite: true });
    await save(team.members.administrator); // private to the administrator: not counted for dev
    const res = await t.request(`${base()}/count?type=sql`, { token: dev.token });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ count: 3, favorites: 2, private: 1, shared: 2 });
    const named = await t.request(`${base()}/count?type=report`, { token: dev.token });
    expect(await json(named)).toEqual({ count: 0, favorites: 0, private: 0, shared: 0 });
  });
});

describe("filters and pagination", () => {
  it("pages with an opaque cursor in a stable order, newest first by default", async () => {
    const dev = team.members.developer;
    const made: Item[] = [];
    for (const name of ["delta", "alpha", "echo", "charlie", "bravo"]) {
      made.push(await save(dev, { name }));
      t.clock.advance(1);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await list(dev, `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((i) => i.name));
      cursor = page.cursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(["bravo", "charlie", "echo", "alpha", "delta"]);

    const byName = await list(dev, "?sort_by=name&limit=3");
    expect(byName.data.map((i) => i.name)).toEqual(["alpha", "bravo", "charlie"]);
    const rest = await list(dev, `?sort_by=name&limit=3&cursor=${encodeURIComponent(byName.cursor ?? "")}`);
    expect(rest.data.map((i) => i.name)).toEqual(["delta", "echo"]);
    expect(rest.cursor).toBeUndefined();

    const desc = await list(dev, "?sort_by=name&sort_order=desc&limit=1");
    expect(desc.data.map((i) => i.name)).toEqual(["echo"]);
    // A cursor only continues the order it came from.
    const mixed = await t.request(`${base()}?sort_by=inserted_at&cursor=${encodeURIComponent(desc.cursor ?? "")}`, {
      token: dev.token,
    });
    expect(mixed.status).toBe(400);
  });

  it("filters by name (wildcards are literal), visibility and favorite", async () => {
    const dev = team.members.developer;
    const a = await save(dev, { name: "100% of users" });
    await save(dev, { name: "1000 users" });
    const shared = await save(dev, { name: "shared one", visibility: "project", favorite: true });
    expect((await list(dev, `?name=${encodeURIComponent("100%")}`)).data.map((i) => i.id)).toEqual([a.id]);
    expect((await list(dev, "?name=USERS")).data).toHaveLength(2);
    expect((await list(dev, "?visibility=project")).data.map((i) => i.id)).toEqual([shared.id]);
    expect((await list(dev, "?visibility=user,project")).data).toHaveLength(3);
    expect((await list(dev, "?favorite=true")).data.map((i) => i.id)).toEqual([shared.id]);
    expect((await list(dev, "?favorite=false")).data).toHaveLength(2);
  });
});

describe("visibility between members", () => {
  it("a private snippet exists only for its owner", async () => {
    const [dev, admin] = [team.members.developer, team.members.administrator];
    const secret = await save(dev, { name: "mine" });
    for (const other of [admin, team.members.owner, team.members.read_only]) {
      expect((await list(other)).data.map((i) => i.id)).not.toContain(secret.id);
      expect((await item(other, secret.id)).status).toBe(404);
      expect((await del(other, [secret.id])).status).toBe(404);
      // Upserting with its id does not take it over.
      expect((await put(other, snippet({ id: secret.id, name: "hijack" }))).status).toBe(404);
    }
    const still = await json<Item>(await item(dev, secret.id));
    expect(still.name).toBe("mine");
    expect(await audits("content.update")).toHaveLength(0);
  });

  it("a shared snippet is read by every member; only its owner and Owners/Administrators change it", async () => {
    const dev = team.members.developer;
    const dev2 = await signUpAndLogin(t);
    await addMember(t, team, dev2, "developer");
    const shared = await save(dev, { name: "team query", visibility: "project" });

    for (const member of [dev2, team.members.read_only, team.members.administrator, team.members.owner]) {
      expect((await list(member)).data.map((i) => i.id)).toContain(shared.id);
      expect((await item(member, shared.id)).status).toBe(200);
    }
    // Another developer and a read-only member may not change or delete it.
    for (const member of [dev2, team.members.read_only]) {
      const res = await put(member, snippet({ id: shared.id, name: "changed", visibility: "project" }));
      expect(res.status, await res.clone().text()).toBe(403);
      expect((await del(member, [shared.id])).status).toBe(403);
    }
    // An administrator may; the owner stays the author, updated_by names the editor.
    const edited = await save(team.members.administrator, { id: shared.id, name: "tidied", visibility: "project" });
    expect(edited.owner_id).toBe(shared.owner_id);
    expect(edited.updated_by.id).not.toBe(shared.owner_id);
    expect(edited.last_updated_by).toBe(edited.updated_by.id);
    // Its owner may too, and may unshare it.
    const unshared = await save(dev, { id: shared.id, name: "tidied", visibility: "user" });
    expect(unshared.visibility).toBe("user");
    expect((await item(dev2, shared.id)).status).toBe(404);
  });

  it("the organization Owner deletes someone's shared snippet; bulk delete is all or nothing", async () => {
    const dev = team.members.developer;
    const shared = await save(dev, { visibility: "project" });
    const own = await save(team.members.read_only);
    // read_only: its own private one is fine, the shared one is not → nothing is deleted.
    expect((await del(team.members.read_only, [own.id, shared.id])).status).toBe(403);
    expect((await item(team.members.read_only, own.id)).status).toBe(200);
    expect(await audits("content.delete")).toHaveLength(0);
    const res = await del(team.members.owner, [shared.id]);
    expect(res.status).toBe(200);
    expect((await item(dev, shared.id)).status).toBe(404);
  });
});

describe("role rules", () => {
  it("read-only members keep private SQL snippets but cannot share or save other types", async () => {
    const ro = team.members.read_only;
    const mine = await save(ro, { name: "my select" });
    expect((await save(ro, { id: mine.id, name: "my select v2" })).name).toBe("my select v2");
    const cases: [string, Record<string, unknown>][] = [
      ["share a new snippet", { visibility: "project" }],
      ["share an existing one", { id: mine.id, visibility: "project" }],
      ["save a report", { type: "report", content: {} }],
      ["save a log query", { type: "log_sql" }],
    ];
    for (const [what, overrides] of cases) {
      const res = await put(ro, snippet(overrides));
      expect(res.status, what).toBe(403);
      expect((await json<{ message: string }>(res)).message).toMatch(/Read-only/);
    }
    expect((await del(ro, [mine.id])).status).toBe(200);
  });

  it.each(["developer", "administrator", "owner"] as const)("%s may share a snippet", async (role) => {
    const shared = await save(team.members[role], { visibility: "project" });
    expect(shared.visibility).toBe("project");
  });
});

describe("tenant isolation", () => {
  it("another tenant's project is a 404 on every content call, whatever the input", async () => {
    const outsider = team.outsider;
    const calls: [string, string, unknown?][] = [
      ["GET", base()],
      ["GET", `${base()}/count`],
      ["GET", `${base()}/item/${randomUUID()}`],
      ["PUT", base(), { nonsense: true }],
      ["DELETE", base()],
      ["GET", `${base()}/folders`],
      ["POST", `${base()}/folders`, {}],
      ["DELETE", `${base()}/folders?ids=bad`],
      ["GET", `${base()}/folders/${randomUUID()}`],
      ["PATCH", `${base()}/folders/${randomUUID()}`, {}],
    ];
    for (const [method, path, body] of calls) {
      const res = await t.request(path, { method, token: outsider.token, ...(body ? { json: body } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
  });

  it("an item id from another project is not found there, and cannot be overwritten from there", async () => {
    const other = await createOrg(t, team.outsider, "Elsewhere");
    const theirs = await createProjectViaApi(t, team.outsider, other);
    const shared = await save(team.members.owner, { visibility: "project" });
    expect((await item(team.outsider, shared.id, theirs.ref)).status).toBe(404);
    const res = await put(team.outsider, snippet({ id: shared.id, project_id: theirs.id }), theirs.ref);
    expect(res.status).toBe(404);
    // Nor does a member see it through a different project of the same organization.
    const second = await createProjectViaApi(t, team.members.owner, team, { name: "Second" });
    expect((await item(team.members.owner, shared.id, second.ref)).status).toBe(404);
    const rows = await t.deps.database.db.select().from(userContent).where(eq(userContent.id, shared.id));
    expect(rows.map((r) => r.projectId)).toEqual([projectId]);
  });

  it("needs a session", async () => {
    expect((await t.request(base())).status).toBe(401);
  });
});

describe("validation", () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ["no name", { name: undefined }, /body\.name/],
    ["empty name", { name: "   " }, /name must not be empty/],
    ["long name", { name: "x".repeat(257) }, /at most 256/],
    ["unknown type", { type: "notebook" }, /type must be/],
    ["org visibility", { visibility: "org" }, /visibility must be user or project/],
    ["public visibility", { visibility: "public" }, /visibility/],
    ["id not a uuid", { id: "snippet-1" }, /id must be a UUID/],
    ["content not an object", { content: "select 1" }, /content must be an object/],
    ["content.sql not a string", { content: { sql: 42 } }, /content\.sql must be a string/],
    ["favorite not a boolean", { favorite: "yes" }, /favorite must be a boolean/],
    ["folder_id not a uuid", { folder_id: "root" }, /folder_id/],
    ["project_id of another project", { project_id: 999_999 }, /project_id/],
    ["project_id not a number", { project_id: "1" }, /project_id must be a number/],
  ];
  it.each(bad)("PUT with %s → 400 naming the field", async (_name, overrides, message) => {
    const res = await put(team.members.developer, snippet(overrides));
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(message);
  });

  it("PUT with a body that is not JSON → 400", async () => {
    const res = await t.request(base(), {
      method: "PUT",
      token: team.members.developer.token,
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(res.status).toBe(400);
  });

  it("the type of an existing item cannot change", async () => {
    const s = await save(team.members.developer);
    const res = await put(team.members.developer, snippet({ id: s.id, type: "report" }));
    expect(res.status).toBe(400);
  });

  const badQueries: [string, RegExp][] = [
    ["?limit=0", /limit must be at least 1/],
    ["?limit=many", /limit must be a whole number/],
    ["?limit=1001", /at most 1000/],
    ["?sort_by=size", /sort_by/],
    ["?sort_order=up", /sort_order/],
    ["?type=notebook", /type/],
    ["?visibility=everyone", /visibility/],
    ["?favorite=maybe", /favorite/],
    ["?cursor=not-a-cursor", /cursor/],
  ];
  it.each(badQueries)("GET %s → 400", async (qs, message) => {
    const res = await t.request(`${base()}${qs}`, { token: team.members.developer.token });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(message);
  });

  it.each([
    ["no ids", "", /ids is required/],
    ["an id that is not a UUID", "?ids=abc", /UUID/],
    ["201 ids", `?ids=${Array.from({ length: 201 }, () => randomUUID()).join(",")}`, /at most 200/],
  ])("DELETE with %s → 400", async (_label, qs, message) => {
    const res = await t.request(`${base()}${qs}`, { method: "DELETE", token: team.members.developer.token });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(message);
  });

  it("a malformed item id is simply not found", async () => {
    expect((await item(team.members.developer, "1")).status).toBe(404);
  });

  it("an unknown id in a bulk delete is 404 and deletes nothing", async () => {
    const s = await save(team.members.developer);
    expect((await del(team.members.developer, [s.id, randomUUID()])).status).toBe(404);
    expect((await item(team.members.developer, s.id)).status).toBe(200);
  });
});

describe("content size", () => {
  it("a body over the request limit is refused with 413 before it is parsed", async () => {
    const big = { sql: "x".repeat(1024 * 1024 + 10) };
    const res = await put(team.members.developer, snippet({ content: big }));
    expect(res.status).toBe(413);
  });

  it("content over 1 MiB is refused with 400 even when the body limit is higher", async () => {
    const roomy = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_MAX_BODY_BYTES: "4194304" });
    try {
      const owner = await signUpAndLogin(roomy);
      const org = await createOrg(roomy, owner);
      const p = await createProjectViaApi(roomy, owner, org);
      const send = (sql: string) =>
        roomy.request(`/platform/projects/${p.ref}/content`, {
          method: "PUT",
          token: owner.token,
          json: { name: "big", type: "sql", visibility: "user", content: { sql } },
        });
      const over = await send("x".repeat(1024 * 1024));
      expect(over.status).toBe(400);
      expect((await json<{ message: string }>(over)).message).toMatch(/at most 1048576 bytes/);
      expect((await send("x".repeat(1024 * 1024 - 100))).status).toBe(200);
    } finally {
      await roomy.close();
    }
  });
});
