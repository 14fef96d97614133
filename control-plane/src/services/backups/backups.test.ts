import { createHash } from "node:crypto";
import { BackupJobParams, type Job, RestoreJobParams, UploadUrlsResponse } from "@supamanager/shared";
import { eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { backupRestores, backups, jobs, projects } from "../../db/schema.js";
import { expectMatchesSchema } from "../../test-support/contracts.js";
import { enrollHost, FakeConnection, type JoinedHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { expectMatchesOperation } from "../../test-support/openapi.js";
import { auditActions, createTeam, json, type TeamFixture } from "../../test-support/org-fixtures.js";
import { createProjectViaApi } from "../../test-support/projects-factory.js";
import { type S3rverHandle, startS3rver } from "../../test-support/s3.js";
import { artifactKey } from "./backups.js";
import { runBackupMaintenance } from "./index.js";
import { ObjectStore } from "./s3.js";

/**
 * Backups and restores end to end on the control-plane side: a real S3 server (s3rver), the real
 * routes and job plumbing, and a FakeConnection playing the agent (it uploads through the
 * presigned URLs it is given and answers job_result frames as the agent would).
 */

const BUCKET = "backups-test";
/** Any secret is fine for s3rver's presigned URLs; the header-signed calls need its own. */
const SECRET = "S3RVER";

let s3: S3rverHandle;
let t: TestApp;
let team: TeamFixture;
let host: JoinedHost & { conn: FakeConnection };
let ref: string;
let prefix: string;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
});
afterAll(async () => {
  await s3.stop();
});

async function makeHealthy(conn: FakeConnection, projectRef: string, version = 1) {
  await conn.send({ type: "applied", ref: projectRef, version, desiredState: "running", ok: true });
  await conn.send({
    type: "health",
    ref: projectRef,
    services: ["db", "meta", "gateway"].map((name) => ({ name, state: "running", health: "healthy" })),
  });
}

async function projectRow(projectRef = ref) {
  const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, projectRef));
  return row;
}

async function backupRow(id: number) {
  const [row] = await t.deps.database.db.select().from(backups).where(eq(backups.id, id));
  return row;
}

async function addTarget(extra: Record<string, unknown> = {}) {
  const res = await t.request(`/platform/organizations/${team.slug}/backup-targets`, {
    method: "POST",
    token: team.members.owner.token,
    json: {
      endpoint: s3.endpoint,
      bucket: BUCKET,
      prefix,
      region: s3.region,
      force_path_style: true,
      access_key_id: s3.accessKeyId,
      secret_access_key: SECRET,
      ...extra,
    },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await json<{ id: string }>(res)).id;
}

beforeEach(async () => {
  // The organization's target is the s3rver on loopback, a private endpoint.
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true", SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "allow" });
  team = await createTeam(t);
  host = await enrollHost(t, team.members.owner);
  ref = (await createProjectViaApi(t, team.members.owner, team)).ref;
  await host.conn.settle();
  await makeHealthy(host.conn, ref);
  expect((await projectRow())?.status).toBe("ACTIVE_HEALTHY");
  prefix = `run-${Math.random().toString(36).slice(2, 10)}`;
});
afterEach(async () => {
  await t.close();
});

const base = () => `/platform/database/${ref}/backups`;

async function startBackup(token = team.members.owner.token): Promise<{ id: number; job: Job }> {
  const before = host.conn.ofType("job").length;
  const res = await t.request(base(), { method: "POST", token });
  expect(res.status, await res.clone().text()).toBe(201);
  const body = await json<{ id: number; status: string }>(res);
  expect(body.status).toBe("PENDING");
  await host.conn.settle();
  const sent = host.conn.ofType("job");
  expect(sent.length).toBe(before + 1);
  return { id: body.id, job: sent.at(-1) as Job };
}

async function askUploadUrls(jobId: string, artifact: string, partNumbers: number[], credential = host.credential) {
  return t.request(`/agent/v1/jobs/${jobId}/upload-urls`, {
    method: "POST",
    token: credential,
    json: { artifact, partNumbers },
  });
}

/** Do what the agent does: upload each artifact in parts through presigned URLs, answer the job. */
async function agentUploads(job: Job, contents: Record<string, Buffer>, partBytes = 5 * 1024 * 1024) {
  const params = BackupJobParams.parse(job.params);
  const artifacts = [];
  for (const a of params.artifacts) {
    const data = contents[a.name] ?? Buffer.from(`contents of ${a.name}`);
    const parts = Math.max(1, Math.ceil(data.length / partBytes));
    const res = await askUploadUrls(
      job.jobId,
      a.name,
      Array.from({ length: parts }, (_, i) => i + 1),
    );
    expect(res.status, await res.clone().text()).toBe(200);
    const { urls } = UploadUrlsResponse.parse(await res.json());
    const etags = [];
    for (const u of urls) {
      const chunk = data.subarray((u.partNumber - 1) * partBytes, u.partNumber * partBytes);
      const put = await fetch(u.url, { method: "PUT", body: chunk });
      expect(put.status).toBe(200);
      etags.push({ partNumber: u.partNumber, etag: put.headers.get("etag") as string });
    }
    artifacts.push({
      name: a.name,
      sizeBytes: data.length,
      sha256: createHash("sha256").update(data).digest("hex"),
      parts: etags,
    });
  }
  await host.conn.send({ type: "job_result", jobId: job.jobId, ok: true, result: { artifacts } });
}

async function completedBackup(data = Buffer.from("PGDMP fake dump bytes")): Promise<number> {
  const { id, job } = await startBackup();
  await agentUploads(job, { "db.dump": data });
  expect((await backupRow(id))?.status).toBe("COMPLETED");
  return id;
}

describe("taking a backup", () => {
  it("without a target answers 400 with what to configure", async () => {
    const res = await t.request(base(), { method: "POST", token: team.members.owner.token });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(/No backup storage is configured/);
  });

  it("streams through presigned multipart URLs and completes in storage", async () => {
    await addTarget();
    // Two 5 MiB parts and a short last one: a real multipart upload.
    const dump = Buffer.alloc(11 * 1024 * 1024 + 17);
    for (let i = 0; i < dump.length; i += 4096) dump[i] = i % 251;
    const { id, job } = await startBackup(team.members.developer.token);
    expect(job.kind).toBe("backup");
    expect(job.ref).toBe(ref);
    const params = BackupJobParams.parse(job.params);
    expect(params).toMatchObject({ backupId: String(id), artifacts: [{ name: "db.dump" }] });
    expect(params.artifacts[0]?.source).toEqual({
      kind: "pg_dump",
      service: "db",
      database: "postgres",
      user: "postgres",
    });
    expect(params.encryption).toBeUndefined();
    expect(await s3.pendingUploads(BUCKET)).toHaveLength(1);

    await agentUploads(job, { "db.dump": dump });

    const row = await backupRow(id);
    expect(row).toMatchObject({ status: "COMPLETED", sizeBytes: dump.length, error: null });
    expect(row?.artifacts[0]).toMatchObject({
      name: "db.dump",
      uploadId: null,
      sizeBytes: dump.length,
      sha256: createHash("sha256").update(dump).digest("hex"),
    });
    const key = `${prefix}/${ref}/${id}/db.dump`;
    expect(await s3.listKeys(BUCKET, `${prefix}/`)).toEqual([key]);
    expect((await s3.getObject(BUCKET, key))?.equals(dump)).toBe(true);
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);

    // Studio's list and the v1 list.
    let res = await t.request(base(), { token: team.members.read_only.token });
    expect(res.status).toBe(200);
    const list = await json<{ backups: { id: number; status: string }[] }>(res);
    expectMatchesSchema("BackupsResponse", list);
    expect(list).toMatchObject({ pitr_enabled: false, walg_enabled: false, region: "local", physicalBackupData: {} });
    expect(list.backups).toMatchObject([{ id, status: "COMPLETED", isPhysicalBackup: false }]);
    res = await t.request(`/v1/projects/${ref}/database/backups`, { token: team.members.read_only.token });
    const v1 = await json(res);
    expectMatchesOperation("GET", "/v1/projects/{ref}/database/backups", 200, v1);
    expect(v1).toMatchObject({ backups: [{ is_physical_backup: false, status: "COMPLETED" }] });
    res = await t.request(`${base()}/downloadable-backups`, { token: team.members.read_only.token });
    expect(await json(res)).toMatchObject({ backups: [{ id }] });
    res = await t.request(`/platform/projects/${ref}/pause/status`, { token: team.members.read_only.token });
    expect(await json(res)).toMatchObject({ latest_downloadable_backup_id: id });

    // A short-lived download link to the dump.
    res = await t.request(`${base()}/download`, {
      method: "POST",
      token: team.members.developer.token,
      json: { id },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const { fileUrl } = await json<{ fileUrl: string }>(res);
    expect(new URL(fileUrl).searchParams.get("X-Amz-Expires")).toBe("900");
    const download = await fetch(fileUrl);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(dump)).toBe(true);
    expect(
      (await t.request(`${base()}/download`, { method: "POST", token: team.members.read_only.token, json: { id } }))
        .status,
    ).toBe(403);

    const actions = (await auditActions(t, team.slug, team.members.owner.token)).map((a) => a.action.name);
    expect(actions).toEqual(expect.arrayContaining(["backup.start", "backup.download"]));
    // Presigned URLs are credentials: none is ever logged.
    expect(t.logs.join("\n")).not.toMatch(/X-Amz-Signature|X-Amz-Credential/);
  });

  it("refuses a second backup while one runs, and upload URLs to anyone but the job's host", async () => {
    await addTarget();
    const { job } = await startBackup();
    let res = await t.request(base(), { method: "POST", token: team.members.owner.token });
    expect(res.status).toBe(409);

    // Another host's credential, a bad credential, an artifact not in the job.
    const other = await enrollHost(t, team.members.owner);
    expect((await askUploadUrls(job.jobId, "db.dump", [1], other.credential)).status).toBe(404);
    expect((await askUploadUrls(job.jobId, "db.dump", [1], `smh_${"x".repeat(40)}`)).status).toBe(401);
    res = await askUploadUrls(job.jobId, "storage.tar", [1]);
    expect(res.status).toBe(404);
    expect((await json<{ message: string }>(res)).message).toContain("storage.tar");
    res = await askUploadUrls(job.jobId, "db.dump", [0]);
    expect(res.status).toBe(400);

    await agentUploads(job, {});
    // The job is finished: no more URLs.
    expect((await askUploadUrls(job.jobId, "db.dump", [1])).status).toBe(409);
  });

  it("fails and aborts the uploads when the agent reports a failure", async () => {
    await addTarget();
    const { id, job } = await startBackup();
    expect((await askUploadUrls(job.jobId, "db.dump", [1])).status).toBe(200);
    expect((await backupRow(id))?.status).toBe("RUNNING");
    await host.conn.send({ type: "job_result", jobId: job.jobId, ok: false, error: "pg_dump exited with 1" });
    const row = await backupRow(id);
    expect(row).toMatchObject({ status: "FAILED" });
    expect(row?.error).toContain("pg_dump exited with 1");
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
    const list = await json<{ backups: { status: string }[] }>(
      await t.request(base(), { token: team.members.owner.token }),
    );
    expect(list.backups[0]?.status).toBe("FAILED");
  });

  it("checks an organization's private endpoint at each use: under `deny` no storage call is sent", async () => {
    await addTarget();
    const { id, job } = await startBackup();
    expect(await s3.pendingUploads(BUCKET)).toHaveLength(1);
    // As after a restart with the default setting: the target was saved under `allow`, and is
    // checked again before each call (the same path a changed DNS answer takes).
    t.deps.config.backups.privateEndpoints = "deny";
    // Presigned URLs are still handed out (the agent fetches them, not the control plane), but the
    // completion is refused, and so is the abort: the upload stays open in the bucket.
    await agentUploads(job, { "db.dump": Buffer.from("PGDMP refused") });
    const failed = await backupRow(id);
    expect(failed?.status).toBe("FAILED");
    expect(failed?.error).toContain("127.0.0.1 is a loopback address");
    expect(failed?.error).toContain("SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS=allow");
    expect(await s3.pendingUploads(BUCKET)).toHaveLength(1);
    expect(await s3.listKeys(BUCKET, `${prefix}/`)).toEqual([]);

    // A new backup is refused before it opens an upload, and no job is sent.
    const jobsBefore = host.conn.ofType("job").length;
    const res = await t.request(base(), { method: "POST", token: team.members.owner.token });
    expect(res.status).toBe(400);
    expect((await json<{ message: string }>(res)).message).toMatch(/SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS=allow/);
    await host.conn.settle();
    expect(host.conn.ofType("job")).toHaveLength(jobsBefore);
    const open = await s3.pendingUploads(BUCKET);
    expect(open).toHaveLength(1);

    // Tidy up for the next tests (they share the bucket): abort it directly, unguarded.
    const store = new ObjectStore({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: BUCKET,
      forcePathStyle: true,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: SECRET,
    });
    await store.abortUpload(artifactKey(failed as NonNullable<typeof failed>, "db.dump"), open[0] as string);
    store.close();
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
  });

  it("fails when the stored size differs from what the agent reports, deleting the object", async () => {
    await addTarget();
    const { id, job } = await startBackup();
    const res = await askUploadUrls(job.jobId, "db.dump", [1]);
    const { urls } = UploadUrlsResponse.parse(await res.json());
    const put = await fetch(urls[0]?.url as string, { method: "PUT", body: Buffer.from("short") });
    await host.conn.send({
      type: "job_result",
      jobId: job.jobId,
      ok: true,
      result: {
        artifacts: [
          {
            name: "db.dump",
            sizeBytes: 999,
            sha256: "0".repeat(64),
            parts: [{ partNumber: 1, etag: put.headers.get("etag") }],
          },
        ],
      },
    });
    const row = await backupRow(id);
    expect(row?.status).toBe("FAILED");
    expect(row?.error).toMatch(/5 bytes in storage, the agent sent 999/);
    expect(await s3.listKeys(BUCKET, `${prefix}/`)).toEqual([]);
  });

  it("fails a backup whose job outlives its lease (the maintenance tick), aborting the upload", async () => {
    await addTarget();
    const { id } = await startBackup();
    t.clock.advance(7 * 3600);
    const report = await runBackupMaintenance(t.deps);
    expect(report.jobsLost).toBe(1);
    expect(await backupRow(id)).toMatchObject({ status: "FAILED", error: "the job did not finish within its lease" });
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
  });

  it("fails a backup whose host never takes the job, and the job with it", async () => {
    await addTarget();
    host.conn.session.closed();
    const res = await t.request(base(), { method: "POST", token: team.members.owner.token });
    expect(res.status).toBe(201);
    const { id } = await json<{ id: number }>(res);
    const jobId = (await backupRow(id))?.jobId as string;
    t.clock.advance(30 * 60);
    await runBackupMaintenance(t.deps);
    expect((await backupRow(id))?.status).toBe("PENDING");
    t.clock.advance(31 * 60);
    const report = await runBackupMaintenance(t.deps);
    expect(report.stuckFailed).toBe(1);
    expect((await backupRow(id))?.error).toMatch(/did not take the backup job/);
    const [job] = await t.deps.database.db.select().from(jobs).where(eq(jobs.id, jobId));
    expect(job?.status).toBe("failed");
  });

  it("sends the target's encryption key only inside the job frame, never storing it in the job row", async () => {
    await addTarget({ client_side_encryption: true });
    const { id, job } = await startBackup();
    const params = BackupJobParams.parse(job.params);
    expect(params.encryption?.scheme).toBe("aes-256-gcm-chunked-v1");
    const key = params.encryption?.keyBase64 as string;
    expect(Buffer.from(key, "base64")).toHaveLength(32);
    const [row] = await t.deps.database.db.select().from(jobs).where(eq(jobs.id, job.jobId));
    expect(JSON.stringify(row?.params)).not.toContain(key);
    expect(t.logs.join("\n")).not.toContain(key);
    await agentUploads(job, {});
    expect(await backupRow(id)).toMatchObject({ status: "COMPLETED", encrypted: true });
  });

  it("is for developers and up: read_only gets 403, another organization 404", async () => {
    await addTarget();
    expect((await t.request(base(), { method: "POST", token: team.members.read_only.token })).status).toBe(403);
    expect((await t.request(base(), { method: "POST", token: team.outsider.token })).status).toBe(404);
    expect((await t.request(base(), { token: team.outsider.token })).status).toBe(404);
  });
});

describe("schedules and retention", () => {
  it("takes scheduled backups when due and removes the oldest beyond the retention", async () => {
    await addTarget();
    const owner = team.members.owner.token;
    let res = await t.request(`${base()}/schedule`, {
      method: "PUT",
      token: team.members.developer.token,
      json: { interval_hours: 6, retention_count: 2 },
    });
    expect(res.status).toBe(403);
    res = await t.request(`${base()}/schedule`, { method: "PUT", token: owner, json: { interval_hours: 6 } });
    expect(res.status).toBe(400);
    res = await t.request(`${base()}/schedule`, {
      method: "PUT",
      token: owner,
      json: { interval_hours: 6, retention_count: 2 },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await json(res)).toMatchObject({ enabled: true, interval_hours: 6, retention_count: 2 });

    // Not due yet.
    expect((await runBackupMaintenance(t.deps)).scheduledStarted).toBe(0);

    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      t.clock.advance(6 * 3600);
      expect((await runBackupMaintenance(t.deps)).scheduledStarted).toBe(1);
      // Claimed: a second tick right away starts nothing.
      expect((await runBackupMaintenance(t.deps)).scheduledStarted).toBe(0);
      await host.conn.settle();
      const job = host.conn.ofType("job").at(-1) as Job;
      const id = Number(BackupJobParams.parse(job.params).backupId);
      expect((await backupRow(id))?.trigger).toBe("scheduled");
      await agentUploads(job, { "db.dump": Buffer.from(`dump ${i}`) });
      ids.push(id);
    }
    // The third completed backup put the first beyond the retention; the next tick removes it.
    const report = await runBackupMaintenance(t.deps);
    expect(report.removed).toBe(1);
    expect((await backupRow(ids[0] as number))?.status).toBe("REMOVED");
    expect(await s3.listKeys(BUCKET, `${prefix}/`)).toEqual(ids.slice(1).map((id) => `${prefix}/${ref}/${id}/db.dump`));
    // Studio sees it REMOVED (a fresh session: the clock moved past the first one's expiry).
    const [fresh] = await t.deps.database.db
      .select()
      .from(backups)
      .where(eq(backups.id, ids[0] as number));
    expect(fresh?.status).toBe("REMOVED");
  });

  it("removes backups older than retention_days", async () => {
    await addTarget();
    const first = await completedBackup();
    const second = await completedBackup();
    // The first is three days old (moving the clock would expire the test's sessions).
    await t.deps.database.db
      .update(backups)
      .set({ createdAt: new Date(t.clock.now() - 3 * 24 * 3600 * 1000) })
      .where(eq(backups.id, first));
    const res = await t.request(`${base()}/schedule`, {
      method: "PUT",
      token: team.members.owner.token,
      json: { enabled: true, interval_hours: 24, retention_days: 2 },
    });
    expect(res.status).toBe(200);
    expect((await runBackupMaintenance(t.deps)).removed).toBe(1);
    expect((await backupRow(first))?.status).toBe("REMOVED");
    expect((await backupRow(second))?.status).toBe("COMPLETED");
  });
});

describe("restoring", () => {
  async function restoreJob(): Promise<Job> {
    await host.conn.settle();
    const job = host.conn.ofType("job").at(-1) as Job;
    expect(job.kind).toBe("restore");
    return job;
  }

  it("restores in place: RESTORING while the job runs (health does not end it), then ACTIVE_HEALTHY", async () => {
    await addTarget({ client_side_encryption: true });
    const dump = Buffer.from("PGDMP a real-looking dump");
    const id = await completedBackup(dump);
    let res = await t.request(`${base()}/restore`, {
      method: "POST",
      token: team.members.developer.token,
      json: { id },
    });
    expect(res.status).toBe(403);
    res = await t.request(`${base()}/restore`, {
      method: "POST",
      token: team.members.administrator.token,
      json: { id },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    expect((await projectRow())?.status).toBe("RESTORING");

    const job = await restoreJob();
    const params = RestoreJobParams.parse(job.params);
    expect(params.encryption?.keyBase64).toHaveLength(44);
    const a = params.artifacts[0];
    expect(a).toMatchObject({
      name: "db.dump",
      sizeBytes: dump.length,
      sha256: createHash("sha256").update(dump).digest("hex"),
      source: { kind: "pg_dump", service: "db" },
    });
    expect(Number(new URL(a?.url as string).searchParams.get("X-Amz-Expires"))).toBeGreaterThanOrEqual(3600);
    const fetched = Buffer.from(await (await fetch(a?.url as string)).arrayBuffer());
    expect(fetched.equals(dump)).toBe(true);
    // The job row keeps neither the URLs nor the key.
    const [stored] = await t.deps.database.db.select().from(jobs).where(eq(jobs.id, job.jobId));
    expect(JSON.stringify(stored?.params)).not.toMatch(/X-Amz-Signature|keyBase64/);

    // The services restart during a restore; health reports (good or bad) leave RESTORING alone.
    await makeHealthy(host.conn, ref);
    expect((await projectRow())?.status).toBe("RESTORING");
    // A project being restored cannot be restored again, nor backed up.
    expect(
      (await t.request(`${base()}/restore`, { method: "POST", token: team.members.owner.token, json: { id } })).status,
    ).toBe(409);
    expect((await t.request(base(), { method: "POST", token: team.members.owner.token })).status).toBe(409);

    await host.conn.send({
      type: "job_result",
      jobId: job.jobId,
      ok: true,
      result: { artifacts: [{ name: "db.dump", sizeBytes: dump.length }] },
    });
    expect(await projectRow()).toMatchObject({ status: "ACTIVE_HEALTHY", statusReason: null, restoreJobId: null });
    const [r] = await t.deps.database.db.select().from(backupRestores).where(eq(backupRestores.jobId, job.jobId));
    expect(r?.status).toBe("COMPLETED");
    const actions = (await auditActions(t, team.slug, team.members.owner.token)).map((x) => x.action.name);
    expect(actions).toContain("backup.restore");
  });

  it("ends RESTORE_FAILED with the reason when the object is missing (the agent's download 404s)", async () => {
    await addTarget();
    const id = await completedBackup();
    // Someone deleted the object behind SupaManager's back.
    await s3.client.send(
      new (await import("@aws-sdk/client-s3")).DeleteObjectCommand({
        Bucket: BUCKET,
        Key: `${prefix}/${ref}/${id}/db.dump`,
      }),
    );
    const res = await t.request(`${base()}/restore`, { method: "POST", token: team.members.owner.token, json: { id } });
    expect(res.status).toBe(201);
    const job = await restoreJob();
    const url = RestoreJobParams.parse(job.params).artifacts[0]?.url as string;
    const got = await fetch(url);
    expect(got.status).toBe(404);
    await host.conn.send({
      type: "job_result",
      jobId: job.jobId,
      ok: false,
      error: "downloading db.dump failed: HTTP 404; the previous data is still serving",
    });
    const p = await projectRow();
    expect(p?.status).toBe("RESTORE_FAILED");
    expect(p?.statusReason).toMatch(/Restoring backup \d+ failed: downloading db.dump failed: HTTP 404/);
    const detail = await json<{ status: string }>(
      await t.request(`/platform/projects/${ref}`, { token: team.members.owner.token }),
    );
    expect(detail.status).toBe("RESTORE_FAILED");
  });

  it("ends RESTORE_FAILED when the agent restarts mid-restore (lost job)", async () => {
    await addTarget();
    const id = await completedBackup();
    await t.request(`${base()}/restore`, { method: "POST", token: team.members.owner.token, json: { id } });
    await restoreJob();
    // A new agent process says hello: the jobs of the old one are lost.
    const restarted = new FakeConnection(t, host.hostId);
    await restarted.hello();
    const p = await projectRow();
    expect(p).toMatchObject({ status: "RESTORE_FAILED", restoreJobId: null });
    expect(p?.statusReason).toContain("the host agent restarted while the job was running");
  });

  it("restores into a new project once it is ACTIVE_HEALTHY", async () => {
    await addTarget();
    const id = await completedBackup();
    let res = await t.request(`${base()}/restore-to-new-project`, {
      method: "POST",
      token: team.members.developer.token,
      json: { id, name: "Clone", db_pass: "another-fine-password-1" },
    });
    expect(res.status).toBe(403);
    res = await t.request(`${base()}/restore-to-new-project`, {
      method: "POST",
      token: team.members.owner.token,
      json: { id, name: "Clone", db_pass: "another-fine-password-1" },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const clone = await json<{ project_ref: string; status: string }>(res);
    expect(clone.status).toBe("WAITING");
    expect(clone.project_ref).not.toBe(ref);
    await host.conn.settle();
    // The new project's first apply went out (the kick after commit).
    expect(host.conn.ofType("apply").some((a) => a.ref === clone.project_ref)).toBe(true);
    expect((await projectRow(clone.project_ref))?.status).toBe("COMING_UP");

    // Not up yet: the restore waits.
    expect((await runBackupMaintenance(t.deps)).restoresStarted).toBe(0);
    await makeHealthy(host.conn, clone.project_ref);
    expect((await runBackupMaintenance(t.deps)).restoresStarted).toBe(1);
    expect((await projectRow(clone.project_ref))?.status).toBe("RESTORING");
    const job = await restoreJob();
    expect(job.ref).toBe(clone.project_ref);
    expect(RestoreJobParams.parse(job.params).backupId).toBe(String(id));
    await host.conn.send({ type: "job_result", jobId: job.jobId, ok: true, result: { artifacts: [] } });
    expect((await projectRow(clone.project_ref))?.status).toBe("ACTIVE_HEALTHY");
    // The source project was never touched.
    expect((await projectRow())?.status).toBe("ACTIVE_HEALTHY");
  });

  // Issue 14 (7): the clone's db_pass follows the rule project create applies, refused before any
  // project row exists (a quote used to be accepted and the clone could only end INIT_FAILED).
  it("refuses every db_pass that project create refuses, with the same message, creating nothing", async () => {
    await addTarget();
    const id = await completedBackup();
    const before = (await t.deps.database.db.select().from(projects)).length;
    const refused = [
      "it's-a-fine-password",
      "tab\tinside-password",
      "nul\u0000inside-password",
      "newline\ninside-password",
      " ".repeat(12),
      "short",
      "x".repeat(129),
    ];
    for (const db_pass of refused) {
      const clone = await t.request(`${base()}/restore-to-new-project`, {
        method: "POST",
        token: team.members.owner.token,
        json: { id, name: "Clone", db_pass },
      });
      const create = await t.request("/platform/projects", {
        method: "POST",
        token: team.members.owner.token,
        json: { name: "Fresh", organization_slug: team.slug, db_pass },
      });
      const label = JSON.stringify(db_pass).slice(0, 40);
      expect(clone.status, `${label}: ${await clone.clone().text()}`).toBe(400);
      expect(create.status, label).toBe(400);
      const message = (await json<{ message: string }>(clone)).message;
      expect(message, label).toMatch(/db_pass/);
      expect(message, label).toBe((await json<{ message: string }>(create)).message);
    }
    expect((await t.deps.database.db.select().from(projects)).length).toBe(before);
    expect(host.conn.ofType("apply").filter((a) => a.ref !== ref)).toEqual([]);
  });

  it("answers 404 for another project's backup id and 409 for a backup that is not COMPLETED", async () => {
    await addTarget();
    const other = (await createProjectViaApi(t, team.members.owner, team, { name: "Other" })).ref;
    await host.conn.settle();
    await makeHealthy(host.conn, other);
    const { id } = await startBackup();
    let res = await t.request(`/platform/database/${other}/backups/restore`, {
      method: "POST",
      token: team.members.owner.token,
      json: { id },
    });
    expect(res.status).toBe(404);
    res = await t.request(`${base()}/restore`, { method: "POST", token: team.members.owner.token, json: { id } });
    expect(res.status).toBe(409);
    res = await t.request(`${base()}/restore`, { method: "POST", token: team.outsider.token, json: { id } });
    expect(res.status).toBe(404);
    res = await t.request(`${base()}/restore`, { method: "POST", token: team.members.owner.token, json: {} });
    expect(res.status).toBe(400);
  });
});
