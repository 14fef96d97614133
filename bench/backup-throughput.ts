/**
 * Backup throughput (end to end): how long a backup of the same ≥ 200 MB project database takes
 * through SupaManager — `POST /platform/database/{ref}/backups` until `GET …/backups` lists it
 * COMPLETED (control plane opens the multipart upload and queues the job, the agent runs pg_dump
 * through Docker exec and uploads through presigned URLs, the control plane completes and checks
 * the object) — against what an operator would script by hand: `docker exec <db> pg_dump -Fc … |`
 * an @aws-sdk/lib-storage `Upload` to the same s3rver, with the same part size (64 MiB) and one
 * part in flight, like the agent.
 *
 * Real parts: the built control plane and agent (bench/docker-fleet.ts), the local release's
 * PostgreSQL 15 in Docker (`npm run images:test`), s3rver in a child process. The database holds
 * `--mb` MiB of random bytes (1 MiB rows from gen_random_uuid()), so pg_dump's compression cannot
 * shrink it. Three rounds of each path, interleaved (the order alternates per round); medians.
 *
 * Usage: npm run bench:backup-throughput [-- --mb 210 --rounds 3]
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DeleteObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import pg from "pg";
import { startS3rver } from "../control-plane/src/test-support/s3.js";
import { removeProjectLeftovers } from "../test/support/docker.js";
import { REPO_ROOT } from "../test/support/process.js";
import { BENCH_REGION, startBenchFleet } from "./docker-fleet.js";
import { api, machineLine, median, until } from "./support.js";

const { values } = parseArgs({
  options: { mb: { type: "string", default: "210" }, rounds: { type: "string", default: "3" } },
});
const targetMib = Number(values.mb);
const rounds = Number(values.rounds);
const BUCKET = "bench-backups";
const PART_BYTES = 64 * 1024 * 1024;
const DB_PASS = "backup-throughput-db-password-1";

interface Sample {
  round: number;
  path: "supamanager" | "plain";
  seconds: number;
  bytes: number;
}

function dockerOut(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`docker ${args[0]}: ${err}`))));
  });
}

async function main() {
  const s3 = await startS3rver({ buckets: [BUCKET] });
  // The organization's target is s3rver on loopback: a private endpoint, refused by default.
  const fleet = await startBenchFleet("bkthru", "49500-49999", { SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS: "allow" });
  const { url, token } = fleet;
  let ref = "";
  const samples: Sample[] = [];
  try {
    await api(url, `/platform/organizations/${fleet.orgSlug}/backup-targets`, {
      method: "POST",
      token,
      body: {
        endpoint: s3.endpoint,
        bucket: BUCKET,
        prefix: "sm",
        region: s3.region,
        force_path_style: true,
        access_key_id: s3.accessKeyId,
        secret_access_key: s3.secretAccessKey,
      },
    });
    // `small` (1.5 CPUs for the stack), as in the end-to-end test: nano's half CPU would make this
    // a benchmark of pg_dump's compression under a CPU quota.
    ref = (
      await api<{ ref: string }>(url, "/platform/projects", {
        method: "POST",
        token,
        body: {
          name: "backup throughput",
          organization_slug: fleet.orgSlug,
          db_pass: DB_PASS,
          db_region: BENCH_REGION,
          desired_instance_size: "small",
        },
      })
    ).ref;
    await until(`${ref} ACTIVE_HEALTHY`, 180_000, async () => {
      const { status } = await api<{ status: string }>(url, `/platform/projects/${ref}/status`, { token });
      if (status === "INIT_FAILED") {
        const d = await api<{ status_reason?: string }>(url, `/platform/projects/${ref}`, { token });
        throw new Error(`${ref} failed to start: ${d.status_reason ?? "no reason given"}`);
      }
      return status === "ACTIVE_HEALTHY";
    });
    const detail = await api<{ db_host: string; db_port: number }>(url, `/platform/projects/${ref}`, { token });

    const client = new pg.Client({
      host: detail.db_host,
      port: detail.db_port,
      user: "postgres",
      database: "postgres",
      password: DB_PASS,
    });
    await client.connect();
    try {
      await client.query("create table public.big (id int primary key, payload bytea not null)");
      await client.query("alter table public.big alter column payload set storage external");
      for (let from = 1; from <= targetMib; from += 30) {
        await client.query(
          `insert into public.big select i, (select string_agg(uuid_send(gen_random_uuid()), ''::bytea) from generate_series(1, 65536) where i > 0)
           from generate_series($1::int, $2::int) i`,
          [from, Math.min(targetMib, from + 29)],
        );
      }
      const { rows } = await client.query<{ size: string }>("select pg_database_size('postgres')::text as size");
      console.log(`database: ${(Number(rows[0]?.size) / 1e6).toFixed(0)} MB`);
    } finally {
      await client.end();
    }

    const container = await dockerOut([
      "ps",
      "-q",
      "--filter",
      `label=com.docker.compose.project=${ref}`,
      "--filter",
      "label=com.docker.compose.service=db",
    ]);
    if (!container || container.includes("\n")) throw new Error(`expected one db container, got "${container}"`);

    const viaSupaManager = async (): Promise<{ seconds: number; bytes: number }> => {
      const t0 = performance.now();
      const b = await api<{ id: number }>(url, `/platform/database/${ref}/backups`, { method: "POST", token });
      let done: { status: string; size_bytes: number | null; error: string | null } | undefined;
      await until(`backup ${b.id}`, 600_000, async () => {
        const list = await api<{
          backups: { id: number; status: string; size_bytes: number | null; error: string | null }[];
        }>(url, `/platform/database/${ref}/backups`, { token });
        done = list.backups.find((x) => x.id === b.id);
        if (done?.status === "FAILED") throw new Error(`backup ${b.id} failed: ${done.error}`);
        return done?.status === "COMPLETED";
      });
      return { seconds: (performance.now() - t0) / 1000, bytes: done?.size_bytes ?? 0 };
    };

    const plain = async (round: number): Promise<{ seconds: number; bytes: number }> => {
      const key = `plain/${ref}/${round}/db.dump`;
      const t0 = performance.now();
      const child = spawn(
        "docker",
        ["exec", container, "pg_dump", "--format=custom", "--no-password", "-U", "postgres", "-d", "postgres"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const upload = new Upload({
        client: s3.client,
        params: { Bucket: BUCKET, Key: key, Body: child.stdout },
        partSize: PART_BYTES,
        queueSize: 1,
      });
      await upload.done();
      const code = await exited;
      if (code !== 0) throw new Error(`pg_dump exited ${code}: ${stderr}`);
      const seconds = (performance.now() - t0) / 1000;
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      await s3.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      return { seconds, bytes: head.ContentLength ?? 0 };
    };

    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? (["supamanager", "plain"] as const) : (["plain", "supamanager"] as const);
      for (const path of order) {
        const r = path === "supamanager" ? await viaSupaManager() : await plain(round);
        samples.push({ round, path, ...r });
        console.log(`round ${round} ${path}: ${r.seconds.toFixed(1)} s, ${(r.bytes / 1e6).toFixed(1)} MB`);
      }
    }
  } finally {
    await fleet.stop();
    if (ref) await removeProjectLeftovers(ref);
    await s3.stop();
  }

  const summary = (path: Sample["path"]) => {
    const xs = samples.filter((s) => s.path === path);
    const seconds = median(xs.map((s) => s.seconds));
    const bytes = median(xs.map((s) => s.bytes));
    return {
      seconds: Number(seconds.toFixed(2)),
      dumpMb: Number((bytes / 1e6).toFixed(1)),
      mbPerSecond: Number((bytes / 1e6 / seconds).toFixed(1)),
    };
  };
  const supamanager = summary("supamanager");
  const plainSummary = summary("plain");
  const result = {
    machine: machineLine(),
    date: new Date().toISOString(),
    databaseMiB: targetMib,
    partMiB: PART_BYTES / 2 ** 20,
    rounds,
    supamanager,
    plain: plainSummary,
    timeRatio: Number((supamanager.seconds / plainSummary.seconds).toFixed(2)),
    samples: samples.map((s) => ({ ...s, seconds: Number(s.seconds.toFixed(2)) })),
  };
  console.log(JSON.stringify(result, null, 2));
  const dir = join(REPO_ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "backup-throughput.json"), `${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
