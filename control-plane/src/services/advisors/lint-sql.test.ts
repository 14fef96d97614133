import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { urlForDatabase, withAdminClient } from "../../../../test/support/pg.js";
import { lintSql } from "./lint-sql.js";

/**
 * The lint SQL against a real PostgreSQL: a database with one fixture per lint (and a "good"
 * twin that must not be flagged), read back in Studio's Lint shape. The agent path around it is
 * covered by the route tests and test/data-plane/observability.test.ts.
 */

const name = `supamanager_lints_${Date.now().toString(36)}`;
let client: pg.Client;
type Row = {
  name: string;
  level: string;
  categories: string[];
  detail: string;
  metadata: Record<string, unknown>;
  cache_key: string;
};
let rows: Row[] = [];

const FIXTURES = `
create schema auth;
create function auth.uid() returns uuid language sql stable as $$ select null::uuid $$;
create schema private;
create table public.parents (id bigint primary key);
alter table public.parents enable row level security;
create policy read_all on public.parents for select using (true);
-- per-row auth.uid(), an unindexed foreign key
create table public.kids (id bigint primary key, parent_id bigint references public.parents(id), owner uuid);
alter table public.kids enable row level security;
create policy own_rows on public.kids using (auth.uid() = owner);
create policy insert_own on public.kids for insert with check ((select auth.uid()) = owner);
-- covered foreign key, wrapped auth.uid()
create table public.good_kids (id bigint primary key, parent_id bigint references public.parents(id), owner uuid);
create index on public.good_kids (parent_id, id);
alter table public.good_kids enable row level security;
create policy own_rows on public.good_kids using ((select auth.uid()) = owner);
-- no RLS in an exposed schema, no primary key, duplicate indexes
create table public.open_table (a int);
create index open_a1 on public.open_table (a);
create index open_a2 on public.open_table (a);
-- the same, outside the exposed schemas: only the non-security lints apply
create table private.hidden (id int primary key);
-- policies without RLS, RLS without policies
create table public.forgot_rls (id int primary key);
create policy p on public.forgot_rls using (true);
create table public.locked (id int primary key);
alter table public.locked enable row level security;
create function public.mutable_path() returns int language sql as 'select 1';
create function public.pinned_path() returns int language sql set search_path = '' as 'select 1';
-- Supabase-owned schemas are never linted
create table auth.sessions (a int);
`;

beforeAll(async () => {
  await withAdminClient((c) => c.query(`create database "${name}"`));
  client = new pg.Client({ connectionString: urlForDatabase(name) });
  await client.connect();
  await client.query(FIXTURES);
  rows = (await client.query(lintSql(["public", "graphql_public"]))).rows as Row[];
});
afterAll(async () => {
  await client?.end();
  await withAdminClient((c) => c.query(`drop database if exists "${name}" with (force)`));
});

const keys = () => rows.map((r) => r.cache_key).sort();

describe("lintSql on a real PostgreSQL", () => {
  it("answers every finding in Studio's Lint shape", () => {
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(Object.keys(r).sort()).toEqual(
        [
          "cache_key",
          "categories",
          "description",
          "detail",
          "facing",
          "level",
          "metadata",
          "name",
          "remediation",
          "title",
        ].sort(),
      );
      expect(["ERROR", "WARN", "INFO"]).toContain(r.level);
      expect(r.metadata).toMatchObject({
        schema: expect.any(String),
        name: expect.any(String),
        type: expect.any(String),
      });
    }
  });

  it("flags exactly the fixtures, and none of their good twins", () => {
    expect(keys()).toEqual(
      [
        "auth_rls_initplan_public_kids_own_rows",
        "duplicate_index_public_open_table_open_a1_open_a2",
        // md5 of the (empty) argument list tells overloads apart
        "function_search_path_mutable_public_mutable_path_d41d8cd98f00b204e9800998ecf8427e",
        "no_primary_key_public_open_table",
        "policy_exists_rls_disabled_public_forgot_rls",
        "rls_disabled_in_public_public_forgot_rls",
        "rls_disabled_in_public_public_open_table",
        "rls_enabled_no_policy_public_locked",
        "unindexed_foreign_keys_public_kids_kids_parent_id_fkey",
      ].sort(),
    );
  });

  it.each([
    ["auth_rls_initplan", "WARN", "PERFORMANCE", /policy own_rows, which calls auth\.uid\(\) for each row/],
    ["unindexed_foreign_keys", "INFO", "PERFORMANCE", /foreign key kids_parent_id_fkey/],
    ["rls_disabled_in_public", "ERROR", "SECURITY", /row level security is not enabled/],
    ["duplicate_index", "WARN", "PERFORMANCE", /identical indexes open_a1, open_a2/],
    ["policy_exists_rls_disabled", "ERROR", "SECURITY", /has the policies p, but row level security is disabled/],
  ])("%s: level %s, category %s, a detail naming the object", (lint, level, category, detail) => {
    const found = rows.find((r) => r.name === lint);
    expect(found, lint).toBeDefined();
    expect(found?.level).toBe(level);
    expect(found?.categories).toEqual([category]);
    expect(found?.detail).toMatch(detail);
  });

  it("reports the foreign key's name and columns in the metadata Studio links with", () => {
    expect(rows.find((r) => r.name === "unindexed_foreign_keys")?.metadata).toEqual({
      schema: "public",
      name: "kids",
      type: "table",
      fkey_name: "kids_parent_id_fkey",
      fkey_columns: [2],
    });
  });

  it("treats a schema as exposed only when the project's Data API serves it", async () => {
    const withPrivate = (await client.query(lintSql(["public", "private"]))).rows as Row[];
    expect(withPrivate.map((r) => r.cache_key)).toContain("rls_disabled_in_public_private_hidden");
    expect(keys()).not.toContain("rls_disabled_in_public_private_hidden");
  });

  it("goes quiet once the findings are fixed", async () => {
    await client.query(`
      create index on public.kids (parent_id);
      alter policy own_rows on public.kids using ((select auth.uid()) = owner);
      drop index public.open_a2;
      alter table public.open_table add column id int generated always as identity primary key;
      alter table public.open_table enable row level security;
      alter table public.forgot_rls enable row level security;
      create policy p on public.locked using (true);
      alter function public.mutable_path() set search_path = '';
      create policy p on public.open_table using (true);
    `);
    const after = (await client.query(lintSql(["public"]))).rows as Row[];
    expect(after).toEqual([]);
  });
});
