import { eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { backupTargets } from "../../db/schema.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { auditActions, createTeam, json, type TeamFixture } from "../../test-support/org-fixtures.js";
import { type S3rverHandle, startS3rver } from "../../test-support/s3.js";

/**
 * Where backup targets may point (SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS): organization targets on
 * non-public addresses are refused by default, when saved and again when the control plane is about
 * to call them; the instance's target and `allow` are not restricted. s3rver on loopback is the
 * "private" storage here: reachable, with the right credentials, so only the check can stop a call.
 */

const BUCKET = "endpoint-rules";
const SECRET = "S3RVER";
const SETTING = /SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS=allow/;

let s3: S3rverHandle;
let t: TestApp | undefined;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
});
afterAll(async () => {
  await s3.stop();
});
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function open(env: Record<string, string> = {}): Promise<{ t: TestApp; team: TeamFixture }> {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", ...env });
  return { t, team: await createTeam(t) }; // the owner signs up first: instance admin
}

function body(extra: Record<string, unknown> = {}) {
  return {
    endpoint: s3.endpoint,
    bucket: BUCKET,
    prefix: "org",
    region: s3.region,
    force_path_style: true,
    access_key_id: s3.accessKeyId,
    secret_access_key: SECRET,
    ...extra,
  };
}

describe("organization targets under the default (deny)", () => {
  it("refuses loopback, cloud metadata and localhost endpoints with 400 naming the setting", async () => {
    const { t, team } = await open();
    const path = `/platform/organizations/${team.slug}/backup-targets`;
    const port = new URL(s3.endpoint).port;
    for (const [endpoint, why] of [
      [s3.endpoint, "127.0.0.1 is a loopback address"],
      ["http://169.254.169.254", "169.254.169.254 is a link-local address"],
      [`http://localhost:${port}`, "localhost always names the control plane's own machine"],
      ["http://[::ffff:192.168.0.1]:9000", "is a private address"],
    ] as const) {
      const res = await t.request(path, { method: "POST", token: team.members.owner.token, json: body({ endpoint }) });
      expect(res.status, endpoint).toBe(400);
      const { message } = await json<{ message: string }>(res);
      expect(message, endpoint).toContain(why);
      expect(message, endpoint).toMatch(SETTING);
    }
    expect(await json(await t.request(path, { token: team.members.owner.token }))).toEqual([]);
  });

  it("refuses a change to a private endpoint, and checks again right before calling the endpoint", async () => {
    const { t, team } = await open();
    const owner = team.members.owner.token;
    const path = `/platform/organizations/${team.slug}/backup-targets`;
    // AWS (no endpoint) is always allowed.
    let res = await t.request(path, { method: "POST", token: owner, json: body({ endpoint: null }) });
    expect(res.status, await res.clone().text()).toBe(201);
    const id = (await json<{ id: string }>(res)).id;

    res = await t.request(`${path}/${id}`, { method: "PATCH", token: owner, json: { endpoint: "http://[::1]:9000" } });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(SETTING);
    const [kept] = await t.deps.database.db.select().from(backupTargets).where(eq(backupTargets.id, id));
    expect(kept?.endpoint).toBeNull();

    // What a DNS answer that changed after the target was saved amounts to: the stored endpoint now
    // leads to a private address. The test connection is refused before any request is sent
    // (s3rver would accept it: the credentials are right), and the audit row records the failure.
    await t.deps.database.db.update(backupTargets).set({ endpoint: s3.endpoint }).where(eq(backupTargets.id, id));
    res = await t.request(`${path}/${id}/test`, { method: "POST", token: owner });
    expect(res.status).toBe(400);
    const { message } = await json<{ message: string }>(res);
    expect(message).toContain("127.0.0.1 is a loopback address");
    expect(message).toMatch(SETTING);
    const tests = (await auditActions(t, team.slug, owner)).filter((a) => a.action.name === "backup_target.test");
    expect(tests).toHaveLength(1);
  });
});

describe("where private endpoints are fine", () => {
  it("SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS=allow lets an organization use a loopback endpoint", async () => {
    const { t, team } = await open({ SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "allow" });
    const owner = team.members.owner.token;
    const path = `/platform/organizations/${team.slug}/backup-targets`;
    let res = await t.request(path, { method: "POST", token: owner, json: body() });
    expect(res.status, await res.clone().text()).toBe(201);
    const id = (await json<{ id: string }>(res)).id;
    res = await t.request(`${path}/${id}/test`, { method: "POST", token: owner });
    expect(res.status, await res.clone().text()).toBe(200);
    res = await t.request(`${path}/${id}`, {
      method: "PATCH",
      token: owner,
      json: { endpoint: "http://169.254.169.254" },
    });
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it("the instance admin's own target may use a loopback endpoint under the default", async () => {
    const { t, team } = await open();
    const admin = team.members.owner.token;
    let res = await t.request("/platform/backup-target", { method: "PUT", token: admin, json: body() });
    expect(res.status, await res.clone().text()).toBe(201);
    res = await t.request("/platform/backup-target/test", { method: "POST", token: admin });
    expect(res.status, await res.clone().text()).toBe(200);
    // An organization without a target of its own still sees nothing of its own.
    res = await t.request(`/platform/organizations/${team.slug}/backup-targets`, { token: admin });
    expect(await json(res)).toEqual([]);
  });
});
