/**
 * Upgrades across PostgreSQL majors (issue 18, ADR 0038), on this machine's Docker engine with
 * the locally built images (npm run images:test). For each database size (MB):
 *
 * A. The whole upgrade as SupaManager runs it: the built control plane and host agent, a project on
 *    `local` (PostgreSQL 15) filled to the size, upgraded to `local-17` (dump/restore). Measured:
 *    total time (POST → COMPLETED), downtime (the longest stretch in which a request through the
 *    project's gateway — postgres-meta, then the database — failed; probed every 100 ms) and the
 *    agent's own step timings from its journal. The project's host ports come from 21700-21799,
 *    below Linux's ephemeral range (32768+), where other processes' sockets may hold them.
 * B. The data step alone, three ways, on the same data in throwaway containers:
 *    - dump/restore: moveDataAcrossMajors (what the agent runs), old and new server side by side;
 *    - pg_upgrade --copy and pg_upgrade --link, PostgreSQL 17's pg_upgrade run in the 17 image with
 *      the 15 image's binaries (and the libraries 17's Debian lacks) copied beside it, after a
 *      plain copy of the data directory (the rollback copy the procedure makes anyway);
 *    followed by the planner statistics each needs (dump/restore analyzes; pg_upgrade 17 carries
 *    no statistics either: the same `vacuumdb --analyze-only` is timed for it).
 *
 *   npm run bench:upgrade -- --sizes 100,1000 [--out bench/results/upgrade.json] [--skip-procedure]
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import Docker from "dockerode";
import pg from "pg";
import { memoryLogger } from "../host-agent/src/log.js";
import { execInContainer } from "../host-agent/src/runtime/service-exec.js";
import { moveDataAcrossMajors } from "../host-agent/src/upgrades/major-version.js";
import { removeProjectLeftovers } from "../test/support/docker.js";
import { REPO_ROOT } from "../test/support/process.js";
import { startBenchFleet } from "./docker-fleet.js";
import { api, machineLine, until } from "./support.js";

const run = promisify(execFile);
const docker = (args: string[], timeoutMs = 30 * 60_000) =>
  run("docker", args, { maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }).then((r) => r.stdout.trim());

const { values: opts } = parseArgs({
  options: {
    sizes: { type: "string", default: "100,1000" },
    out: { type: "string", default: join(REPO_ROOT, "bench/results/upgrade.json") },
    "skip-procedure": { type: "boolean", default: false },
  },
});
const SIZES = (opts.sizes ?? "100").split(",").map(Number);
const images = JSON.parse(readFileSync(join(REPO_ROOT, "images/manifest.local.json"), "utf8")) as Record<
  string,
  string
>;
const PG15 = images.postgres as string;
const PG17 = images["postgres-17"] as string;
const PASSWORD = "bench-upgrade-password-0123";
const tag = Date.now().toString(36);

/**
 * SQL that fills a database to about `mb` MB: two tables (a wide one with an index, a narrow one
 * with a foreign key), an extension, a view and a function.
 */
function fillSql(mb: number): string {
  // ~520 bytes per `docs` row on disk (heap + its share of the index), ~80 per `events` row.
  const docs = Math.round((mb * 0.8 * 1e6) / 520);
  const events = Math.round((mb * 0.2 * 1e6) / 80);
  return `
create extension if not exists pg_trgm;
create table docs (id bigserial primary key, title text not null, body text not null);
insert into docs (title, body) select 'doc ' || g, repeat(md5(g::text), 12) from generate_series(1, ${docs}) g;
create index docs_title on docs (title);
create table events (id bigserial primary key, doc_id bigint references docs(id), at timestamptz default now());
insert into events (doc_id) select (g % ${docs}) + 1 from generate_series(1, ${events}) g;
create view recent_events as select * from events order by id desc limit 100;
create function doc_count() returns bigint language sql stable as $$ select count(*) from docs $$;
`;
}

const sec = (ms: number) => Math.round(ms / 100) / 10;

// ---------------------------------------------------------------- A. the whole procedure

interface ProcedureResult {
  sizeMb: number;
  dbSizeMb: number;
  totalS: number;
  downtimeS: number;
  failedProbes: number;
  steps: Record<string, number>;
}

async function procedure(sizeMb: number): Promise<ProcedureResult> {
  const fleet = await startBenchFleet(`upgrade${sizeMb}`, "21700-21799");
  let ref = "";
  try {
    ref = await fleet.createHealthyProject(`upgrade-${sizeMb}`, PASSWORD);
    const detail = await api<{ db_host: string; db_port: number; restUrl: string }>(
      fleet.url,
      `/platform/projects/${ref}`,
      { token: fleet.token },
    );
    const client = new pg.Client({
      host: detail.db_host,
      port: detail.db_port,
      user: "postgres",
      database: "postgres",
      password: PASSWORD,
    });
    await client.connect();
    const loadStarted = Date.now();
    await client.query(fillSql(sizeMb));
    const size = await client.query<{ n: string }>("select pg_database_size('postgres') as n");
    await client.end();
    const dbSizeMb = Math.round(Number(size.rows[0]?.n) / 1e6);
    console.log(`  [procedure ${sizeMb} MB] loaded ${dbSizeMb} MB in ${sec(Date.now() - loadStarted)} s`);

    const keys = await api<{ name: string; api_key: string }[]>(fleet.url, `/v1/projects/${ref}/api-keys?reveal=true`, {
      token: fleet.token,
    });
    const serviceKey = keys.find((k) => k.name === "service_role")?.api_key;
    if (!serviceKey) throw new Error("no service_role key");
    const gateway = new URL(detail.restUrl).origin;
    // A request an app's SQL would make: gateway → postgres-meta → the database.
    const probe = async (): Promise<boolean> => {
      try {
        const res = await fetch(`${gateway}/pg/query`, {
          method: "POST",
          headers: { apikey: serviceKey, "content-type": "application/json" },
          body: JSON.stringify({ query: "select 1 as ok" }),
          signal: AbortSignal.timeout(5000),
        });
        await res.arrayBuffer();
        return res.ok;
      } catch {
        return false;
      }
    };
    await until("the gateway probe to answer before the upgrade", 60_000, probe, 500);

    let probing = true;
    let failed = 0;
    let downSince: number | null = null;
    let longestDown = 0;
    const prober = (async () => {
      while (probing) {
        const t = Date.now();
        const ok = await probe();
        if (!ok) {
          failed++;
          downSince ??= t;
        } else if (downSince !== null) {
          longestDown = Math.max(longestDown, t - downSince);
          downSince = null;
        }
        await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
      }
    })();
    const started = Date.now();
    const up = await api<{ id: number }>(fleet.url, `/platform/projects/${ref}/upgrade`, {
      method: "POST",
      token: fleet.token,
      body: { target_release: "local-17", allow_without_backup: true },
    });
    let last = "";
    await until(
      "the upgrade to end",
      60 * 60_000,
      async () => {
        const s = await api<{ upgrade: { status: string; step: string; error: string | null } }>(
          fleet.url,
          `/platform/projects/${ref}/upgrade/status?id=${up.id}`,
          { token: fleet.token },
        );
        if (s.upgrade.step !== last) {
          last = s.upgrade.step;
          console.log(`  [procedure ${sizeMb} MB] ${sec(Date.now() - started)} s: ${last}`);
        }
        if (s.upgrade.status === "RUNNING") return false;
        if (s.upgrade.status !== "COMPLETED") throw new Error(`upgrade ${s.upgrade.status}: ${s.upgrade.error}`);
        return true;
      },
      250,
    );
    const totalMs = Date.now() - started;
    // Until the gateway answers again (the project may be healthy a moment before the probe sees it).
    await until("the gateway to answer after the upgrade", 120_000, probe);
    probing = false;
    await prober;
    if (downSince !== null) longestDown = Math.max(longestDown, Date.now() - downSince);
    const journalDir = join(fleet.dataDir, "upgrades");
    const journal = readdirSync(journalDir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => JSON.parse(readFileSync(join(journalDir, f), "utf8")) as { timings: { step: string; ms: number }[] })
      .at(-1);
    const steps = Object.fromEntries((journal?.timings ?? []).map((t) => [t.step, sec(t.ms)]));
    return { sizeMb, dbSizeMb, totalS: sec(totalMs), downtimeS: sec(longestDown), failedProbes: failed, steps };
  } finally {
    await fleet.stop();
    if (ref) await removeProjectLeftovers(ref);
  }
}

// ---------------------------------------------------------------- B. the data step three ways

interface DataStepResult {
  sizeMb: number;
  dbSizeMb: number;
  dumpRestore: { dataS: number; analyzeS: number; verifyS: number; totalS: number };
  pgUpgradeCopy: { copyS: number; upgradeS: number; analyzeS: number; totalS: number };
  pgUpgradeLink: { copyS: number; upgradeS: number; analyzeS: number; totalS: number };
}

const engine = new Docker();
const exec = (c: string, cmd: readonly string[], o: { stdin: boolean }) => execInContainer(engine, c, cmd, o);
const cleanups: (() => Promise<unknown>)[] = [];

async function waitHealthy(name: string): Promise<void> {
  await until(
    `${name} healthy`,
    300_000,
    async () => {
      const s = await docker([
        "inspect",
        "-f",
        "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
        name,
      ]);
      if (s.startsWith("exited")) throw new Error(`${name} exited: ${await docker(["logs", "--tail", "20", name])}`);
      return s === "running healthy";
    },
    300,
  );
}

async function server(name: string, image: string, volumeMount: string): Promise<void> {
  await docker(["run", "-d", "--name", name, "-e", `POSTGRES_PASSWORD=${PASSWORD}`, "-v", volumeMount, image]);
  cleanups.push(() => docker(["rm", "-f", "-v", name]).catch(() => ""));
  await waitHealthy(name);
}

const psql = (name: string, sql: string, db = "postgres") =>
  docker(["exec", name, "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", db, "-tAc", sql]);

/** The 15 image's binaries, share files and the libraries 17's Debian lacks, in three volumes. */
async function pg15Binaries(): Promise<string[]> {
  const vols = [`bench-pg15-lib-${tag}`, `bench-pg15-share-${tag}`, `bench-pg15-so-${tag}`];
  for (const v of vols) cleanups.push(() => docker(["volume", "rm", "-f", v]).catch(() => ""));
  const missing = (
    await docker([
      "run",
      "--rm",
      "--entrypoint",
      "sh",
      PG17,
      "-c",
      "ls /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu 2>/dev/null | sort -u",
    ])
  ).split("\n");
  const have = new Set(missing);
  const needed = (
    await docker([
      "run",
      "--rm",
      "--entrypoint",
      "sh",
      PG15,
      "-c",
      "for f in /usr/lib/postgresql/15/bin/* /usr/lib/postgresql/15/lib/*.so; do ldd $f 2>/dev/null; done | awk '/=>/ {print $1}' | sort -u",
    ])
  )
    .split("\n")
    .filter((l) => l && !have.has(l));
  await docker([
    "run",
    "--rm",
    "--user",
    "0:0",
    "--entrypoint",
    "sh",
    "-v",
    `${vols[0]}:/out/lib`,
    "-v",
    `${vols[1]}:/out/share`,
    "-v",
    `${vols[2]}:/out/so`,
    PG15,
    "-c",
    `cp -a /usr/lib/postgresql/15/. /out/lib/ && cp -a /usr/share/postgresql/15/. /out/share/ && for l in ${needed.join(" ")}; do cp -L /usr/lib/x86_64-linux-gnu/$l /out/so/ 2>/dev/null || cp -L /lib/x86_64-linux-gnu/$l /out/so/; done`,
  ]);
  return vols;
}

async function dataStep(sizeMb: number, binaries: string[]): Promise<DataStepResult> {
  const data = `bench-up-data-${sizeMb}-${tag}`;
  cleanups.push(() => docker(["volume", "rm", "-f", data]).catch(() => ""));
  const old = `bench-up-old-${sizeMb}-${tag}`;
  await server(old, PG15, `${data}:/var/lib/postgresql/data`);
  const loadStarted = Date.now();
  await psql(old, fillSql(sizeMb));
  const dbSizeMb = Math.round(Number(await psql(old, "select pg_database_size('postgres')")) / 1e6);
  console.log(`  [data step ${sizeMb} MB] loaded ${dbSizeMb} MB in ${sec(Date.now() - loadStarted)} s`);

  // 1. dump/restore, as the agent runs it.
  const fresh = `bench-up-new-${sizeMb}-${tag}`;
  await server(fresh, PG17, `bench-up-new-${sizeMb}-${tag}:/var/lib/postgresql/data`);
  cleanups.push(() => docker(["volume", "rm", "-f", `bench-up-new-${sizeMb}-${tag}`]).catch(() => ""));
  const moved = await moveDataAcrossMajors({
    exec,
    oldContainer: old,
    newContainer: fresh,
    log: memoryLogger(),
  });
  const dumpRestore = {
    dataS: sec(moved.phasesMs.roles + moved.phasesMs.copy),
    analyzeS: sec(moved.phasesMs.analyze),
    verifyS: sec(moved.phasesMs.verify),
    totalS: sec(moved.ms),
  };
  console.log(`  [data step ${sizeMb} MB] dump/restore ${JSON.stringify(dumpRestore)}`);
  await docker(["rm", "-f", "-v", fresh]);
  await docker(["stop", old]);

  // 2, 3. pg_upgrade, copy and link, each on its own copy of the stopped old data.
  const viaPgUpgrade = async (mode: "copy" | "link") => {
    const work = `bench-up-pgu-${mode}-${sizeMb}-${tag}`;
    cleanups.push(() => docker(["volume", "rm", "-f", work]).catch(() => ""));
    const t0 = Date.now();
    await docker([
      "run",
      "--rm",
      "--network",
      "none",
      "--user",
      "0:0",
      "--entrypoint",
      "sh",
      "-v",
      `${data}:/from:ro`,
      "-v",
      `${work}:/pg`,
      PG17,
      "-c",
      "mkdir -p /pg/15 /pg/17 && cp -a /from/. /pg/15/ && chown -R postgres:postgres /pg && chmod 700 /pg/15 /pg/17",
    ]);
    const copyMs = Date.now() - t0;
    const name = `bench-up-pgu-${mode}-${sizeMb}-${tag}`;
    await docker([
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "none",
      "--entrypoint",
      "sleep",
      "-v",
      `${work}:/pg`,
      "-v",
      `${binaries[0]}:/usr/lib/postgresql/15:ro`,
      "-v",
      `${binaries[1]}:/usr/share/postgresql/15:ro`,
      "-v",
      `${binaries[2]}:/opt/pg15-so:ro`,
      PG17,
      "infinity",
    ]);
    cleanups.push(() => docker(["rm", "-f", name]).catch(() => ""));
    const asPostgres = (cmd: string) =>
      docker(["exec", "-u", "postgres", "-w", "/pg", "-e", "LD_LIBRARY_PATH=/opt/pg15-so", name, "sh", "-c", cmd]);
    await asPostgres("initdb -D /pg/17 --username=postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null");
    const t1 = Date.now();
    await asPostgres(
      `pg_upgrade --${mode} -b /usr/lib/postgresql/15/bin -B /usr/lib/postgresql/17/bin -d /pg/15 -D /pg/17 -U postgres >/pg/pg_upgrade.out 2>&1 || { tail -30 /pg/pg_upgrade.out; exit 1; }`,
    );
    const upgradeMs = Date.now() - t1;
    await asPostgres("pg_ctl -D /pg/17 -o \"-c listen_addresses=''\" -w start >/dev/null");
    const t2 = Date.now();
    await asPostgres("vacuumdb --all --analyze-only --quiet -U postgres");
    const analyzeMs = Date.now() - t2;
    const rows = await asPostgres("psql -U postgres -tAc 'select doc_count()'");
    await asPostgres("pg_ctl -D /pg/17 -m fast -w stop >/dev/null");
    await docker(["rm", "-f", name]);
    await docker(["volume", "rm", "-f", work]);
    const r = {
      copyS: sec(copyMs),
      upgradeS: sec(upgradeMs),
      analyzeS: sec(analyzeMs),
      totalS: sec(copyMs + upgradeMs + analyzeMs),
    };
    console.log(`  [data step ${sizeMb} MB] pg_upgrade --${mode} ${JSON.stringify(r)} (docs: ${rows})`);
    return r;
  };
  const pgUpgradeCopy = await viaPgUpgrade("copy");
  const pgUpgradeLink = await viaPgUpgrade("link");
  await docker(["rm", "-f", "-v", old]);
  return { sizeMb, dbSizeMb, dumpRestore, pgUpgradeCopy, pgUpgradeLink };
}

async function main(): Promise<void> {
  console.log(`upgrade benchmark, sizes ${SIZES.join(", ")} MB; ${machineLine()}`);
  const procedures: ProcedureResult[] = [];
  const dataSteps: DataStepResult[] = [];
  try {
    const binaries = await pg15Binaries();
    for (const size of SIZES) {
      dataSteps.push(await dataStep(size, binaries));
      if (!opts["skip-procedure"]) {
        const p = await procedure(size);
        console.log(`  [procedure ${size} MB] ${JSON.stringify(p)}`);
        procedures.push(p);
      }
    }
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
  const result = {
    date: new Date().toISOString(),
    machine: machineLine(),
    load: readFileSync("/proc/loadavg", "utf8").trim(),
    procedures,
    dataSteps,
  };
  writeFileSync(opts.out as string, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
}

await main();
