import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { urlForDatabase, withAdminClient } from "../../../../test/support/pg.js";
import { DISK_USAGE_SQL, WAL_SIZE_SQL } from "./utilization.js";

/**
 * The disk SQL on a real PostgreSQL, as a superuser and as a plain role (postgres-meta's role
 * may be either): the databases' size is always read, the WAL only where the role may list it.
 * The agent path around it: routes/platform/projects/disk.test.ts.
 */

const name = `supamanager_disk_${Date.now().toString(36)}`;
const role = `sm_disk_${Date.now().toString(36)}`;
let admin: pg.Client;

beforeAll(async () => {
  await withAdminClient(async (c) => {
    await c.query(`create database "${name}"`);
    await c.query(`create role "${role}" login`);
  });
  admin = new pg.Client({ connectionString: urlForDatabase(name) });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await withAdminClient(async (c) => {
    await c.query(`drop database if exists "${name}" with (force)`);
    await c.query(`drop role if exists "${role}"`);
  });
});

describe("DISK_USAGE_SQL and WAL_SIZE_SQL on a real PostgreSQL", () => {
  it("a superuser: every database's size, and the WAL", async () => {
    const { rows } = await admin.query(DISK_USAGE_SQL);
    expect(rows[0].wal_visible).toBe(true);
    // Other test files create and drop databases beside this one, so the total is compared with
    // what it must at least hold: this database and the server's own \`postgres\` database.
    const { rows: own } = await admin.query(
      "select (pg_database_size(current_database()) + pg_database_size('postgres'))::bigint as n",
    );
    expect(Number(rows[0].db_size_bytes)).toBeGreaterThanOrEqual(Number(own[0].n));
    const wal = await admin.query(WAL_SIZE_SQL);
    expect(Number(wal.rows[0].wal_size_bytes)).toBeGreaterThan(0);
  });

  it("a plain role: the databases it may connect to, no error, and the WAL reported as not visible", async () => {
    await admin.query("begin");
    try {
      await admin.query(`set local role "${role}"`);
      const { rows } = await admin.query(DISK_USAGE_SQL);
      expect(rows[0].wal_visible).toBe(false);
      expect(Number(rows[0].db_size_bytes)).toBeGreaterThan(0);
      // What the route avoids: the WAL listing itself is refused for this role.
      await expect(admin.query(WAL_SIZE_SQL)).rejects.toThrow(/permission denied for function pg_ls_waldir/);
    } finally {
      await admin.query("rollback");
    }
  });
});
