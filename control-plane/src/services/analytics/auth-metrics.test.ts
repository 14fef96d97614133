import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { urlForDatabase, withAdminClient } from "../../../../test/support/pg.js";
import { authUsersSql } from "./usage.js";

/**
 * The Auth overview's user counts on a real PostgreSQL with the columns of GoTrue's auth.users
 * that the SQL reads (created_at, last_sign_in_at). The route around it:
 * routes/platform/projects/observability/auth-metrics.test.ts.
 */

const name = `supamanager_authmetrics_${Date.now().toString(36)}`;
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const ago = (h: number) => new Date(NOW - h * 3_600_000).toISOString();
let client: pg.Client;

beforeAll(async () => {
  await withAdminClient((c) => c.query(`create database "${name}"`));
  client = new pg.Client({ connectionString: urlForDatabase(name) });
  await client.connect();
  await client.query(`create schema auth;
    create table auth.users (id uuid primary key default gen_random_uuid(), email text,
      created_at timestamptz, last_sign_in_at timestamptz);`);
  const rows: [number, number | null][] = [
    [2, 1], // signed up and in today
    [30, 3], // signed up yesterday, in today
    [30, 40], // signed up the day before, last signed in then too
    [100, 47], // in during the previous day
    [100, null], // never signed in
    [100, 0.5],
  ];
  for (const [created, signedIn] of rows) {
    await client.query("insert into auth.users (email, created_at, last_sign_in_at) values ($1, $2, $3)", [
      "u@example.com",
      ago(created),
      signedIn === null ? null : ago(signedIn),
    ]);
  }
});
afterAll(async () => {
  await client?.end();
  await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
});

describe("authUsersSql on a real PostgreSQL", () => {
  it("counts sign-ins and sign-ups of the last day and of the day before", async () => {
    const { rows } = await client.query(authUsersSql(NOW));
    expect(rows[0]).toEqual({
      current_active_users: "3",
      previous_active_users: "2",
      current_sign_up_count: "1",
      previous_sign_up_count: "2",
    });
  });
});
