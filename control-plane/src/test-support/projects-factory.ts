import { newProjectRef } from "@supamanager/shared";
import { expect } from "vitest";
import { projects } from "../db/schema.js";
import type { TestUser } from "./factories.js";
import { ensureHost } from "./fleet-factory.js";
import type { TestApp } from "./harness.js";
import type { OrgFixture } from "./org-fixtures.js";

/** Organizations are created through the real API (see org-fixtures.ts). */
export type TestOrg = OrgFixture;
export { addMember, createOrg } from "./org-fixtures.js";

export const TEST_DB_PASS = "s3cret-Pass-for-tests!";

export interface CreatedProject {
  id: number;
  ref: string;
  name: string;
  status: string;
  [key: string]: unknown;
}

/**
 * Create a project through the API (so the real code path writes it) and return the 201 body.
 * Makes sure an online host exists in the requested region (default "local") first.
 */
export async function createProjectViaApi(
  t: TestApp,
  user: TestUser,
  org: TestOrg,
  body: Record<string, unknown> = {},
): Promise<CreatedProject> {
  await ensureHost(t, typeof body.db_region === "string" ? body.db_region : "local");
  const res = await t.request("/platform/projects", {
    method: "POST",
    token: user.token,
    json: { name: "My Project", organization_slug: org.slug, db_pass: TEST_DB_PASS, cloud_provider: "AWS", ...body },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as CreatedProject;
}

export interface SeedProject {
  name: string;
  status?: string;
  createdAt?: Date;
}

/**
 * Insert many project rows at once (list, pagination and benchmark tests). The password
 * column gets a dummy ciphertext-shaped value: nothing decrypts it in those tests.
 */
export async function seedProjects(t: TestApp, org: TestOrg, seeds: SeedProject[]): Promise<string[]> {
  if (seeds.length === 0) return [];
  const base = t.clock.now();
  const rows = seeds.map((s, i) => ({
    ref: newProjectRef(),
    orgId: org.id,
    name: s.name,
    region: "local",
    cloudProvider: "AWS",
    status: s.status ?? "ACTIVE_HEALTHY",
    computeSize: "nano",
    dbPassEncrypted: "v1.seed.seed.seed",
    createdAt: s.createdAt ?? new Date(base + i * 1000),
    updatedAt: s.createdAt ?? new Date(base + i * 1000),
  }));
  await t.deps.database.db.insert(projects).values(rows);
  return rows.map((r) => r.ref);
}
