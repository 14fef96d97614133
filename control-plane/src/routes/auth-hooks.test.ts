import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLog } from "../db/schema.js";
import { createTestApp, type TestApp } from "../test-support/harness.js";
import { createTeam, type TeamFixture } from "../test-support/org-fixtures.js";
import { createProjectViaApi } from "../test-support/projects-factory.js";
import { NO_TEMPLATES_MESSAGE } from "./auth-config.js";

/**
 * Studio's Auth Hooks page and e-mail template paths against the real control plane:
 * - auth-hooks-update-mutation.ts `PATCH /platform/auth/{ref}/config/hooks` with
 *   UpdateGoTrueConfigHooksBody (HOOK_<name>_ENABLED, _URI, _SECRETS; on an error Studio toasts
 *   "Failed to update auth hooks: <message>");
 * - `GET /platform/auth/{ref}/templates/{template}` (platform.d.ts TemplateController_getTemplate)
 *   and auth-template-reset-mutation.ts `POST /platform/auth/{ref}/templates/{template}/reset`,
 *   whose answer Studio puts in place of the auth config.
 * GoTrue runs without hooks and with its built-in templates: turning a hook on is refused by
 * name, keeping hooks off passes, a template read says there is none stored, a reset is a no-op.
 */

let t: TestApp;
let team: TeamFixture;
let ref: string;

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  ref = (await createProjectViaApi(t, team.members.owner, team, { release: "supabase-2026.02", parts: [] })).ref;
});
afterAll(async () => {
  await t.close();
});

type Role = keyof TeamFixture["members"] | "outsider";
const tokenOf = (role: Role) => (role === "outsider" ? team.outsider.token : team.members[role].token);
const hooks = (json: unknown, role: Role = "owner") =>
  t.request(`/platform/auth/${ref}/config/hooks`, { method: "PATCH", token: tokenOf(role), json });

/** Studio's body when a hook is created (HooksListing → CreateHookSheet, HTTP hook with a secret). */
const CREATE_SEND_EMAIL = {
  HOOK_SEND_EMAIL_ENABLED: true,
  HOOK_SEND_EMAIL_URI: "https://hooks.example.com/send-email",
  HOOK_SEND_EMAIL_SECRETS: "v1,whsec_c2VjcmV0LXZhbHVlLW5vdC10by1iZS1lY2hvZWQ=",
};
/** …and when it is deleted. */
const DELETE_SEND_EMAIL = { HOOK_SEND_EMAIL_ENABLED: false, HOOK_SEND_EMAIL_URI: null, HOOK_SEND_EMAIL_SECRETS: null };

describe("PATCH /platform/auth/{ref}/config/hooks", () => {
  it("turning a hook on is refused by field name (never its secret); nothing is stored or audited", async () => {
    const res = await hooks(CREATE_SEND_EMAIL);
    expect(res.status).toBe(400);
    const { message } = (await res.json()) as { message: string };
    expect(message).toMatch(
      /^Not changed: HOOK_SEND_EMAIL_ENABLED, HOOK_SEND_EMAIL_SECRETS, HOOK_SEND_EMAIL_URI are not managed by SupaManager yet\. The project's Auth \(GoTrue\) runs without hooks/,
    );
    expect(message).not.toContain("whsec_");
    expect(message).not.toContain("hooks.example.com");
    const config = (await (
      await t.request(`/platform/auth/${ref}/config`, { token: team.members.owner.token })
    ).json()) as Record<string, unknown>;
    expect(config.HOOK_SEND_EMAIL_ENABLED).toBe(false);
    const rows = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, "project.auth_config.update"));
    expect(rows).toHaveLength(0);
  });

  it("keeping hooks off (Studio's delete) passes and answers the auth config, every hook off", async () => {
    const res = await hooks(DELETE_SEND_EMAIL);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    for (const h of [
      "BEFORE_USER_CREATED",
      "CUSTOM_ACCESS_TOKEN",
      "MFA_VERIFICATION_ATTEMPT",
      "PASSWORD_VERIFICATION_ATTEMPT",
      "SEND_EMAIL",
      "SEND_SMS",
    ]) {
      expect(body[`HOOK_${h}_ENABLED`], h).toBe(false);
    }
    expect(body.SITE_URL).toBe("http://localhost:3000");
    expect((await hooks({})).status).toBe(200);
  });

  it("unknown fields and wrong types are 400 naming the field", async () => {
    for (const [body, field] of [
      [{ HOOK_SEND_EMAIL_ENABLED: "yes" }, "body.HOOK_SEND_EMAIL_ENABLED"],
      [{ SITE_URL: "https://app.example.com" }, "body"],
      [{ HOOK_SEND_SMS_URI: "x".repeat(2049) }, "body.HOOK_SEND_SMS_URI"],
    ] as const) {
      const res = await hooks(body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(((await res.json()) as { message: string }).message).toContain(field);
    }
  });

  it("developer and read_only get 403, another organization's member 404, before the body is read", async () => {
    for (const [role, status] of [
      ["developer", 403],
      ["read_only", 403],
      ["outsider", 404],
    ] as const) {
      expect((await hooks({ nope: 1 }, role)).status, role).toBe(status);
    }
    expect((await hooks(DELETE_SEND_EMAIL, "administrator")).status).toBe(200);
  });
});

describe("e-mail templates", () => {
  it("GET …/templates/{template}: 404 saying no templates are stored (members)", async () => {
    const res = await t.request(`/platform/auth/${ref}/templates/confirmation`, {
      token: team.members.read_only.token,
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "not_found", message: NO_TEMPLATES_MESSAGE });
  });

  it("GET: another organization's member gets the plain project 404; a malformed name is Template not found", async () => {
    const res = await t.request(`/platform/auth/${ref}/templates/confirmation`, { token: team.outsider.token });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { message: string }).message).toBe(`Project ${ref} not found`);
    const bad = await t.request(`/platform/auth/${ref}/templates/Not-A-Name`, { token: team.members.owner.token });
    expect(bad.status).toBe(404);
    expect(((await bad.json()) as { message: string }).message).toBe("Template not found");
  });

  it("POST …/templates/{template}/reset answers the auth config (already GoTrue's defaults); owners and administrators", async () => {
    const reset = (role: Role) =>
      t.request(`/platform/auth/${ref}/templates/magic_link/reset`, { method: "POST", token: tokenOf(role) });
    const res = await reset("owner");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ SITE_URL: "http://localhost:3000", HOOK_SEND_EMAIL_ENABLED: false });
    expect((await reset("developer")).status).toBe(403);
    expect((await reset("outsider")).status).toBe(404);
  });
});
