import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { urlForDatabase, withAdminClient } from "../../../../test/support/pg.js";
import { usageSql } from "./usage.js";

/**
 * The usage statement against a real PostgreSQL: a database shaped like a project with Storage
 * and Auth (storage.objects with object metadata sizes, auth.users with last_sign_in_at), then
 * one without them (the `local` release). The route around it: routes/platform/organizations/usage.test.ts.
 */

const name = `supamanager_usage_${Date.now().toString(36)}`;
let client: pg.Client;
const START = new Date("2026-11-01T00:00:00Z");
const END = new Date("2026-12-01T00:00:00Z");

beforeAll(async () => {
  await withAdminClient((c) => c.query(`create database "${name}"`));
  client = new pg.Client({ connectionString: urlForDatabase(name) });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
});

describe("usageSql on a real PostgreSQL", () => {
  it("without Storage or Auth schemas: the database size, and null for the others", async () => {
    const { rows } = await client.query(usageSql(START, END));
    expect(rows).toHaveLength(1);
    expect(Number(rows[0].database_size)).toBeGreaterThan(1_000_000);
    expect(rows[0].storage_size).toBeNull();
    expect(rows[0].monthly_active_users).toBeNull();
  });

  it("with them: the objects' bytes and the users who signed in within the period", async () => {
    await client.query(`
      create schema storage;
      create table storage.objects (id uuid primary key default gen_random_uuid(), bucket_id text, name text, metadata jsonb);
      insert into storage.objects (bucket_id, name, metadata) values
        ('a', 'x.png', '{"size": 1000, "mimetype": "image/png"}'), ('a', 'y.txt', '{"size": 234}'), ('a', 'folder/', null);
      create schema auth;
      create table auth.users (id uuid primary key default gen_random_uuid(), last_sign_in_at timestamptz);
      insert into auth.users (last_sign_in_at) values
        ('2026-11-03T10:00:00Z'), ('2026-11-30T23:59:59Z'), ('2026-10-31T23:59:59Z'), ('2026-12-01T00:00:00Z'), (null);
    `);
    const { rows } = await client.query(usageSql(START, END));
    expect(Number(rows[0].storage_size)).toBe(1234);
    expect(Number(rows[0].monthly_active_users)).toBe(2);
  });
});
