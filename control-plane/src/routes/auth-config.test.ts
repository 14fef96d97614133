import { createHash } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLog, hosts, projectAuthSettings, projects } from "../db/schema.js";
import { buildApply } from "../services/fleet/reconcile.js";
import { createTestApp, type TestApp } from "../test-support/harness.js";
import { expectMatchesOperation } from "../test-support/openapi.js";
import { createTeam, type TeamFixture } from "../test-support/org-fixtures.js";
import { createProjectViaApi } from "../test-support/projects-factory.js";

/** Per-project auth settings through Studio's and the Management API's endpoints, into GoTrue's environment. */

let t: TestApp;
let team: TeamFixture;
let ref: string;
const SMTP_PASS = "smtp-secret-Ω-123";

beforeAll(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  team = await createTeam(t);
  // The Kong release: its GoTrue reads the settings (the local release has no auth service).
  ref = (await createProjectViaApi(t, team.members.owner, team, { release: "supabase-2026.02", parts: [] })).ref;
});
afterAll(async () => {
  await t.close();
});

type Role = keyof TeamFixture["members"];
const v1 = (method: string, json?: unknown, role: Role = "owner") =>
  t.request(`/v1/projects/${ref}/config/auth`, { method, token: team.members[role].token, ...(json ? { json } : {}) });
const studio = (method: string, json?: unknown, role: Role = "owner") =>
  t.request(`/platform/auth/${ref}/config`, { method, token: team.members[role].token, ...(json ? { json } : {}) });
const project = async () => (await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref)))[0];
async function rendered() {
  const p = await project();
  if (!p) throw new Error("no project");
  const [host] = await t.deps.database.db
    .select()
    .from(hosts)
    .where(eq(hosts.id, p.hostId as string));
  const apply = await buildApply(t.deps, t.deps.database.db, p, { bindAddress: host?.bindAddress ?? "127.0.0.1" });
  return {
    env: apply.stack?.env ?? {},
    services: JSON.parse(apply.stack?.composeFile ?? "{}").services as Record<string, unknown>,
  };
}

describe("auth settings", () => {
  it("defaults: auto-confirm on, the app's site URL, no SMTP; both shapes", async () => {
    const res = await v1("GET");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/auth", 200, body, { fieldsOnly: true });
    expect(body).toMatchObject({
      site_url: "http://localhost:3000",
      uri_allow_list: "",
      disable_signup: false,
      jwt_exp: 3600,
      mailer_autoconfirm: true,
      smtp_host: null,
      smtp_pass: null,
    });
    const s = (await (await studio("GET")).json()) as Record<string, unknown>;
    expect(s).toMatchObject({ SITE_URL: "http://localhost:3000", MAILER_AUTOCONFIRM: true, SMTP_PASS: null });
  });

  it("PATCH /v1 stores them (the password encrypted, answered hashed), re-renders only GoTrue's environment", async () => {
    const before = await rendered();
    const version = (await project())?.specVersion as number;
    const patch = {
      site_url: "https://app.example.com",
      uri_allow_list: "https://app.example.com/**,myapp://callback",
      disable_signup: true,
      jwt_exp: 7200,
      mailer_autoconfirm: false,
      smtp_host: "smtp.example.com",
      smtp_port: "465",
      smtp_user: "mailer",
      smtp_pass: SMTP_PASS,
      smtp_admin_email: "noreply@example.com",
      smtp_sender_name: "Example",
      // A field SupaManager does not manage, sent with the value GoTrue runs with: accepted.
      external_google_enabled: false,
    };
    const res = await v1("PATCH", patch);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expectMatchesOperation("PATCH", "/v1/projects/{ref}/config/auth", 200, body, { fieldsOnly: true });
    expect(body).toMatchObject({ ...patch, smtp_pass: createHash("sha256").update(SMTP_PASS).digest("hex") });
    expect(JSON.stringify(body)).not.toContain(SMTP_PASS);
    expect(JSON.stringify(await (await studio("GET")).json())).not.toContain(SMTP_PASS);

    // At rest: encrypted, never in clear.
    const [row] = await t.deps.database.db
      .select()
      .from(projectAuthSettings)
      .where(eq(projectAuthSettings.projectRef, ref));
    expect(JSON.stringify(row)).not.toContain(SMTP_PASS);
    expect(row?.smtpPassEncrypted).toBeTruthy();

    // The host gets a new spec: GoTrue's environment carries the settings, nothing else changed.
    expect((await project())?.specVersion).toBe(version + 1);
    const after = await rendered();
    expect(after.env).toMatchObject({
      SITE_URL: "https://app.example.com",
      AUTH_URI_ALLOW_LIST: "https://app.example.com/**,myapp://callback",
      AUTH_DISABLE_SIGNUP: "true",
      AUTH_JWT_EXP: "7200",
      AUTH_MAILER_AUTOCONFIRM: "false",
      AUTH_SMTP_HOST: "smtp.example.com",
      AUTH_SMTP_PORT: "465",
      AUTH_SMTP_PASS: SMTP_PASS,
    });
    for (const name of Object.keys(after.services)) {
      if (name === "auth") continue;
      expect(after.services[name], `${name} is unchanged, so Compose recreates only auth`).toEqual(
        before.services[name],
      );
    }
    const auth = after.services.auth as { environment: Record<string, string> };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Compose reference is what is tested
    expect(auth.environment.GOTRUE_SMTP_PASS).toBe("${AUTH_SMTP_PASS}");
    expect(after.services.auth).toEqual(before.services.auth); // references only: the values travel in env

    const [audit] = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, "project.auth_config.update"));
    expect(JSON.stringify(audit)).not.toContain(SMTP_PASS);
    expect(JSON.stringify(audit?.details)).toContain("smtpPass");
  });

  it("Studio's PATCH uses GoTrue's names and reads back the same settings", async () => {
    const res = await studio("PATCH", {
      MAILER_AUTOCONFIRM: true,
      SITE_URL: "https://studio.example.com",
      SMTP_PASS: null,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({
      MAILER_AUTOCONFIRM: true,
      SITE_URL: "https://studio.example.com",
      SMTP_PASS: null,
    });
    const back = (await (await v1("GET")).json()) as Record<string, unknown>;
    expect(back).toMatchObject({
      mailer_autoconfirm: true,
      site_url: "https://studio.example.com",
      smtp_pass: null,
      jwt_exp: 7200,
    });
    expect((await rendered()).env.AUTH_SMTP_PASS).toBe("");
  });

  it.each([
    [{ site_url: "not a url" }, /site_url/],
    [{ jwt_exp: 10 * 604800 }, /jwt_exp/],
    [{ smtp_port: "70000" }, /smtp port/],
    [{ smtp_admin_email: "nope" }, /smtp_admin_email/],
    [{ smtp_sender_name: "it's" }, /quotes or line breaks/],
    [{ uri_allow_list: "https://ok.example.com,has space" }, /redirect URL/],
  ])("refuses %j with a 400 naming the field", async (patch, message) => {
    const res = await v1("PATCH", patch);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });

  it("Studio's basic settings form (BasicAuthSettingsForm: DISABLE_SIGNUP, EXTERNAL_ANONYMOUS_USERS_ENABLED, SECURITY_MANUAL_LINKING_ENABLED, MAILER_AUTOCONFIRM, SITE_URL): managed fields change, unmanaged ones sent back unchanged pass", async () => {
    const form = (await (await studio("GET")).json()) as Record<string, unknown>;
    expect(form).toMatchObject({
      EXTERNAL_ANONYMOUS_USERS_ENABLED: false,
      SECURITY_MANUAL_LINKING_ENABLED: false,
      EXTERNAL_GOOGLE_ENABLED: false,
    });
    const res = await studio("PATCH", {
      DISABLE_SIGNUP: true,
      EXTERNAL_ANONYMOUS_USERS_ENABLED: form.EXTERNAL_ANONYMOUS_USERS_ENABLED,
      SECURITY_MANUAL_LINKING_ENABLED: form.SECURITY_MANUAL_LINKING_ENABLED,
      MAILER_AUTOCONFIRM: false,
      SITE_URL: "https://app.example.com",
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({
      DISABLE_SIGNUP: true,
      MAILER_AUTOCONFIRM: false,
      SITE_URL: "https://app.example.com",
    });
  });

  it.each([
    [
      "turning on anonymous sign-ins",
      { EXTERNAL_ANONYMOUS_USERS_ENABLED: true, DISABLE_SIGNUP: true },
      /EXTERNAL_ANONYMOUS_USERS_ENABLED is not managed/,
    ],
    ["a rate limit", { RATE_LIMIT_EMAIL_SENT: 60 }, /RATE_LIMIT_EMAIL_SENT is not managed/],
    [
      "a provider",
      { EXTERNAL_GOOGLE_ENABLED: true, EXTERNAL_GOOGLE_CLIENT_ID: "abc", EXTERNAL_GOOGLE_SECRET: "s" },
      /EXTERNAL_GOOGLE_CLIENT_ID, EXTERNAL_GOOGLE_ENABLED, EXTERNAL_GOOGLE_SECRET are not managed/,
    ],
    [
      "sessions",
      { SESSIONS_TIMEBOX: 3600, SESSIONS_SINGLE_PER_USER: true },
      /SESSIONS_SINGLE_PER_USER, SESSIONS_TIMEBOX are not managed/,
    ],
    ["MFA", { MFA_MAX_ENROLLED_FACTORS: 3 }, /MFA_MAX_ENROLLED_FACTORS is not managed/],
    ["a GoTrue default", { PASSWORD_MIN_LENGTH: 12 }, /PASSWORD_MIN_LENGTH is not managed/],
  ])("Studio's PATCH refuses %s with a 400 naming the fields, and applies nothing", async (_n, body, message) => {
    const before = await (await studio("GET")).json();
    const res = await studio("PATCH", body);
    expect(res.status).toBe(400);
    const { message: text } = (await res.json()) as { message: string };
    expect(text).toMatch(message);
    expect(text).toMatch(/SupaManager manages the site URL, redirect URLs, sign-ups/);
    expect(JSON.stringify(text)).not.toContain('"s"');
    expect(await (await studio("GET")).json()).toEqual(before);
  });

  it("the Management API's GET states what GoTrue runs with for the fields SupaManager does not set", async () => {
    const body = (await (await v1("GET")).json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      external_google_enabled: false,
      saml_enabled: false,
      security_captcha_enabled: false,
      hook_custom_access_token_enabled: false,
      refresh_token_rotation_enabled: true,
      password_min_length: 6,
      mailer_otp_exp: 86400,
    });
    expectMatchesOperation("GET", "/v1/projects/{ref}/config/auth", 200, body, { fieldsOnly: true });
  });

  it.each([
    [
      "a provider",
      { external_google_enabled: true, external_google_client_id: "abc" },
      /external_google_client_id, external_google_enabled are not managed/,
    ],
    [
      "a rate limit",
      { rate_limit_email_sent: 60, site_url: "https://x.example.com" },
      /rate_limit_email_sent is not managed/,
    ],
    ["a GoTrue default", { password_min_length: 12 }, /password_min_length is not managed/],
    ["MFA", { mfa_totp_enroll_enabled: true }, /mfa_totp_enroll_enabled is not managed/],
  ])(
    "the Management API's PATCH refuses %s with a 400 naming the fields, and applies nothing",
    async (_n, body, message) => {
      const before = await (await v1("GET")).json();
      const res = await v1("PATCH", body);
      expect(res.status).toBe(400);
      const { message: text } = (await res.json()) as { message: string };
      expect(text).toMatch(message);
      expect(text).toMatch(/send them unchanged, as GET states them, or leave them out/);
      expect(await (await v1("GET")).json()).toEqual(before);
    },
  );

  it("Terraform and the CLI send whole configs: GET's answer sent back with a managed change passes, as do empty defaults", async () => {
    const current = (await (await v1("GET")).json()) as Record<string, unknown>;
    const { smtp_pass: _hash, ...whole } = current;
    const res = await v1("PATCH", {
      ...whole,
      jwt_exp: 1800,
      // Fields GET leaves out, sent empty (the CLI's and Terraform's unset values).
      sms_provider: "",
      rate_limit_sms_sent: null,
      external_github_client_id: null,
      mfa_phone_enroll_enabled: false,
      sessions_timebox: 0,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ jwt_exp: 1800 });
  });

  it("only roles that may update the project change it; any member reads it; outsiders get 404", async () => {
    expect((await v1("PATCH", { disable_signup: false }, "developer")).status).toBe(403);
    expect((await studio("PATCH", { DISABLE_SIGNUP: false }, "read_only")).status).toBe(403);
    expect((await v1("GET", undefined, "read_only")).status).toBe(200);
    const outsider = team.outsider.token;
    expect((await t.request(`/v1/projects/${ref}/config/auth`, { token: outsider })).status).toBe(404);
    expect(
      (await t.request(`/platform/auth/${ref}/config`, { method: "PATCH", token: outsider, json: { SITE_URL: 1 } }))
        .status,
    ).toBe(404);
  });
});
