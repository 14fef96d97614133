import { readFileSync } from "node:fs";
import { ORG_ROLES, type OrgRole, ROLE_IDS } from "@supamanager/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectMatchesSchema } from "../../test-support/contracts.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createTeam, json } from "../../test-support/org-fixtures.js";
import { ACTIONS, type Action, roleCan } from "./matrix.js";
import { STUDIO_GRANTS, type StudioPermission } from "./permissions.js";

/**
 * A re-implementation of how Studio evaluates permission rows (hooks/misc/useCheckPermissions.ts,
 * as summarised in notes/studio-research.md): only the first '.' and '%' of a pattern become
 * regex syntax; restrictive matches deny; json-logic conditions see `{ resource_name, ...data }`.
 */
function patternMatches(pattern: string, value: string): boolean {
  const source = `^${pattern.replace(".", "\\.").replace("%", ".*")}$`;
  return new RegExp(source).test(value);
}

function varOf(data: Record<string, unknown>, path: string): unknown {
  return path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], data);
}

function evalLogic(expr: unknown, data: Record<string, unknown>): unknown {
  if (expr === null || typeof expr !== "object" || Array.isArray(expr)) {
    return Array.isArray(expr) ? expr.map((e) => evalLogic(e, data)) : expr;
  }
  const [op, raw] = Object.entries(expr as Record<string, unknown>)[0] ?? [];
  const args = (Array.isArray(raw) ? raw : [raw]).map((a) => evalLogic(a, data));
  switch (op) {
    case "var":
      return varOf(data, String(args[0]));
    case "==":
      // biome-ignore lint/suspicious/noDoubleEquals: json-logic's == is loose equality
      return args[0] == args[1];
    case "in":
      return Array.isArray(args[1]) ? args[1].includes(args[0]) : String(args[1]).includes(String(args[0]));
    default:
      throw new Error(`json-logic operator ${op} not supported by this test evaluator`);
  }
}

function studioAllows(
  rows: StudioPermission[],
  slug: string,
  action: string,
  resource: string,
  data: Record<string, unknown> = {},
): boolean {
  const matching = rows.filter(
    (r) =>
      r.organization_slug === slug &&
      (r.project_refs === null || r.project_refs.length === 0) &&
      r.actions.some((a) => patternMatches(a, action)) &&
      r.resources.some((p) => patternMatches(p, resource)),
  );
  const holds = (r: StudioPermission) =>
    r.condition === null || Boolean(evalLogic(r.condition, { resource_name: resource, ...data }));
  if (matching.some((r) => r.restrictive && holds(r))) return false;
  return matching.some((r) => !r.restrictive && holds(r));
}

/** Studio's checks and the action of ours each one stands for. */
type Check = { ui: string; action: string; resource: string; data?: Record<string, unknown>; ours: Action[] };
const CHECKS: Check[] = [
  { ui: "create project", action: "write:Create", resource: "projects", ours: ["projects.create"] },
  { ui: "pause project", action: "infra:Execute", resource: "queue_jobs.projects.pause", ours: ["projects.lifecycle"] },
  {
    ui: "restore project",
    action: "infra:Execute",
    resource: "queue_jobs.projects.initialize_or_resume",
    ours: ["projects.lifecycle"],
  },
  { ui: "restart project", action: "infra:Execute", resource: "reboot", ours: ["projects.restart"] },
  {
    ui: "rename/delete project",
    action: "write:Update",
    resource: "projects",
    data: { resource: { project_id: 1 } },
    ours: ["projects.update", "projects.delete"],
  },
  {
    ui: "rotate JWT secret",
    action: "infra:Execute",
    resource: "queue_job.projects.update_jwt",
    ours: ["projects.update"],
  },
  {
    ui: "update PostgREST config",
    action: "write:Update",
    resource: "custom_config_postgrest",
    ours: ["projects.update"],
  },
  { ui: "update organization", action: "write:Update", resource: "organizations", ours: ["org.update"] },
  { ui: "read organization", action: "read:Read", resource: "organizations", ours: ["org.read"] },
  { ui: "legacy API keys", action: "read:Read", resource: "service_api_keys", ours: ["projects.read_secrets"] },
  { ui: "new API keys", action: "secrets:Read", resource: "*", ours: ["projects.read_secrets"] },
  { ui: "JWT secret", action: "read:Read", resource: "field.jwt_secret", ours: ["projects.read_secrets"] },
  { ui: "audit logs", action: "read:Read", resource: "notifications", ours: ["audit.read"] },
  { ui: "subscription", action: "billing:Read", resource: "stripe.subscriptions", ours: ["billing.read"] },
  { ui: "edit tables", action: "tenant:Sql:Admin:Write", resource: "tables", ours: ["sql.write"] },
  { ui: "read tables", action: "tenant:Sql:Admin:Read", resource: "tables", ours: ["sql.read"] },
  { ui: "download backup", action: "write:Create", resource: "back_ups", ours: ["backups.manage"] },
  { ui: "restore backup", action: "infra:Execute", resource: "queue_job.restore.prepare", ours: ["backups.admin"] },
  ...ORG_ROLES.flatMap((r): Check[] => {
    const owners: Action[] = r === "owner" ? ["members.manage_owners"] : [];
    const data = { resource: { role_id: ROLE_IDS[r] } };
    return [
      {
        ui: `invite ${r}`,
        action: "write:Create",
        resource: "user_invites",
        data,
        ours: ["members.invite", ...owners],
      },
      {
        ui: `assign ${r}`,
        action: "write:Create",
        resource: "auth.subject_roles",
        data,
        ours: ["members.update_role", ...owners],
      },
      {
        ui: `unassign ${r}`,
        action: "write:Delete",
        resource: "auth.subject_roles",
        data,
        ours: ["members.remove", ...owners],
      },
    ];
  }),
];

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
});
afterEach(async () => {
  await t.close();
});

describe("docs/roles.md", () => {
  it("shows exactly the matrix the API enforces", () => {
    const doc = readFileSync(new URL("../../../../docs/roles.md", import.meta.url), "utf8");
    const table = new Map<string, boolean[]>();
    for (const line of doc.split("\n")) {
      const m = /^\|\s*`([a-z_.]+)`\s*\|[^|]*\|(.*)\|\s*$/.exec(line);
      if (m?.[1] && m[2] && (ACTIONS as readonly string[]).includes(m[1])) {
        table.set(
          m[1],
          m[2].split("|").map((cell) => cell.trim() === "✓"),
        );
      }
    }
    expect([...table.keys()].sort()).toEqual([...ACTIONS].sort());
    for (const action of ACTIONS) {
      expect(table.get(action), action).toEqual(ORG_ROLES.map((r) => roleCan(r, action)));
    }
  });
});

describe("STUDIO_GRANTS", () => {
  it("uses arrays, null or json-logic conditions, and never '*'", () => {
    for (const role of ORG_ROLES) {
      for (const g of STUDIO_GRANTS[role]) {
        expect(Array.isArray(g.actions) && g.actions.length > 0).toBe(true);
        expect(Array.isArray(g.resources) && g.resources.length > 0).toBe(true);
        expect([...g.actions, ...g.resources].some((s) => s.includes("*"))).toBe(false);
        expect(g.condition === null || typeof g.condition === "object").toBe(true);
        // Studio converts only the first '%' and '.' of a pattern; more would silently not match.
        for (const p of [...g.actions, ...g.resources]) {
          expect(p.split("%").length, p).toBeLessThanOrEqual(2);
          expect(p.split(".").length, p).toBeLessThanOrEqual(2);
        }
      }
    }
  });
});

describe("GET /platform/profile/permissions", () => {
  it("answers 401 without a session", async () => {
    expect((await t.request("/platform/profile/permissions")).status).toBe(401);
  });

  it.each(ORG_ROLES)("gives the %s rows that agree with the API's matrix", async (role: OrgRole) => {
    const team = await createTeam(t);
    const res = await t.request("/platform/profile/permissions", { token: team.members[role].token });
    expect(res.status).toBe(200);
    const rows = await json<StudioPermission[]>(res);
    for (const row of rows) expectMatchesSchema("AccessControlPermission", row);
    // Only organizations the caller belongs to, with their id, and org-level rows.
    expect(new Set(rows.map((r) => r.organization_slug))).toEqual(new Set([team.slug]));
    expect(rows.every((r) => r.organization_id === team.id && r.project_refs === null)).toBe(true);
    expect(rows).toHaveLength(STUDIO_GRANTS[role].length);

    for (const check of CHECKS) {
      const expected = check.ours.every((a) => roleCan(role, a));
      expect(studioAllows(rows, team.slug, check.action, check.resource, check.data), `${role}: ${check.ui}`).toBe(
        expected,
      );
      // Another organization's slug never matches.
      expect(studioAllows(rows, "someone-elses-org", check.action, check.resource, check.data)).toBe(false);
    }
  });

  it("pins the Supabase role matrix where it matters", async () => {
    const team = await createTeam(t);
    const rowsOf = async (role: OrgRole) =>
      json<StudioPermission[]>(await t.request("/platform/profile/permissions", { token: team.members[role].token }));
    const dev = await rowsOf("developer");
    expect(studioAllows(dev, team.slug, "infra:Execute", "reboot")).toBe(true);
    expect(studioAllows(dev, team.slug, "infra:Execute", "queue_jobs.projects.pause")).toBe(false);
    expect(studioAllows(dev, team.slug, "write:Update", "projects")).toBe(false);
    expect(studioAllows(dev, team.slug, "read:Read", "field.jwt_secret")).toBe(true);
    const ro = await rowsOf("read_only");
    expect(studioAllows(ro, team.slug, "secrets:Read", "*")).toBe(false);
    expect(studioAllows(ro, team.slug, "read:Read", "service_api_keys")).toBe(false);
    expect(studioAllows(ro, team.slug, "read:Read", "projects")).toBe(true);
    const snippet = { resource: { type: "sql", owner_id: 1 }, subject: { id: 1 } };
    expect(studioAllows(ro, team.slug, "write:Create", "user_content", snippet)).toBe(true);
    expect(studioAllows(ro, team.slug, "write:Create", "user_content", { resource: { type: "report" } })).toBe(false);
    const admin = await rowsOf("administrator");
    expect(studioAllows(admin, team.slug, "write:Create", "projects")).toBe(true);
    expect(studioAllows(admin, team.slug, "write:Create", "user_invites", { resource: { role_id: 1 } })).toBe(false);
    expect(studioAllows(admin, team.slug, "write:Create", "user_invites", { resource: { role_id: 2 } })).toBe(true);
    // An outsider has rows for their own organization only.
    const outsider = await json<StudioPermission[]>(
      await t.request("/platform/profile/permissions", { token: team.outsider.token }),
    );
    expect(outsider.some((r) => r.organization_slug === team.slug)).toBe(false);
    expect(outsider.length).toBeGreaterThan(0);
  });
});
