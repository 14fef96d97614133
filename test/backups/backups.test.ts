import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type S3rverHandle, startS3rver } from "../../control-plane/src/test-support/s3.js";
import { type ApiResult, Fleet, prerequisites, projectDb, sleep } from "../fleet/fleet-harness.js";
import { ensureAgentBuilt } from "../support/agent-process.js";

/**
 * Backups and restores end to end on the `local` release: the built control plane (on
 * PostgreSQL), one built host agent on the real Docker engine, a project running real
 * PostgreSQL 15, and a real S3 server (s3rver). Everything goes through the public API as
 * Studio sends it; the bucket is inspected directly. The steps run in order and share one
 * project (docs/backups.md).
 */

const CI = process.env.CI === "true";
const pre = await prerequisites();
if (!pre.ok && !CI) {
  console.warn(
    `\n!!! SKIPPING the backup end-to-end tests: ${pre.why}. Run \`bash .ci/start-docker && npm run images:test\`.\n`,
  );
}

// Its own loopback address and port range: other end-to-end files run beside this one on the same engine.
const HOST = { agent: "bk-host", region: "bk-1", bind: "127.0.0.5" };
const PORT_RANGE = "29000-29499";
const BUCKET = "e2e-backups";
const PREFIX = "sm";
const DB_PASS = "backups-e2e-db-password-1";
/** Rows of incompressible data (1 MiB each) for the big-database step: the dump is > 200 MB. */
const BIG_MIB = 210;

type Backup = {
  id: number;
  status: "PENDING" | "COMPLETED" | "FAILED" | "REMOVED";
  size_bytes: number | null;
  error: string | null;
  trigger: string;
};

const fleet = new Fleet();
let s3: S3rverHandle;
let ref = "";
let dbHost = "";
let dbPort = 0;
const ids: Record<string, number> = {};

const sql = <T = Record<string, unknown>[]>(query: string) =>
  fleet.api<T>("POST", `/platform/pg-meta/${ref}/query?key=e2e`, { query, disable_statement_timeout: true });

/** Straight to the project's published PostgreSQL port (what a user's psql does). */
async function direct<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await projectDb(dbHost, dbPort, DB_PASS);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const titles = () =>
  direct(async (c) =>
    (await c.query<{ title: string }>("select title from public.todos order by id")).rows.map((r) => r.title),
  );

async function backups(): Promise<Backup[]> {
  const r = await fleet.api<{ backups: Backup[] }>("GET", `/platform/database/${ref}/backups`);
  if (r.status !== 200) throw new Error(`GET backups: ${r.status} ${r.text}`);
  return r.body.backups;
}

/** Poll the backup list until backup `id` leaves PENDING; bounded, with the agent's tail on timeout. */
async function settled(id: number, timeoutMs: number): Promise<Backup> {
  const deadline = Date.now() + timeoutMs;
  let last: Backup | undefined;
  while (Date.now() < deadline) {
    last = (await backups()).find((b) => b.id === id);
    if (last && last.status !== "PENDING") return last;
    await sleep(300);
  }
  throw new Error(await fleet.explain(ref, `backup ${id} still ${last?.status} after ${timeoutMs} ms`));
}

async function startBackup(): Promise<number> {
  const r = await fleet.api<Backup>("POST", `/platform/database/${ref}/backups`);
  expect(r.status, r.text).toBe(201);
  expect(r.body.status).toBe("PENDING");
  return r.body.id;
}

async function backupCompleted(timeoutMs = 60_000): Promise<Backup> {
  const b = await settled(await startBackup(), timeoutMs);
  expect(b.status, b.error ?? "").toBe("COMPLETED");
  return b;
}

const keyOf = (id: number) => `${PREFIX}/${ref}/${id}/db.dump`;

async function restore(id: number): Promise<ApiResult<{ status: string; backup_id: number }>> {
  return fleet.api("POST", `/platform/database/${ref}/backups/restore`, { id });
}

/** Restore `id` and wait for the project to settle on RESTORE_FAILED; returns the status reason. */
async function failingRestore(id: number): Promise<string> {
  const r = await restore(id);
  expect(r.status, r.text).toBe(201);
  expect(r.body).toMatchObject({ status: "RESTORING", backup_id: id });
  const history = await fleet.waitForStatus(ref, "RESTORE_FAILED", 60_000);
  expect(history.map((h) => h.status)).not.toContain("ACTIVE_HEALTHY");
  const detail = await fleet.project(ref);
  return detail.body.status_reason ?? "";
}

/** Every multipart part file s3rver holds for the bucket's open uploads. */
async function uploadedParts(): Promise<string[]> {
  const root = join(s3.directory, BUCKET, "._S3rver_uploads");
  const out: string[] = [];
  for (const u of await readdir(root).catch(() => [] as string[])) {
    for (const p of await readdir(join(root, u)).catch(() => [] as string[])) out.push(`${u}/${p}`);
  }
  return out;
}

function procStatus(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  return readFile(`/proc/${pid}/status`, "utf8").then(
    (s) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(s)?.[1] ?? Number.NaN) * 1024,
    () => Number.NaN,
  );
}

describe.skipIf(!pre.ok && !CI)("backups to S3 and restores (local release, real agent, s3rver)", () => {
  beforeAll(async () => {
    if (!pre.ok) throw new Error(`CI=true and the backup end-to-end tests cannot run: ${pre.why}`);
    ensureAgentBuilt();
    s3 = await startS3rver({ buckets: [BUCKET] });
    await fleet.start();
    await fleet.stopControlPlane();
    // A 1-second maintenance tick (its minimum), so retention runs while we wait.
    await fleet.startControlPlane({
      SUPAMANAGER_PORT_RANGE: PORT_RANGE,
      SUPAMANAGER_BACKUP_TICK_SECONDS: "1",
      // The organization's target is s3rver on loopback, which the default (deny) refuses.
      SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "allow",
    });
    await fleet.enroll(HOST.agent, HOST.region, HOST.bind);
    await fleet.waitForHost(HOST.agent, (h) => h.status === "online", 30_000);
    // `small` (1.5 CPU, 2 GiB): pg_dump compresses ~400 MB of COPY text in the big-database step.
    const project = await fleet.createProject("backups", HOST.region, DB_PASS, "small");
    ref = project.ref;
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 150_000);
    const detail = await fleet.project(ref);
    dbHost = detail.body.db_host;
    dbPort = detail.body.db_port as number;
  }, 300_000);

  afterAll(async () => {
    const errors = await fleet.cleanup();
    await s3?.stop().catch((err: Error) => errors.push(`s3rver: ${err.message}`));
    if (errors.length > 0) console.warn(`backup e2e cleanup problems:\n${errors.join("\n")}`);
  }, 180_000);

  it("configures the organization's backup target through the API; its test answers ok", async () => {
    const created = await fleet.api<{ id: string; bucket: string; prefix: string; secret_access_key?: string }>(
      "POST",
      `/platform/organizations/${fleet.orgSlug}/backup-targets`,
      {
        endpoint: s3.endpoint,
        bucket: BUCKET,
        prefix: `/${PREFIX}/`,
        region: s3.region,
        force_path_style: true,
        access_key_id: s3.accessKeyId,
        secret_access_key: s3.secretAccessKey,
      },
    );
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ bucket: BUCKET, prefix: PREFIX });
    expect(created.body.secret_access_key).toBeUndefined();
    const test = await fleet.api(
      "POST",
      `/platform/organizations/${fleet.orgSlug}/backup-targets/${created.body.id}/test`,
    );
    expect(test.status, test.text).toBe(200);
    expect(test.body).toMatchObject({ ok: true });
    // The test object is gone again.
    expect(await s3.listKeys(BUCKET)).toEqual([]);
  });

  it("takes a backup of rows written through pg-meta; the object is in the bucket with the recorded size", async () => {
    const create = await sql(
      "create table public.todos (id bigint generated by default as identity primary key, title text not null);",
    );
    expect(create.status, create.text).toBe(201);
    const ins = await sql("insert into public.todos (title) values ('one'), ('two'), ('three');");
    expect(ins.status, ins.text).toBe(201);

    const b = await backupCompleted();
    ids.first = b.id;
    expect(b.trigger).toBe("manual");
    expect(await s3.listKeys(BUCKET, `${PREFIX}/${ref}/`)).toEqual([keyOf(b.id)]);
    const dump = await s3.getObject(BUCKET, keyOf(b.id));
    expect(dump?.length).toBe(b.size_bytes);
    // A pg_dump custom-format archive.
    expect(dump?.subarray(0, 5).toString("latin1")).toBe("PGDMP");
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
  });

  it("restores it in place: RESTORING, then ACTIVE_HEALTHY, and the dropped table is back", async () => {
    const drop = await sql("drop table public.todos;");
    expect(drop.status, drop.text).toBe(201);
    const r = await restore(ids.first as number);
    expect(r.status, r.text).toBe(201);
    expect(r.body.status).toBe("RESTORING");
    expect((await fleet.api<{ status: string }>("GET", `/platform/projects/${ref}/status`)).body.status).toBe(
      "RESTORING",
    );
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 90_000);
    const rows = await sql<{ title: string }[]>("select title from public.todos order by id;");
    expect(rows.status, rows.text).toBe(201);
    expect(rows.body.map((x) => x.title)).toEqual(["one", "two", "three"]);
    // The identity sequence came back too: a new row gets the next id.
    const next = await sql<{ id: number }[]>("insert into public.todos (title) values ('four') returning id;");
    expect(next.body).toEqual([{ id: 4 }]);
  });

  it("a corrupted object (one byte changed in the bucket): RESTORE_FAILED, the data still served", async () => {
    ids.second = (await backupCompleted()).id; // one … four
    const key = keyOf(ids.first as number);
    const bytes = (await s3.getObject(BUCKET, key)) as Buffer;
    const i = Math.floor(bytes.length / 2);
    bytes[i] = (bytes[i] as number) ^ 0xff;
    await s3.putObject(BUCKET, key, bytes);

    const reason = await failingRestore(ids.first as number);
    expect(reason).toMatch(/does not match the SHA-256 recorded for it/);
    expect(reason).toMatch(/The project still serves the data it had before/);
    // What Studio's SQL editor sees meanwhile: pg-meta answers only ACTIVE_* projects.
    const studio = await sql<{ message: string }>("select 1;");
    expect(studio.status, studio.text).toBe(409);
    expect(studio.body.message).toMatch(/is RESTORE_FAILED: .*restore a backup again, or press Restore/);
    // The database itself was never touched and serves on its port.
    expect(await titles()).toEqual(["one", "two", "three", "four"]);
  });

  it("Studio's Restore (resume) button brings a RESTORE_FAILED project back to ACTIVE_HEALTHY", async () => {
    // A backup may be taken in RESTORE_FAILED (the project serves): it is used by the next step.
    ids.third = (await backupCompleted()).id;
    const resume = await fleet.api("POST", `/platform/projects/${ref}/restore`);
    expect(resume.status, resume.text).toBeLessThan(300);
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 90_000);
    const rows = await sql<{ title: string }[]>("select title from public.todos order by id;");
    expect(rows.status, rows.text).toBe(201);
    expect(rows.body.map((x) => x.title)).toEqual(["one", "two", "three", "four"]);
  });

  it("a missing object (deleted from the bucket): RESTORE_FAILED, the data still served", async () => {
    await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: keyOf(ids.third as number) }));
    const reason = await failingRestore(ids.third as number);
    expect(reason).toMatch(/cannot download artifact db\.dump from object storage: it does not exist/);
    expect(await titles()).toEqual(["one", "two", "three", "four"]);
  });

  it("a restore from a good backup brings a RESTORE_FAILED project back to ACTIVE_HEALTHY", async () => {
    await direct((c) => c.query("insert into public.todos (title) values ('not in the backup')"));
    const r = await restore(ids.second as number);
    expect(r.status, r.text).toBe(201);
    await fleet.waitForStatus(ref, "ACTIVE_HEALTHY", 90_000);
    expect((await fleet.project(ref)).body.status_reason ?? null).toBeNull();
    const rows = await sql<{ title: string }[]>("select title from public.todos order by id;");
    expect(rows.status, rows.text).toBe(201);
    expect(rows.body.map((x) => x.title)).toEqual(["one", "two", "three", "four"]);
  });

  it("retention (keep 2) removes the oldest backups and their objects on the maintenance tick", async () => {
    const put = await fleet.api("PUT", `/platform/database/${ref}/backups/schedule`, {
      enabled: true,
      interval_hours: 24,
      retention_count: 2,
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ enabled: true, interval_hours: 24, retention_count: 2, retention_days: null });
    ids.fourth = (await backupCompleted()).id;
    const removed = [ids.first, ids.second] as number[];
    const kept = [ids.third, ids.fourth] as number[];
    const deadline = Date.now() + 20_000;
    let list = await backups();
    while (Date.now() < deadline && !removed.every((id) => list.find((b) => b.id === id)?.status === "REMOVED")) {
      await sleep(300);
      list = await backups();
    }
    const status = (id: number) => list.find((b) => b.id === id)?.status;
    expect(removed.map(status), JSON.stringify(list)).toEqual(["REMOVED", "REMOVED"]);
    expect(kept.map(status)).toEqual(["COMPLETED", "COMPLETED"]);
    const keys = await s3.listKeys(BUCKET, `${PREFIX}/${ref}/`);
    // The third backup's object was deleted by the test above; the fourth's is the only one left.
    expect(keys).toEqual([keyOf(ids.fourth as number)]);
  });

  it("an agent killed mid-upload: the backup ends FAILED, its multipart upload aborted; a retry succeeds", {
    timeout: 360_000,
  }, async () => {
    await direct(async (c) => {
      await c.query("create table public.big (id int primary key, payload bytea not null)");
      await c.query("alter table public.big alter column payload set storage external");
      // 1 MiB of random bytes per row from gen_random_uuid() (built in since PostgreSQL 13;
      // the image has no pgcrypto): pg_dump's compression cannot shrink it.
      for (let from = 1; from <= BIG_MIB; from += 30) {
        await c.query(
          `insert into public.big select i, (select string_agg(uuid_send(gen_random_uuid()), ''::bytea) from generate_series(1, 65536) where i > 0)
             from generate_series($1::int, $2::int) i`,
          [from, Math.min(BIG_MIB, from + 29)],
        );
      }
    });

    const doomed = await startBackup();
    // Parts arriving in the bucket mean the agent was handed URLs (RUNNING) and is uploading.
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && (await uploadedParts()).length === 0) await sleep(100);
    expect(await uploadedParts(), fleet.agent(HOST.agent).proc?.tail(20)).not.toEqual([]);
    expect((await backups()).find((b) => b.id === doomed)?.status).toBe("PENDING");
    await fleet.stopAgent(HOST.agent, "SIGKILL");

    const agent = fleet.startAgent(HOST.agent);
    const failed = await settled(doomed, 60_000);
    expect(failed.status).toBe("FAILED");
    expect(failed.error).toMatch(/the host agent restarted while the job was running/);
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
    expect(await s3.listKeys(BUCKET, `${PREFIX}/${ref}/${doomed}/`)).toEqual([]);
    // The killed agent's pg_dump may outlive it (Docker does not always end an exec whose client
    // went away); the next backup or restore of the project ends it (host-agent sweepOrphans).
    const dumps = () =>
      direct(async (c) => {
        const r = await c.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where application_name = 'supamanager-backup'",
        );
        return r.rows[0]?.n;
      });

    // The retry, on the freshly started agent: its peak RSS covers start-up plus this backup.
    await fleet.waitForHost(HOST.agent, (h) => h.status === "online", 30_000);
    let sampled = 0;
    const sampler = setInterval(() => {
      void procStatus(agent.pid, "VmRSS").then((v) => {
        if (v > sampled) sampled = v;
      });
    }, 100);
    let retry: Backup;
    try {
      retry = await backupCompleted(150_000);
    } finally {
      clearInterval(sampler);
    }
    const hwm = await procStatus(agent.pid, "VmHWM");
    const size = retry.size_bytes as number;
    expect(size).toBeGreaterThan(200 * 1e6);
    const dump = await s3.getObject(BUCKET, keyOf(retry.id));
    expect(dump?.length).toBe(size);
    expect(await s3.pendingUploads(BUCKET)).toEqual([]);
    // No pg_dump of ours is left: neither the dead agent's nor the retry's.
    expect(await dumps()).toBe(0);
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    console.log(
      `[backup e2e] dump ${mib(size)}; agent pid ${agent.pid} peak RSS: VmHWM ${mib(hwm)}, sampled VmRSS max ${mib(sampled)}`,
    );
    expect(hwm).toBeGreaterThan(0);
  });
});
