import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { MIGRATIONS_FOLDER, urlForDatabase, withAdminClient } from "../support/pg.js";
import { REPO_ROOT as ROOT } from "../support/process.js";

/** `npm run migrate` (scripts/migrate.mjs): the deploy step of runtimes that do not migrate at start. */

const run = promisify(execFile);
const migrate = (env: Record<string, string>) =>
  run(process.execPath, ["--import", "tsx", "scripts/migrate.mjs"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", ...env },
    timeout: 60_000,
  });

let dropName: string | undefined;
afterEach(async () => {
  if (dropName) {
    const name = dropName;
    await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
  }
  dropName = undefined;
});

describe("scripts/migrate.mjs", () => {
  it("migrates an empty database, and a second run finds nothing to do", async () => {
    const name = `supamanager_t_${Date.now().toString(36)}_mig`;
    await withAdminClient((c) => c.query(`create database "${name}"`));
    dropName = name;
    const url = urlForDatabase(name);
    const first = await migrate({ DATABASE_URL: url });
    expect(first.stdout).toMatch(/migrations applied/);
    const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, "meta/_journal.json"), "utf8")) as {
      entries: unknown[];
    };
    const count = async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const { rows } = await c.query<{ n: number }>("select count(*)::int as n from drizzle.__drizzle_migrations");
        const profiles = await c.query("select to_regclass('public.profiles') is not null as present");
        return { n: rows[0]?.n, profiles: profiles.rows[0]?.present };
      } finally {
        await c.end();
      }
    };
    expect(await count()).toEqual({ n: journal.entries.length, profiles: true });
    await migrate({ DATABASE_URL: url });
    expect((await count()).n).toBe(journal.entries.length);
  });

  it("without DATABASE_URL it exits 1 with a message", async () => {
    const err = (await migrate({}).catch((e: unknown) => e)) as { code?: number; stderr?: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/DATABASE_URL is not set/);
  });
});
