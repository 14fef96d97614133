/**
 * Backup memory (agent side): the agent's peak RSS while it streams a pg_dump of a database of
 * ~200+ MB of incompressible data to object storage, and while it restores it. The dump must not
 * be buffered: peak RSS should be the process's baseline plus about two parts, whatever the dump
 * size.
 *
 * Real parts: the local PostgreSQL image (`npm run images:test`) in a container labelled as
 * service `db` of a Compose project, Docker exec, s3rver (in a child process, so its memory is not
 * counted) and this script playing the control plane (multipart upload + presigned URLs, the AWS
 * SDK loaded in-process, which is part of the baseline). RSS is sampled every 20 ms
 * (process.memoryUsage().rss) and read from /proc/self/status (VmHWM, reset before each run by
 * writing 5 to /proc/self/clear_refs).
 *
 * Usage: npm run bench:backup-memory [-- --mb 220]
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import {
  BACKUP_JOB_KIND,
  BackupJobResult,
  ENCRYPTION_SCHEME,
  type Encryption,
  type Job,
  MIN_PART_BYTES,
  newProjectRef,
  RESTORE_JOB_KIND,
} from "@supamanager/shared";
import { Jobs } from "../host-agent/src/jobs/jobs.js";
import { createLogger } from "../host-agent/src/log.js";
import { run } from "../host-agent/src/runtime/exec.js";
import { psqlIn, registerDockerBackupJobs, startPostgresService } from "../host-agent/src/test-support/backup-rig.js";
import { FakeUploadUrlServer, presignGet, startS3rver } from "../host-agent/src/test-support/s3.js";
import { REPO_ROOT } from "../test/support/process.js";
import { machineLine } from "./support.js";

const { values } = parseArgs({ options: { mb: { type: "string", default: "220" } } });
const targetMb = Number(values.mb);
const MiB = 1024 * 1024;

function vmHwmBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

function resetHwm(): void {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    // Older kernels: VmHWM then includes everything before; the sampled peak still holds.
  }
}

/** Runs fn while sampling RSS; returns its result with the baseline and the peaks. */
async function measured<T>(fn: () => Promise<T>) {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const baseline = process.memoryUsage().rss;
  resetHwm();
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const t0 = performance.now();
  try {
    const result = await fn();
    return { result, ms: performance.now() - t0, baseline, peak, hwm: vmHwmBytes() };
  } finally {
    clearInterval(timer);
  }
}

async function main() {
  const image = (
    JSON.parse(readFileSync(join(REPO_ROOT, "images/manifest.local.json"), "utf8")) as Record<string, string>
  ).postgres;
  if (!image) throw new Error("images/manifest.local.json has no postgres image (npm run images:test)");
  const ref = newProjectRef();
  const name = `sm-bench-backup-${ref}`;
  const s3 = await startS3rver();
  const dataDir = await mkdtemp(join(tmpdir(), "bench-backup-"));
  const psql = (sql: string) => psqlIn(name, sql, { timeoutMs: 30 * 60_000 });
  const cps: FakeUploadUrlServer[] = [];
  try {
    await startPostgresService({ name, ref, image, password: "bench" });
    // 1 KB of random bytes per row: pg_dump writes bytea as hex and compresses it back to about
    // the raw size, so the dump is about `mb` MB whatever the compression.
    const rows = targetMb * 1000;
    const t0 = performance.now();
    await psql("create extension pgcrypto; create table blobs (id int primary key, b bytea not null)");
    for (let done = 0; done < rows; done += 50_000) {
      await psql(
        `insert into blobs select g, gen_random_bytes(1000) from generate_series(${done + 1}, ${Math.min(rows, done + 50_000)}) g`,
      );
    }
    const tableSize = await psql("select pg_total_relation_size('blobs')");
    console.log(
      `generated ${rows} rows (${(Number(tableSize) / MiB).toFixed(0)} MiB on disk) in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );

    let current: FakeUploadUrlServer | null = null;
    const jobs = new Jobs(createLogger({ level: "warn" }));
    registerDockerBackupJobs(jobs, () => current, { dataDir, logger: createLogger({ level: "warn" }) });

    const results: Record<string, unknown>[] = [];
    let n = 0;
    let plainBackup: { result: BackupJobResult; cp: FakeUploadUrlServer } | null = null;
    const scenarios: { label: string; partSizeBytes: number; encryption?: Encryption }[] = [
      { label: "backup, 5 MiB parts", partSizeBytes: MIN_PART_BYTES },
      {
        label: "backup, 5 MiB parts, encrypted",
        partSizeBytes: MIN_PART_BYTES,
        encryption: { scheme: ENCRYPTION_SCHEME, keyBase64: Buffer.alloc(32, 7).toString("base64") },
      },
      { label: "backup, 32 MiB parts", partSizeBytes: 32 * MiB },
    ];
    for (const s of scenarios) {
      const jobId = `job_bench_${++n}`;
      const cp = new FakeUploadUrlServer(s3, jobId, `bench/${jobId}`);
      cps.push(cp);
      await cp.start(["db.dump"]);
      current = cp;
      const job: Job = {
        v: 1,
        type: "job",
        jobId,
        kind: BACKUP_JOB_KIND,
        ref,
        params: {
          backupId: jobId,
          partSizeBytes: s.partSizeBytes,
          artifacts: [
            { name: "db.dump", source: { kind: "pg_dump", service: "db", database: "app", user: "postgres" } },
          ],
          ...(s.encryption ? { encryption: s.encryption } : {}),
        },
      };
      const m = await measured(() => jobs.run(job));
      if (!m.result.ok) throw new Error(`${s.label}: ${m.result.error}`);
      const result = BackupJobResult.parse(m.result.result);
      const artifact = result.artifacts[0];
      if (!artifact) throw new Error("no artifact");
      await cp.complete("db.dump", artifact.parts);
      // Check the stored object hashes to what the agent reported (streamed, after the measurement).
      const obj = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: cp.key("db.dump") }));
      const hash = createHash("sha256");
      for await (const c of obj.Body as Readable) hash.update(c as Buffer);
      if (hash.digest("hex") !== artifact.sha256) throw new Error(`${s.label}: stored object does not match`);
      if (!s.encryption && s.partSizeBytes === MIN_PART_BYTES) plainBackup = { result, cp };
      results.push(row(s.label, artifact.sizeBytes, s.partSizeBytes, m));
    }

    // Restore the plain backup over the dropped table.
    if (!plainBackup) throw new Error("no plain backup");
    const artifact = plainBackup.result.artifacts[0];
    if (!artifact) throw new Error("no artifact");
    await psql("drop table blobs");
    const restoreJob: Job = {
      v: 1,
      type: "job",
      jobId: `job_bench_${++n}`,
      kind: RESTORE_JOB_KIND,
      ref,
      params: {
        backupId: "restore",
        artifacts: [
          {
            name: "db.dump",
            sizeBytes: artifact.sizeBytes,
            sha256: artifact.sha256,
            url: await presignGet(s3, plainBackup.cp.key("db.dump"), 3600),
            source: { kind: "pg_dump", service: "db", database: "app", user: "postgres" },
          },
        ],
      },
    };
    const m = await measured(() => jobs.run(restoreJob));
    if (!m.result.ok) throw new Error(`restore: ${m.result.error}`);
    const count = Number(await psql("select count(*) from blobs"));
    if (count !== rows) throw new Error(`restore: ${count} rows, expected ${rows}`);
    results.push(row("restore (download + pg_restore)", artifact.sizeBytes, 0, m));

    console.log(`\n${machineLine()}\n`);
    console.log(
      "| run | dump MB | part MiB | s | MB/s | baseline RSS MiB | peak RSS MiB (sampled) | VmHWM MiB | peak − baseline MiB |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const r of results) {
      console.log(
        `| ${r.label} | ${r.dumpMb} | ${r.partMiB || "–"} | ${r.seconds} | ${r.mbPerSecond} | ${r.baselineMiB} | ${r.peakMiB} | ${r.hwmMiB} | ${r.overBaselineMiB} |`,
      );
    }
    mkdirSync(join(REPO_ROOT, "bench/results"), { recursive: true });
    writeFileSync(
      join(REPO_ROOT, "bench/results/backup-memory.json"),
      `${JSON.stringify({ machine: machineLine(), rows, results }, null, 2)}\n`,
    );
  } finally {
    for (const cp of cps) await cp.close().catch(() => undefined);
    await run("docker", ["rm", "-f", "-v", name]).catch(() => undefined);
    await s3.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function row(
  label: string,
  bytes: number,
  partSize: number,
  m: { ms: number; baseline: number; peak: number; hwm: number },
): Record<string, unknown> {
  const peak = Math.max(m.peak, Number.isNaN(m.hwm) ? 0 : m.hwm);
  return {
    label,
    dumpMb: (bytes / 1e6).toFixed(0),
    partMiB: partSize / MiB,
    seconds: (m.ms / 1000).toFixed(1),
    mbPerSecond: (bytes / 1e6 / (m.ms / 1000)).toFixed(1),
    baselineMiB: (m.baseline / MiB).toFixed(0),
    peakMiB: (m.peak / MiB).toFixed(0),
    hwmMiB: (m.hwm / MiB).toFixed(0),
    overBaselineMiB: ((peak - m.baseline) / MiB).toFixed(0),
  };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
