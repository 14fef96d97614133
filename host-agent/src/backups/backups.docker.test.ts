import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BACKUP_JOB_KIND,
  type BackupJobParams,
  BackupJobResult,
  ENCRYPTION_SCHEME,
  type Job,
  MIN_PART_BYTES,
  newProjectRef,
  RESTORE_JOB_KIND,
  type RestoreJobParams,
} from "@supamanager/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Jobs } from "../jobs/jobs.js";
import { memoryLogger } from "../log.js";
import { run } from "../runtime/exec.js";
import { psqlIn, registerDockerBackupJobs, startPostgresService } from "../test-support/backup-rig.js";
import {
  FakeUploadUrlServer,
  getObjectBytes,
  presignGet,
  putObjectBytes,
  type S3Server,
  sha256,
  startS3rver,
} from "../test-support/s3.js";
import { restoreTmpDir } from "./restore.js";

/**
 * Backups and restores end to end on real parts: the local PostgreSQL test image in a container
 * labelled as service `db` of a Compose project, Docker exec, s3rver as object storage, and this
 * test playing the control plane (multipart uploads, presigned URLs). In CI a missing engine or
 * image manifest is a failure, not a skip.
 */
const REPO_ROOT = join(import.meta.dirname, "../../..");
const MANIFEST = join(REPO_ROOT, "images/manifest.local.json");
const dockerUp = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
const inCi = process.env.CI === "true";
const runnable = dockerUp && existsSync(MANIFEST);
if (!runnable && !inCi) {
  console.warn(
    "\n⚠️  host-agent/src/backups/backups.docker.test.ts SKIPPED: needs `docker info` and images/manifest.local.json (npm run images:test).\n",
  );
}

const PASSWORD = `pw-${randomBytes(8).toString("hex")}`;

describe.skipIf(!runnable && !inCi)("backup and restore jobs on a real PostgreSQL container", () => {
  const ref = newProjectRef();
  const name = `sm-backup-test-${ref}`;
  let s3: S3Server;
  let dataDir: string;
  let jobs: Jobs;
  let n = 0;
  const cps: FakeUploadUrlServer[] = [];
  let currentCp: FakeUploadUrlServer | null = null;

  const psql = (sql: string, db = "app") => psqlIn(name, sql, { db });
  const sh = async (script: string) => (await run("docker", ["exec", name, "sh", "-c", script])).trim();

  beforeAll(async () => {
    if (!dockerUp) throw new Error("CI=true and no Docker engine answers `docker info`");
    if (!existsSync(MANIFEST)) throw new Error(`CI=true and ${MANIFEST} is missing (npm run images:test)`);
    const image = (JSON.parse(readFileSync(MANIFEST, "utf8")) as Record<string, string>).postgres;
    if (!image) throw new Error("images/manifest.local.json has no postgres image");
    s3 = await startS3rver();
    dataDir = await mkdtemp(join(tmpdir(), "agent-backups-"));
    await startPostgresService({ name, ref, image, password: PASSWORD });
    await psql("create extension pgcrypto");
    // Random bytes as base64: pg_dump's compression leaves ~6 MB, so the dump spans two parts.
    await psql(
      "create table items (id int primary key, body text not null); " +
        "insert into items select g, encode(gen_random_bytes(750) || gen_random_bytes(750), 'base64') from generate_series(1, 5000) g",
    );
    await sh("mkdir -p /srv/files/sub && printf 'hello' > /srv/files/a.txt && printf 'deep' > /srv/files/sub/b.txt");
    jobs = new Jobs(memoryLogger());
    registerDockerBackupJobs(jobs, () => currentCp, {
      dataDir,
      logger: memoryLogger(),
      retry: { attempts: 2, baseDelayMs: 10 },
    });
  }, 120_000);

  afterAll(async () => {
    for (const cp of cps) await cp.close();
    await run("docker", ["rm", "-f", "-v", name]).catch(() => undefined);
    await s3?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function backup(params: Omit<BackupJobParams, "backupId" | "partSizeBytes">, refuseWith?: string) {
    const jobId = `job_backup_${++n}`;
    const cp = new FakeUploadUrlServer(s3, jobId, `backups/${jobId}`);
    if (refuseWith) cp.refuseWith = refuseWith;
    cps.push(cp);
    await cp.start(params.artifacts.map((a) => a.name));
    currentCp = cp;
    const job: Job = {
      v: 1,
      type: "job",
      jobId,
      kind: BACKUP_JOB_KIND,
      ref,
      params: { backupId: `bk_${n}`, partSizeBytes: MIN_PART_BYTES, ...params },
    };
    const answer = await jobs.run(job);
    return { answer, cp };
  }

  /** Backs up, completes the uploads like the control plane would, and checks what is stored. */
  async function storedBackup(params: Omit<BackupJobParams, "backupId" | "partSizeBytes">) {
    const { answer, cp } = await backup(params);
    expect(answer.error).toBeUndefined();
    expect(answer.ok).toBe(true);
    const result = BackupJobResult.parse(answer.result);
    for (const a of result.artifacts) {
      await cp.complete(a.name, a.parts);
      const bytes = await getObjectBytes(s3, cp.key(a.name));
      expect(bytes.length).toBe(a.sizeBytes);
      expect(sha256(bytes)).toBe(a.sha256);
    }
    return { result, cp };
  }

  async function restore(artifacts: RestoreJobParams["artifacts"], encryption?: RestoreJobParams["encryption"]) {
    const job: Job = {
      v: 1,
      type: "job",
      jobId: `job_restore_${++n}`,
      kind: RESTORE_JOB_KIND,
      ref,
      params: { backupId: "bk", artifacts, ...(encryption ? { encryption } : {}) },
    };
    return jobs.run(job);
  }

  const db = { kind: "pg_dump", service: "db", database: "app", user: "postgres" } as const;
  const files = { kind: "tar", service: "db", path: "/srv/files" } as const;

  async function restoreArtifacts(
    result: BackupJobResult,
    cp: FakeUploadUrlServer,
    sources: Record<string, RestoreJobParams["artifacts"][number]["source"]>,
  ) {
    const out: RestoreJobParams["artifacts"] = [];
    for (const a of result.artifacts) {
      out.push({
        name: a.name,
        sizeBytes: a.sizeBytes,
        sha256: a.sha256,
        url: await presignGet(s3, cp.key(a.name)),
        source: sources[a.name] as RestoreJobParams["artifacts"][number]["source"],
      });
    }
    return out;
  }

  it("backs up a database (two parts) and a directory, and restores both after they are lost", async () => {
    const before = await psql("select count(*) || ':' || md5(string_agg(body, '' order by id)) from items");
    const { result, cp } = await storedBackup({
      artifacts: [
        { name: "db.dump", source: db },
        { name: "files.tar", source: files },
      ],
    });
    const dump = result.artifacts[0];
    expect(dump?.parts.length).toBe(2);
    expect((await getObjectBytes(s3, cp.key("db.dump"))).subarray(0, 5).toString()).toBe("PGDMP");

    await psql("drop table items");
    await sh("rm -rf /srv/files/* && echo stray > /srv/files/stray.txt");

    const answer = await restore(await restoreArtifacts(result, cp, { "db.dump": db, "files.tar": files }));
    expect(answer.error).toBeUndefined();
    expect(answer.result).toEqual({
      artifacts: result.artifacts.map((a) => ({ name: a.name, sizeBytes: a.sizeBytes })),
    });
    expect(await psql("select count(*) || ':' || md5(string_agg(body, '' order by id)) from items")).toBe(before);
    expect(await sh("cat /srv/files/a.txt /srv/files/sub/b.txt")).toBe("hellodeep");
    // The temporary download directory is empty again, and was private.
    expect(await readdir(restoreTmpDir(dataDir))).toEqual([]);
    expect(
      spawnSync("stat", ["-c", "%a", restoreTmpDir(dataDir)])
        .stdout.toString()
        .trim(),
    ).toBe("700");
  });

  it("refuses a corrupted or missing object, and an archive pg_restore rejects, leaving the data as it was", async () => {
    const { result, cp } = await storedBackup({ artifacts: [{ name: "db.dump", source: db }] });
    const [artifact] = await restoreArtifacts(result, cp, { "db.dump": db });
    if (!artifact) throw new Error("no artifact");
    await psql("insert into items values (100000, 'written after the backup')");
    const current = await psql("select count(*) from items");

    const bytes = await getObjectBytes(s3, cp.key("db.dump"));
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)] = (flipped[Math.floor(flipped.length / 2)] as number) ^ 0xff;
    await putObjectBytes(s3, "corrupt/db.dump", flipped);
    const corrupt = await restore([{ ...artifact, url: await presignGet(s3, "corrupt/db.dump") }]);
    expect(corrupt.ok).toBe(false);
    expect(corrupt.error).toBe(
      "artifact db.dump does not match the SHA-256 recorded for it (corrupted in storage?): not restoring",
    );

    const missing = await restore([{ ...artifact, url: await presignGet(s3, "nowhere/db.dump") }]);
    expect(missing.ok).toBe(false);
    expect(missing.error).toBe("cannot download artifact db.dump from object storage: it does not exist (HTTP 404)");
    expect(missing.error).not.toContain("X-Amz-Signature");

    // Bytes that hash right but are no archive: pg_restore fails and its transaction rolls back.
    const junk = Buffer.from("this is not a pg_dump archive at all");
    await putObjectBytes(s3, "junk/db.dump", junk);
    const bad = await restore([
      { ...artifact, sizeBytes: junk.length, sha256: sha256(junk), url: await presignGet(s3, "junk/db.dump") },
    ]);
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(/^restore of db\.dump \(pg_dump of database "app" \(service db\)\) failed \(exit 1\)/);
    expect(bad.error).toContain("the database is unchanged");
    expect(bad.error).toContain("pg_restore");

    // A valid archive whose restore fails halfway (--clean cannot drop a table a new view depends
    // on): everything it did before the failure is rolled back.
    await psql("create view recent as select id from items where id > 1000");
    const halfway = await restore([{ ...artifact, url: await presignGet(s3, cp.key("db.dump")) }]);
    expect(halfway.ok).toBe(false);
    expect(halfway.error).toContain("cannot drop table public.items because other objects depend on it");

    expect(await psql("select count(*) from items")).toBe(current);
    expect(await psql("select body from items where id = 100000")).toBe("written after the backup");
    expect(await readdir(restoreTmpDir(dataDir))).toEqual([]);
    await psql("drop view recent");
  });

  it("fails a pg_dump of a database that does not exist with pg_dump's own message", async () => {
    const { answer, cp } = await backup({
      artifacts: [{ name: "db.dump", source: { ...db, database: "nope" } }],
    });
    expect(answer.ok).toBe(false);
    expect(answer.error).toMatch(
      /^backup of db\.dump failed: pg_dump of database "nope" \(service db\) failed \(exit 1\)/,
    );
    expect(answer.error).toContain('database "nope" does not exist');
    expect(answer.error).not.toContain(PASSWORD);
    // Nothing was uploaded for the failed dump: the exit code is checked before the last part.
    expect(cp.requests).toEqual([]);
  });

  it("fails with the control plane's message when it refuses upload URLs, leaving no pg_dump behind", async () => {
    const { answer } = await backup({ artifacts: [{ name: "db.dump", source: db }] }, "the backup was cancelled");
    expect(answer).toMatchObject({
      ok: false,
      error:
        "backup of db.dump failed: the control plane refused upload URLs for db.dump (HTTP 409): the backup was cancelled",
    });
    const running = async () =>
      Number(await sh("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -o 'pg_dum[p] ' | wc -l"));
    const deadline = Date.now() + 10_000;
    while ((await running()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await running()).toBe(0);
  });

  it("ends the connections a killed agent's pg_dump left behind before it dumps or restores", async () => {
    // Stands in for an orphaned pg_dump: a session of ours that holds a lock on `items` and
    // never finishes (what a pg_dump blocked on a pipe nobody reads looks like to PostgreSQL).
    await run("docker", [
      "exec",
      "-d",
      name,
      "psql",
      "-U",
      "postgres",
      "-d",
      "dbname=app application_name=supamanager-backup",
      "-c",
      "begin; lock table items in access share mode; select pg_sleep(600);",
    ]);
    const orphans = () =>
      psql("select count(*) from pg_stat_activity where application_name = 'supamanager-backup'", "postgres");
    const deadline = Date.now() + 10_000;
    while ((await orphans()) !== "1" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await orphans()).toBe("1");

    await storedBackup({ artifacts: [{ name: "db.dump", source: db }] });
    expect(await orphans()).toBe("0");
  });

  it("gives up on a table another session keeps locked, with pg_dump's message, instead of waiting forever", async () => {
    const impatient = new Jobs(memoryLogger());
    registerDockerBackupJobs(impatient, () => currentCp, { dataDir, logger: memoryLogger(), lockWaitMs: 500 });
    await run("docker", [
      "exec",
      "-d",
      name,
      "psql",
      "-U",
      "postgres",
      "-d",
      "dbname=app application_name=test-locker",
      "-c",
      "begin; lock table items in access exclusive mode; select pg_sleep(600);",
    ]);
    const lockers = () =>
      psql(
        "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'items' and l.mode = 'AccessExclusiveLock' and l.granted",
        "app",
      );
    const deadline = Date.now() + 10_000;
    while ((await lockers()) !== "1" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await lockers()).toBe("1");
    try {
      const jobId = `job_backup_${++n}`;
      const cp = new FakeUploadUrlServer(s3, jobId, `backups/${jobId}`);
      cps.push(cp);
      await cp.start(["db.dump"]);
      currentCp = cp;
      const answer = await impatient.run({
        v: 1,
        type: "job",
        jobId,
        kind: BACKUP_JOB_KIND,
        ref,
        params: { backupId: `bk_${n}`, partSizeBytes: MIN_PART_BYTES, artifacts: [{ name: "db.dump", source: db }] },
      });
      expect(answer.ok).toBe(false);
      expect(answer.error).toMatch(/statement timeout[\s\S]*LOCK TABLE public\.items IN ACCESS SHARE MODE/);
    } finally {
      await psql(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'test-locker'",
        "postgres",
      );
    }
  });

  it("fails clearly for a service without a running container", async () => {
    const { answer } = await backup({ artifacts: [{ name: "db.dump", source: { ...db, service: "ghost" } }] });
    expect(answer).toMatchObject({ ok: false, error: `service "ghost" of project ${ref} has no running container` });
  });

  it("round-trips an encrypted backup, and refuses a wrong key before touching the database", async () => {
    const encryption = { scheme: ENCRYPTION_SCHEME, keyBase64: randomBytes(32).toString("base64") } as const;
    const before = await psql("select count(*) || ':' || md5(string_agg(body, '' order by id)) from items");
    const { result, cp } = await storedBackup({ artifacts: [{ name: "db.dump", source: db }], encryption });
    const stored = await getObjectBytes(s3, cp.key("db.dump"));
    expect(stored.subarray(0, 4).toString()).toBe("SMBK");
    expect(stored.includes(Buffer.from("PGDMP"))).toBe(false);

    const artifacts = await restoreArtifacts(result, cp, { "db.dump": db });
    await psql("insert into items values (200000, 'after the encrypted backup')");
    const wrong = await restore(artifacts, {
      scheme: ENCRYPTION_SCHEME,
      keyBase64: randomBytes(32).toString("base64"),
    });
    expect(wrong.ok).toBe(false);
    expect(wrong.error).toMatch(/^artifact db\.dump cannot be decrypted: .*chunk 0 failed authentication/);
    expect(await psql("select count(*) from items where id = 200000")).toBe("1");

    await psql("drop table items");
    const ok = await restore(artifacts, encryption);
    expect(ok.error).toBeUndefined();
    expect(await psql("select count(*) || ':' || md5(string_agg(body, '' order by id)) from items")).toBe(before);
  });
});
