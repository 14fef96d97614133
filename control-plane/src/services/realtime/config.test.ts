import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { urlForDatabase, withAdminClient } from "../../../../test/support/pg.js";
import { realtimeChanges, TENANT_SQL } from "./config.js";

/**
 * The tenant SQL against a real PostgreSQL holding Realtime's own tables as its migrations create
 * them (supabase/realtime priv/repo/migrations: `_realtime.tenants` with the limit columns, the
 * encrypted jwt_secret; `_realtime.extensions` with the tenant's `postgres_cdc_rls` settings).
 * The agent path around it is covered by routes/platform/projects/realtime.test.ts.
 */

const name = `supamanager_realtime_${Date.now().toString(36)}`;
let client: pg.Client;

const FIXTURES = `
create schema _realtime;
create table _realtime.tenants (
  id uuid primary key default gen_random_uuid(), name text, external_id text unique, jwt_secret text,
  max_concurrent_users integer not null default 200, max_events_per_second integer not null default 100,
  postgres_cdc_default text default 'postgres_cdc_rls', max_bytes_per_second integer not null default 100000,
  max_channels_per_client integer not null default 100, max_joins_per_second integer not null default 100,
  suspend boolean default false, jwt_jwks jsonb, notify_private_alpha boolean default false,
  private_only boolean not null default false, migrations_ran integer default 0,
  max_presence_events_per_second integer default 1000, max_payload_size_in_kb integer default 3000,
  inserted_at timestamp not null default now(), updated_at timestamp not null default now());
create table _realtime.extensions (
  id uuid primary key default gen_random_uuid(), type text, settings jsonb,
  tenant_external_id text references _realtime.tenants (external_id) on delete cascade,
  inserted_at timestamp not null default now(), updated_at timestamp not null default now());
insert into _realtime.tenants (name, external_id, jwt_secret, max_concurrent_users, private_only)
  values ('realtime-dev', 'realtime-dev', 'encrypted-secret', 250, true), ('other', 'other', 's', 9, false);
insert into _realtime.extensions (type, settings, tenant_external_id)
  values ('postgres_cdc_rls', '{"db_host": "encrypted", "db_password": "encrypted", "db_pool": 3}', 'realtime-dev');
`;

beforeAll(async () => {
  await withAdminClient((c) => c.query(`create database "${name}"`));
  client = new pg.Client({ connectionString: urlForDatabase(name) });
  await client.connect();
  await client.query(FIXTURES);
});
afterAll(async () => {
  await client?.end();
  await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
});

describe("TENANT_SQL on a real PostgreSQL", () => {
  it("reads the self-hosted tenant's limits and its extension's pool size, and nothing secret", async () => {
    const { rows } = await client.query(TENANT_SQL);
    expect(rows).toEqual([
      {
        private_only: true,
        max_concurrent_users: 250,
        max_events_per_second: 100,
        max_bytes_per_second: 100000,
        max_channels_per_client: 100,
        max_joins_per_second: 100,
        max_presence_events_per_second: 1000,
        max_payload_size_in_kb: 3000,
        suspend: false,
        connection_pool: 3,
      },
    ]);
    expect(JSON.stringify(rows)).not.toMatch(/encrypted/);
  });

  it("an older Realtime without the presence and payload columns: those are null, not an error", async () => {
    await client.query(
      "alter table _realtime.tenants drop column max_presence_events_per_second, drop column max_payload_size_in_kb",
    );
    await client.query("update _realtime.extensions set settings = settings - 'db_pool'");
    const { rows } = await client.query(TENANT_SQL);
    expect(rows[0]).toMatchObject({
      max_concurrent_users: 250,
      max_presence_events_per_second: null,
      max_payload_size_in_kb: null,
      connection_pool: null,
    });
  });

  it("no tenant yet: no row", async () => {
    await client.query("delete from _realtime.tenants where external_id = 'realtime-dev'");
    expect((await client.query(TENANT_SQL)).rows).toEqual([]);
  });
});

describe("realtimeChanges", () => {
  const current = {
    private_only: false,
    connection_pool: null,
    max_concurrent_users: 200,
    max_events_per_second: 100,
    max_bytes_per_second: 100000,
    max_channels_per_client: 100,
    max_joins_per_second: 100,
    max_presence_events_per_second: null,
    max_payload_size_in_kb: 3000,
    suspend: false,
  };
  it("names only the fields whose value differs, sorted", () => {
    expect(realtimeChanges({ max_concurrent_users: 200, suspend: false }, current)).toEqual([]);
    expect(realtimeChanges({ suspend: true, max_concurrent_users: 201, private_only: false }, current)).toEqual([
      "max_concurrent_users",
      "suspend",
    ]);
    // A value Realtime keeps none of cannot be set either.
    expect(realtimeChanges({ connection_pool: 2 }, current)).toEqual(["connection_pool"]);
  });
});
