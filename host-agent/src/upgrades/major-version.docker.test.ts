import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { newProjectRef } from "@supamanager/shared";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { run } from "../runtime/exec.js";
import { execInContainer } from "../runtime/service-exec.js";
import { psqlIn, startPostgresService } from "../test-support/backup-rig.js";
import { UPGRADE_SAMPLE_SQL } from "../test-support/upgrade-data.js";
import { type DataMoveProgress, moveDataAcrossMajors } from "./major-version.js";

/**
 * The data step across majors on the real engine: the local PostgreSQL 15 image with data (an
 * extension with an index on its operator class, views, functions, a trigger, sequences, a second
 * database, database settings and ACLs, roles with passwords, 110k rows) moved into the
 * PostgreSQL 17 image, both images from images/manifest.local.json. In CI a missing engine or
 * image is a failure, not a skip.
 */
const REPO_ROOT = join(import.meta.dirname, "../../..");
const MANIFEST = join(REPO_ROOT, "images/manifest.local.json");
const dockerUp = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
const inCi = process.env.CI === "true";
const runnable = dockerUp && existsSync(MANIFEST);
if (!runnable && !inCi) {
  console.warn(
    "\n⚠️  host-agent/src/upgrades/major-version.docker.test.ts SKIPPED: needs `docker info` and images/manifest.local.json (npm run images:test).\n",
  );
}

const PASSWORD = `pw-${randomBytes(8).toString("hex")}`;
const READER_PASSWORD = `rd-${randomBytes(8).toString("hex")}`;

const DATA_SQL = `${UPGRADE_SAMPLE_SQL}
create materialized view tier_counts as select tags -> 'tier' as tier, count(*) as n from customers group by 1;
create role app_reader login password '${READER_PASSWORD}';
grant usage on schema audit to app_reader;
grant select on all tables in schema public, audit to app_reader;
revoke temporary on database app from public;
alter database app set work_mem = '8MB';
comment on database app is 'the application';
create role app_owner nologin;
-- As the local release's init script does: PostgreSQL 17 changed this function's arguments, so
-- the dumped REVOKE cannot apply there (major-version.ts tolerableRestoreErrors).
revoke execute on function pg_create_logical_replication_slot(name, name, boolean, boolean) from public;
`;

describe.skipIf(!runnable && !inCi)("moving data from PostgreSQL 15 to 17 on real containers", () => {
  const docker = new Docker();
  const exec = (c: string, cmd: readonly string[], o: { stdin: boolean }) => execInContainer(docker, c, cmd, o);
  const names: string[] = [];
  let images: Record<string, string>;

  async function start(image: string, tag: string): Promise<string> {
    const name = `sm-major-test-${tag}-${newProjectRef()}`;
    names.push(name);
    await startPostgresService({ name, ref: newProjectRef(), image, password: PASSWORD });
    return name;
  }
  const pg15 = () => start(images.postgres as string, "15");
  const pg17 = () => start(images["postgres-17"] as string, "17");

  let oldName: string;
  const counts = (name: string) =>
    psqlIn(
      name,
      "select (select count(*) from customers) || ' ' || (select count(*) from orders) || ' ' || (select count(*) from audit.events)",
    );

  beforeAll(async () => {
    if (!dockerUp) throw new Error("CI=true and no Docker engine answers `docker info`");
    if (!existsSync(MANIFEST)) throw new Error(`CI=true and ${MANIFEST} is missing (npm run images:test)`);
    images = JSON.parse(readFileSync(MANIFEST, "utf8")) as Record<string, string>;
    if (!images.postgres || !images["postgres-17"]) {
      throw new Error("images/manifest.local.json lacks postgres or postgres-17 (npm run images:test)");
    }
    oldName = await pg15();
    await psqlIn(oldName, DATA_SQL, { timeoutMs: 120_000 });
    await psqlIn(oldName, "create database second owner app_owner");
    await psqlIn(oldName, "create table notes (id int primary key, body text); insert into notes values (1, 'hi')", {
      db: "second",
    });
  }, 180_000);

  afterAll(async () => {
    for (const n of names) await run("docker", ["rm", "-f", "-v", n]).catch(() => undefined);
  });

  it("copies roles, databases, extensions, views, functions and every row, and verifies them", async () => {
    const newName = await pg17();
    // What a release's init scripts do in the new cluster: a role the old cluster has too.
    await psqlIn(newName, "create role app_reader nologin", { db: "postgres" });
    const progress: DataMoveProgress[] = [];
    const result = await moveDataAcrossMajors({
      exec,
      oldContainer: oldName,
      newContainer: newName,
      log: memoryLogger(),
      onProgress: (p) => progress.push(p),
      progressIntervalMs: 0,
    });

    expect(result.fromVersion).toMatch(/^15\./);
    expect(result.toVersion).toMatch(/^17\./);
    expect(result.databases.map((d) => d.name)).toEqual(["app", "postgres", "second"]);
    const app = result.databases.find((d) => d.name === "app");
    expect(app?.rows).toBe(110_000);
    expect(app?.tables).toBe(3);
    expect(result.bytes).toBeGreaterThan(1_000_000);
    expect(new Set(progress.map((p) => p.phase))).toEqual(new Set(["check", "roles", "database", "analyze", "verify"]));
    expect(progress.filter((p) => p.phase === "database").at(-1)?.totalBytes).toBeGreaterThan(0);

    // The same rows and objects, working, on 17.
    expect(await psqlIn(newName, "select current_setting('server_version_num')::int / 10000")).toBe("17");
    expect(await counts(newName)).toBe("30000 70000 10000");
    expect(await psqlIn(newName, "select count(*) from big_customers")).toBe(
      await psqlIn(oldName, "select count(*) from big_customers"),
    );
    expect(await psqlIn(newName, "select spent_by(42)")).toBe(await psqlIn(oldName, "select spent_by(42)"));
    expect(await psqlIn(newName, "select string_agg(tier || '=' || n, ',' order by tier) from tier_counts")).toBe(
      "0=10000,1=10000,2=10000",
    );
    expect(await psqlIn(newName, "select count(*) from customers where name like '%omer 2999%'")).toBe("11");
    expect(await psqlIn(newName, "select extname from pg_extension order by 1")).toBe("hstore\npg_trgm\nplpgsql");
    // Sequences and the trigger carry on where they were.
    expect(await psqlIn(newName, "insert into orders (customer_id, total) values (1, 5) returning id")).toMatch(
      /^70001\b/,
    );
    expect(await psqlIn(newName, "select count(*) from audit.events")).toBe("10001");
    // Database properties came with --create; the role kept its old password (not the new init's).
    expect(await psqlIn(newName, "select has_database_privilege('app_reader', 'app', 'TEMPORARY')")).toBe("f");
    expect(
      await psqlIn(
        newName,
        "select array_to_string(setconfig, ',') from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where datname = 'app'",
      ),
    ).toBe("work_mem=8MB");
    expect(
      await psqlIn(newName, "select shobj_description(oid, 'pg_database') from pg_database where datname = 'app'"),
    ).toBe("the application");
    const asReader = await run("docker", [
      "exec",
      "-e",
      `PGPASSWORD=${READER_PASSWORD}`,
      newName,
      "psql",
      "-h",
      "127.0.0.1",
      "-U",
      "app_reader",
      "-d",
      "app",
      "-tAc",
      "select count(*) from audit.events",
    ]);
    expect(asReader.trim()).toBe("10001");
    expect(await psqlIn(newName, "select pg_get_userbyid(datdba) from pg_database where datname = 'second'")).toBe(
      "app_owner",
    );
    expect(await psqlIn(newName, "select body from notes", { db: "second" })).toBe("hi");
    // Statistics exist: the new cluster was analyzed.
    expect(Number(await psqlIn(newName, "select count(*) from pg_stats where tablename = 'orders'"))).toBeGreaterThan(
      0,
    );
    // The old server is untouched.
    expect(await counts(oldName)).toBe("30000 70000 10000");
  }, 300_000);

  it("fails with pg_restore's reason when the new server lacks an extension, and leaves the old data alone", async () => {
    const newName = await pg17();
    await run("docker", ["exec", newName, "rm", "/usr/share/postgresql/17/extension/hstore.control"]);
    const err = await moveDataAcrossMajors({
      exec,
      oldContainer: oldName,
      newContainer: newName,
      log: memoryLogger(),
    }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe("DataMoveError");
    expect(err?.message).toMatch(/pg_restore of database "app" into the new server failed/);
    expect(err?.message).toMatch(/hstore/);
    expect(await counts(oldName)).toBe("30000 70000 10000");
  }, 300_000);

  it("refuses to move data to an older major", async () => {
    const newer = await pg17();
    const err = await moveDataAcrossMajors({
      exec,
      oldContainer: newer,
      newContainer: oldName,
      log: memoryLogger(),
    }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/older than the old server's 17\./);
    expect(await counts(oldName)).toBe("30000 70000 10000");
  }, 120_000);
});
