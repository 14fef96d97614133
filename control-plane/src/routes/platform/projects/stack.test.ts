import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { signUpAndLogin, type TestUser } from "../../../test-support/factories.js";
import { enrollHost, GiB } from "../../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../../test-support/harness.js";
import { addMember, createOrg, TEST_DB_PASS, type TestOrg } from "../../../test-support/projects-factory.js";

/** GET /platform/projects/:ref/stack: what a project runs, from its release and chosen parts. */

let t: TestApp;
let owner: TestUser;
let readOnly: TestUser;
let stranger: TestUser;
let org: TestOrg;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_RELEASE: "supabase-v0.8.2" });
  owner = await signUpAndLogin(t);
  readOnly = await signUpAndLogin(t);
  stranger = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  await addMember(t, org, readOnly, "read_only");
  await enrollHost(t, owner, { region: "eu-1", memTotalBytes: 64 * GiB });
});
afterEach(async () => {
  await t.close();
});

async function create(json: Record<string, unknown>): Promise<string> {
  const res = await t.request("/platform/projects", {
    method: "POST",
    token: owner.token,
    json: { name: "P", organization_slug: org.slug, db_pass: TEST_DB_PASS, ...json },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { ref: string }).ref;
}

const stack = (ref: string, user: TestUser | null = owner) =>
  t.request(`/platform/projects/${ref}/stack`, user ? { token: user.token } : {});

describe("GET /platform/projects/:ref/stack", () => {
  it("local: only the database and the gateway, no parts, the gateway's URL", async () => {
    const ref = await create({ release: "local" });
    const res = await stack(ref);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      ref,
      release: "local",
      parts: [],
      services: {
        db: true,
        gateway: true,
        auth: false,
        rest: false,
        storage: false,
        realtime: false,
        functions: false,
        pooler: false,
      },
    });
    expect(body.api_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("a part the project left out does not run; the release's services without a part do", async () => {
    const ref = await create({ release: "supabase-v0.8.2", parts: ["storage"], desired_instance_size: "medium" });
    const body = (await (await stack(ref)).json()) as { parts: string[]; services: Record<string, boolean> };
    expect(body.parts).toEqual(["storage"]);
    expect(body.services).toEqual({
      db: true,
      gateway: true,
      auth: true,
      rest: true,
      storage: true,
      realtime: false,
      functions: false,
      pooler: true,
    });
  });

  it("api_url is the project's public URL: under the projects domain when there is one", async () => {
    await t.close();
    t = await createTestApp({
      SUPAMANAGER_ALLOW_SIGNUP: "true",
      SUPAMANAGER_RELEASE: "local",
      SUPAMANAGER_PROJECTS_DOMAIN: "projects.example.test",
    });
    owner = await signUpAndLogin(t);
    org = await createOrg(t, owner);
    await enrollHost(t, owner, { region: "eu-1", memTotalBytes: 64 * GiB });
    const ref = await create({});
    const body = (await (await stack(ref)).json()) as { api_url: string };
    expect(body.api_url).toBe(`https://${ref}.projects.example.test`);
  });

  it("any member may read it (read_only included); others get 404, anonymous 401", async () => {
    const ref = await create({ release: "local" });
    expect((await stack(ref, readOnly)).status).toBe(200);
    expect((await stack(ref, stranger)).status).toBe(404);
    expect((await stack(ref, null)).status).toBe(401);
    expect((await stack("not-a-ref", owner)).status).toBe(404);
  });
});
