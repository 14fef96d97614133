import { eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { backupTargets } from "../../db/schema.js";
import { signUpAndLogin } from "../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { auditActions, createTeam, json, type TeamFixture } from "../../test-support/org-fixtures.js";
import { type S3rverHandle, startS3rver } from "../../test-support/s3.js";

/** Backup targets against a real S3 server (s3rver): CRUD, test-connection, roles, secrets. */

const BUCKET = "targets-test";
/** s3rver knows one key pair (S3RVER/S3RVER); the test server checks header signatures. */
const SECRET = "S3RVER";

let s3: S3rverHandle;
let t: TestApp;
let team: TeamFixture;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
});
afterAll(async () => {
  await s3.stop();
});
beforeEach(async () => {
  // s3rver listens on loopback: organization targets may use it only when private endpoints
  // are allowed (the default refusal is tested in backup-targets-endpoints.test.ts).
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "allow" });
  team = await createTeam(t); // the owner signs up first: instance admin
});
afterEach(async () => {
  await t.close();
});

function body(extra: Record<string, unknown> = {}) {
  return {
    endpoint: s3.endpoint,
    bucket: BUCKET,
    prefix: "/org-a/",
    region: s3.region,
    force_path_style: true,
    access_key_id: s3.accessKeyId,
    secret_access_key: SECRET,
    ...extra,
  };
}

const orgPath = () => `/platform/organizations/${team.slug}/backup-targets`;

describe("organization backup targets", () => {
  it("creates, lists, tests, updates and deletes a target; the secret never comes back", async () => {
    const owner = team.members.owner.token;
    let res = await t.request(orgPath(), { method: "POST", token: owner, json: body() });
    expect(res.status, await res.clone().text()).toBe(201);
    const created = await json<Record<string, unknown>>(res);
    expect(created).toMatchObject({
      scope: "organization",
      bucket: BUCKET,
      prefix: "org-a",
      force_path_style: true,
      access_key_id: "S3RVER",
      client_side_encryption: false,
    });
    expect(created).not.toHaveProperty("secret_access_key");
    const id = created.id as string;

    // Stored encrypted with an AAD naming the target.
    const [row] = await t.deps.database.db.select().from(backupTargets).where(eq(backupTargets.id, id));
    expect(row?.secretAccessKeyEncrypted).not.toContain(SECRET);
    expect(row?.encryptionKeyEncrypted).toBeNull();

    // A second one for the same organization is a conflict.
    res = await t.request(orgPath(), { method: "POST", token: owner, json: body() });
    expect(res.status).toBe(409);

    // Every member may see it (backups.read).
    res = await t.request(orgPath(), { token: team.members.read_only.token });
    expect(res.status).toBe(200);
    expect((await json<{ id: string }[]>(res)).map((x) => x.id)).toEqual([id]);

    res = await t.request(`${orgPath()}/${id}/test`, { method: "POST", token: owner });
    expect(res.status, await res.clone().text()).toBe(200);
    // The probe object is gone again.
    expect(await s3.listKeys(BUCKET, "org-a/")).toEqual([]);

    res = await t.request(`${orgPath()}/${id}`, {
      method: "PATCH",
      token: team.members.administrator.token,
      json: { client_side_encryption: true },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await json(res)).toMatchObject({ client_side_encryption: true });
    const [encrypted] = await t.deps.database.db.select().from(backupTargets).where(eq(backupTargets.id, id));
    expect(encrypted?.encryptionKeyEncrypted).toMatch(/^v1\./);
    const key = await t.deps.secretBox.decrypt(
      encrypted?.encryptionKeyEncrypted as string,
      `backup-target:${id}:encryption_key`,
    );
    expect(Buffer.from(key, "base64")).toHaveLength(32);

    // Switching encryption off and on keeps the key (older backups need it).
    for (const on of [false, true]) {
      res = await t.request(`${orgPath()}/${id}`, {
        method: "PATCH",
        token: owner,
        json: { client_side_encryption: on },
      });
      expect(res.status).toBe(200);
    }
    const [again] = await t.deps.database.db.select().from(backupTargets).where(eq(backupTargets.id, id));
    expect(again?.encryptionKeyEncrypted).toBe(encrypted?.encryptionKeyEncrypted);

    res = await t.request(`${orgPath()}/${id}`, { method: "DELETE", token: owner });
    expect(res.status).toBe(204);
    expect(await json(await t.request(orgPath(), { token: owner }))).toEqual([]);

    const actions = (await auditActions(t, team.slug, owner)).map((a) => a.action.name);
    for (const a of ["backup_target.create", "backup_target.test", "backup_target.update", "backup_target.delete"]) {
      expect(actions).toContain(a);
    }
  });

  it("answers 400 with S3's error code when the connection test fails, never the secret", async () => {
    const owner = team.members.owner.token;
    const wrongSecret = "wrong-secret-7f3a9c2e41d8b6";
    let res = await t.request(orgPath(), {
      method: "POST",
      token: owner,
      json: body({ secret_access_key: wrongSecret }),
    });
    expect(res.status).toBe(201);
    const id = (await json<{ id: string }>(res)).id;
    res = await t.request(`${orgPath()}/${id}/test`, { method: "POST", token: owner });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text).message).toMatch(/SignatureDoesNotMatch \(HTTP 403\).*secret access key is wrong/);
    expect(text).not.toContain(wrongSecret);

    // A bucket that does not exist.
    res = await t.request(`${orgPath()}/${id}`, {
      method: "PATCH",
      token: owner,
      json: { bucket: "no-such-bucket", secret_access_key: SECRET },
    });
    expect(res.status).toBe(200);
    res = await t.request(`${orgPath()}/${id}/test`, { method: "POST", token: owner });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toContain("NoSuchBucket");

    // Nothing listening at the endpoint.
    res = await t.request(`${orgPath()}/${id}`, {
      method: "PATCH",
      token: owner,
      json: { endpoint: "http://127.0.0.1:9", bucket: BUCKET },
    });
    res = await t.request(`${orgPath()}/${id}/test`, { method: "POST", token: owner });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(
      /^Backup storage s3:\/\/targets-test\/org-a refused/,
    );

    const failures = (await auditActions(t, team.slug, owner)).filter((a) => a.action.name === "backup_target.test");
    expect(failures.length).toBe(3);
    expect(t.logs.join("\n")).not.toContain(wrongSecret);
  });

  it("validates input with a message naming the field", async () => {
    const owner = team.members.owner.token;
    for (const [bad, field] of [
      [{ bucket: "Not_A_Bucket" }, "bucket"],
      [{ endpoint: "ftp://s3.example.com" }, "endpoint"],
      [{ endpoint: "https://user:pass@s3.example.com" }, "endpoint"],
      [{ prefix: "a/../b" }, "prefix"],
      [{ secret_access_key: "" }, "secret_access_key"],
    ] as const) {
      const res = await t.request(orgPath(), { method: "POST", token: owner, json: body(bad) });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await json<{ message: string }>(res)).message).toContain(field);
    }
  });

  it("is managed by owners and administrators only; strangers get 404", async () => {
    for (const role of ["developer", "read_only"] as const) {
      const res = await t.request(orgPath(), { method: "POST", token: team.members[role].token, json: body() });
      expect(res.status, role).toBe(403);
    }
    const res = await t.request(orgPath(), { method: "POST", token: team.outsider.token, json: body() });
    expect(res.status).toBe(404);
    expect((await t.request(orgPath(), { token: team.outsider.token })).status).toBe(404);
  });
});

describe("the instance backup target", () => {
  it("is for the instance admin only", async () => {
    const admin = team.members.owner.token;
    const other = await signUpAndLogin(t);
    for (const token of [team.members.administrator.token, other.token]) {
      expect((await t.request("/platform/backup-target", { token })).status).toBe(403);
      expect((await t.request("/platform/backup-target", { method: "PUT", token, json: body() })).status).toBe(403);
      expect((await t.request("/platform/backup-target/test", { method: "POST", token })).status).toBe(403);
      expect((await t.request("/platform/backup-target", { method: "DELETE", token })).status).toBe(403);
    }
    let res = await t.request("/platform/backup-target", { token: admin });
    expect(await json(res)).toEqual({ target: null });
    res = await t.request("/platform/backup-target", { method: "PUT", token: admin, json: body({ prefix: "" }) });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await json(res)).toMatchObject({ target: { scope: "instance", prefix: "" } });
    // PUT again changes it; the secret may be left out to keep it.
    res = await t.request("/platform/backup-target", { method: "PUT", token: admin, json: { prefix: "instance" } });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ target: { prefix: "instance" } });
    res = await t.request("/platform/backup-target/test", { method: "POST", token: admin });
    expect(res.status, await res.clone().text()).toBe(200);
    res = await t.request("/platform/backup-target", { method: "DELETE", token: admin });
    expect(res.status).toBe(204);
    res = await t.request("/platform/backup-target/test", { method: "POST", token: admin });
    expect(res.status).toBe(404);
  });
});
