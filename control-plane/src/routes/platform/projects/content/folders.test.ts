import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog } from "../../../../db/schema.js";
import type { TestUser } from "../../../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../../../test-support/harness.js";
import { createTeam, json, type TeamFixture } from "../../../../test-support/org-fixtures.js";
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

type Folder = { id: string; name: string; owner_id: number; parent_id: string | null; project_id: number };
type Listing = {
  data: { folders: Folder[]; contents: { id: string; folder_id: string | null; name: string }[] };
  cursor?: string;
};

const base = `/platform/projects/`;
const folders = () => `${base}${ref}/content/folders`;

async function mkdir(user: TestUser, body: Record<string, unknown>): Promise<Folder> {
  const res = await t.request(folders(), { method: "POST", token: user.token, json: body });
  expect(res.status, await res.clone().text()).toBe(201);
  const folder = await json<Folder>(res);
  // CreateUserContentFolderResponse: id, name, owner_id, project_id required; parent_id optional/null.
  expect(Object.keys(folder).sort()).toEqual(["id", "name", "owner_id", "parent_id", "project_id"]);
  return folder;
}

async function save(user: TestUser, overrides: Record<string, unknown> = {}) {
  const res = await t.request(`${base}${ref}/content`, {
    method: "PUT",
    token: user.token,
    json: { id: randomUUID(), name: "q", type: "sql", visibility: "user", content: { sql: "select 1" }, ...overrides },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return json<{ id: string; folder_id: string | null; visibility: string }>(res);
}

async function listing(user: TestUser, path = folders(), qs = ""): Promise<Listing> {
  const res = await t.request(`${path}${qs}`, { token: user.token });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = await json<Listing>(res);
  // GetUserContentFolderResponse: folder items carry no `content`.
  for (const c of body.data.contents) expect(c).not.toHaveProperty("content");
  return body;
}

describe("snippet folders", () => {
  it("creates nested folders, files snippets in them and lists root and folder contents", async () => {
    const dev = team.members.developer;
    const top = await mkdir(dev, { name: "Reports" });
    // Studio's code sends parentId; its typed body says parent_id. Both work.
    const child = await mkdir(dev, { name: "Weekly", parentId: top.id });
    const other = await mkdir(dev, { name: "Other", parent_id: top.id });
    expect(top).toMatchObject({ parent_id: null, project_id: projectId });
    expect(child.parent_id).toBe(top.id);
    expect(other.parent_id).toBe(top.id);

    const atRoot = await save(dev, { name: "loose" });
    const filed = await save(dev, { name: "filed", folder_id: top.id });
    const deep = await save(dev, { name: "deep", folder_id: child.id });

    const root = await listing(dev, folders(), "?type=sql&visibility=user");
    expect(root.data.folders.map((f) => f.name)).toEqual(["Reports"]);
    expect(root.data.contents.map((c) => c.id)).toEqual([atRoot.id]);

    const inTop = await listing(dev, `${folders()}/${top.id}`, "?sort_by=name");
    expect(inTop.data.folders.map((f) => f.name)).toEqual(["Other", "Weekly"]);
    expect(inTop.data.contents.map((c) => [c.id, c.folder_id])).toEqual([[filed.id, top.id]]);
    expect((await listing(dev, `${folders()}/${child.id}`)).data.contents.map((c) => c.id)).toEqual([deep.id]);
    expect(await audit("content.folder.create")).toHaveLength(3);
  });

  it("renames and moves a folder, and refuses to move it into itself or its sub-folder", async () => {
    const dev = team.members.developer;
    const a = await mkdir(dev, { name: "A" });
    const b = await mkdir(dev, { name: "B", parent_id: a.id });
    const patch = (id: string, body: unknown) =>
      t.request(`${folders()}/${id}`, { method: "PATCH", token: dev.token, json: body });

    const renamed = await patch(a.id, { name: "Alpha" });
    expect(renamed.status).toBe(200);
    expect(await json(renamed)).toMatchObject({ id: a.id, name: "Alpha", parent_id: null });
    expect((await patch(a.id, { parentId: b.id })).status).toBe(400);
    expect((await patch(a.id, { parent_id: a.id })).status).toBe(400);
    const moved = await patch(b.id, { parent_id: null });
    expect(await json(moved)).toMatchObject({ id: b.id, parent_id: null });
    expect((await patch(a.id, { parent_id: b.id })).status).toBe(200);
    expect(await audit("content.folder.update")).toHaveLength(3);
  });

  it("deleting a folder deletes its sub-folders and the snippets inside them", async () => {
    const dev = team.members.developer;
    const a = await mkdir(dev, { name: "A" });
    const b = await mkdir(dev, { name: "B", parent_id: a.id });
    const keep = await mkdir(dev, { name: "Keep" });
    const inA = await save(dev, { folder_id: a.id });
    const inB = await save(dev, { folder_id: b.id });
    const inKeep = await save(dev, { folder_id: keep.id });
    const res = await t.request(`${folders()}?ids=${a.id}`, { method: "DELETE", token: dev.token });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await json(res)).toEqual([{ id: a.id }]);
    const item = (id: string) => t.request(`${base}${ref}/content/item/${id}`, { token: dev.token });
    expect((await item(inA.id)).status).toBe(404);
    expect((await item(inB.id)).status).toBe(404);
    expect((await item(inKeep.id)).status).toBe(200);
    expect((await listing(dev)).data.folders.map((f) => f.name)).toEqual(["Keep"]);
    const [row] = await audit("content.folder.delete");
    expect(row?.details).toMatchObject({ content_deleted: expect.arrayContaining([inA.id, inB.id]) });
  });

  it("sharing a snippet takes it out of its (private) folder", async () => {
    const dev = team.members.developer;
    const f = await mkdir(dev, { name: "Mine" });
    const s = await save(dev, { folder_id: f.id });
    const shared = await save(dev, { id: s.id, visibility: "project", folder_id: f.id });
    expect(shared.folder_id).toBeNull();
    const root = await listing(team.members.read_only);
    expect(root.data.contents.map((c) => c.id)).toEqual([shared.id]);
    expect(root.data.folders).toEqual([]);
  });

  it("folders are private: other members neither see nor use them", async () => {
    const [dev, admin] = [team.members.developer, team.members.administrator];
    const f = await mkdir(dev, { name: "Private" });
    expect((await listing(admin)).data.folders).toEqual([]);
    expect((await t.request(`${folders()}/${f.id}`, { token: admin.token })).status).toBe(404);
    const patch = await t.request(`${folders()}/${f.id}`, { method: "PATCH", token: admin.token, json: { name: "x" } });
    expect(patch.status).toBe(404);
    const del = await t.request(`${folders()}?ids=${f.id}`, { method: "DELETE", token: admin.token });
    expect(del.status).toBe(404);
    // Filing a snippet into someone else's folder, or nesting under it.
    const res = await t.request(`${base}${ref}/content`, {
      method: "PUT",
      token: admin.token,
      json: { name: "q", type: "sql", visibility: "user", folder_id: f.id },
    });
    expect(res.status).toBe(404);
    const nest = await t.request(folders(), {
      method: "POST",
      token: admin.token,
      json: { name: "n", parent_id: f.id },
    });
    expect(nest.status).toBe(404);
  });

  it("read-only members keep private folders too", async () => {
    const ro = team.members.read_only;
    const f = await mkdir(ro, { name: "Mine" });
    const s = await save(ro, { folder_id: f.id });
    expect(s.folder_id).toBe(f.id);
  });

  it("pages folder contents with a cursor; sub-folders come with the first page only", async () => {
    const dev = team.members.developer;
    const f = await mkdir(dev, { name: "F" });
    await mkdir(dev, { name: "Sub", parent_id: f.id });
    for (const name of ["a", "b", "c"]) await save(dev, { name, folder_id: f.id });
    const first = await listing(dev, `${folders()}/${f.id}`, "?sort_by=name&limit=2");
    expect(first.data.folders.map((x) => x.name)).toEqual(["Sub"]);
    expect(first.data.contents.map((c) => c.name)).toEqual(["a", "b"]);
    const next = await listing(dev, `${folders()}/${f.id}`, `?sort_by=name&limit=2&cursor=${first.cursor}`);
    expect(next.data.folders).toEqual([]);
    expect(next.data.contents.map((c) => c.name)).toEqual(["c"]);
    expect(next.cursor).toBeUndefined();
  });

  const badBodies: [string, string, unknown, RegExp][] = [
    ["POST", "no name", {}, /name is required/],
    ["POST", "an empty name", { name: " " }, /must not be empty/],
    ["POST", "a parent that is not a UUID", { name: "x", parent_id: "root" }, /parent_id/],
    ["PATCH", "nothing to change", {}, /name and\/or parent_id/],
    ["PATCH", "a name too long", { name: "x".repeat(300) }, /at most 256/],
  ];
  it.each(badBodies)("%s with %s → 400", async (method, _what, body, message) => {
    const dev = team.members.developer;
    const f = await mkdir(dev, { name: "F" });
    const path = method === "POST" ? folders() : `${folders()}/${f.id}`;
    const res = await t.request(path, { method, token: dev.token, json: body });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(message);
  });

  it("an unknown parent or folder is 404", async () => {
    const dev = team.members.developer;
    const res = await t.request(folders(), {
      method: "POST",
      token: dev.token,
      json: { name: "x", parentId: randomUUID() },
    });
    expect(res.status).toBe(404);
    expect((await t.request(`${folders()}/${randomUUID()}`, { token: dev.token })).status).toBe(404);
    expect((await t.request(`${folders()}/not-a-uuid`, { token: dev.token })).status).toBe(404);
  });
});

function audit(action: string) {
  return t.deps.database.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.action, action), eq(auditLog.projectRef, ref)));
}
