import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../deps.js";
import { badRequest, notFound } from "../errors.js";
import { authed } from "../lib/context.js";
import { jsonBody, param } from "../lib/validate.js";
import type { AuthSettings } from "../services/auth-settings/settings.js";
import {
  type AuthSettingsView,
  assertMayUpdateAuthSettings,
  getAuthSettings,
  updateAuthSettings,
} from "../services/auth-settings/store.js";
import { projectForMember } from "../services/organizations/access.js";
import { RefParam } from "./platform/projects/schemas.js";

/**
 * A project's auth settings in the two shapes that read and write them (services/auth-settings):
 * Studio's GoTrue config (`GET/PATCH /platform/auth/{ref}/config`, GoTrue's upper-case names) and
 * the Management API's AuthConfigResponse / UpdateAuthConfigBody
 * (`GET/PATCH /v1/projects/{ref}/config/auth`, lower-case names). Only the fields SupaManager
 * renders into GoTrue are read or written (plus the e-mail/phone/anonymous provider switches, read
 * only, and the fixed values in FIXED that GoTrue runs with). In both PATCHes a change to any other
 * field is refused with a 400 naming it (nothing applied); a field sent back with the value GET
 * states, or with an empty default, passes, so whole configs (Studio's forms, Terraform, the CLI's
 * `config push`) that change only managed fields go through (ADR 0043). The SMTP password is never
 * returned: Studio gets null, the Management API its SHA-256 (secrets "come back hashed", as the
 * Terraform provider expects).
 */

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

const HttpUrl = z
  .string()
  .max(2048)
  .refine((v) => /^https?:\/\/[^\s,]+$/.test(v) && URL.canParse(v), "must be an http(s) URL");
/** GoTrue's allow-list entries may hold globs (`https://*.example.com/**`): any non-space text without commas. */
const AllowEntry = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^[^\s,]+$/, "a redirect URL has no spaces or commas");
const Port = z
  .union([
    z.number().int(),
    z
      .string()
      .regex(/^\d{1,5}$/)
      .transform(Number),
  ])
  .pipe(z.number().int().min(1, "smtp port must be 1-65535").max(65535, "smtp port must be 1-65535"));
const Text = (max: number) => z.string().max(max);

/** The settings a PATCH may change, by our names; `null` resets a field to its default. */
const Fields = {
  siteUrl: HttpUrl,
  additionalRedirectUrls: z.array(AllowEntry).max(100),
  disableSignup: z.boolean(),
  jwtExp: z
    .number()
    .int()
    .min(30, "jwt_exp must be at least 30 seconds")
    .max(604800, "jwt_exp is at most 604800 (a week)"),
  mailerAutoconfirm: z.boolean(),
  smtpHost: z
    .string()
    .max(255)
    .regex(/^[A-Za-z0-9.:[\]-]*$/, "smtp host must be a host name or address"),
  smtpPort: Port,
  smtpUser: Text(255),
  smtpPass: Text(1024),
  smtpAdminEmail: z.union([z.email().max(320), z.literal("")]),
  smtpSenderName: Text(255),
} as const;

/** GoTrue's URI allow-list is one comma-separated string in both shapes. */
const allowList = z
  .string()
  .max(16384)
  .transform((s) =>
    s
      .split(",")
      .map((u) => u.trim())
      .filter(Boolean),
  )
  .pipe(Fields.additionalRedirectUrls);

/** Both shapes: which external name maps to which field. */
const NAMES: [keyof AuthSettings, string, z.ZodType][] = [
  ["siteUrl", "site_url", Fields.siteUrl],
  ["additionalRedirectUrls", "uri_allow_list", allowList],
  ["disableSignup", "disable_signup", Fields.disableSignup],
  ["jwtExp", "jwt_exp", Fields.jwtExp],
  ["mailerAutoconfirm", "mailer_autoconfirm", Fields.mailerAutoconfirm],
  ["smtpHost", "smtp_host", Fields.smtpHost],
  ["smtpPort", "smtp_port", Fields.smtpPort],
  ["smtpUser", "smtp_user", Fields.smtpUser],
  ["smtpPass", "smtp_pass", Fields.smtpPass],
  ["smtpAdminEmail", "smtp_admin_email", Fields.smtpAdminEmail],
  ["smtpSenderName", "smtp_sender_name", Fields.smtpSenderName],
];

function patchSchema(upper: boolean) {
  const shape: Record<string, z.ZodType> = {};
  for (const [, name, schema] of NAMES) shape[upper ? name.toUpperCase() : name] = schema.nullable().optional();
  // Other fields of the shape are let through here and checked against GET (unmanagedChanges).
  return z.looseObject(shape);
}
export const StudioAuthConfigPatch = patchSchema(true);
export const V1AuthConfigPatch = patchSchema(false);

const DEFAULTS: Record<string, unknown> = {
  siteUrl: "http://localhost:3000",
  additionalRedirectUrls: [],
  disableSignup: false,
  jwtExp: 3600,
  mailerAutoconfirm: true,
  smtpHost: "",
  smtpPort: 587,
  smtpUser: "",
  smtpPass: "",
  smtpAdminEmail: "",
  smtpSenderName: "",
};

function toPatch(body: Record<string, unknown>, upper: boolean): Partial<AuthSettings> {
  const patch: Record<string, unknown> = {};
  for (const [field, name] of NAMES) {
    const v = body[upper ? name.toUpperCase() : name];
    if (v === undefined) continue;
    patch[field] = v === null ? DEFAULTS[field] : v;
  }
  return patch as Partial<AuthSettings>;
}

/** The values both shapes share, by the Management API's names. */
function shared(s: AuthSettingsView, pass: string | null): Record<string, unknown> {
  const orNull = (v: string) => (v === "" ? null : v);
  return {
    site_url: s.siteUrl,
    uri_allow_list: s.additionalRedirectUrls.join(","),
    disable_signup: s.disableSignup,
    jwt_exp: s.jwtExp,
    mailer_autoconfirm: s.mailerAutoconfirm,
    smtp_host: orNull(s.smtpHost),
    smtp_port: s.smtpHost ? String(s.smtpPort) : null,
    smtp_user: orNull(s.smtpUser),
    smtp_pass: pass,
    smtp_admin_email: orNull(s.smtpAdminEmail),
    smtp_sender_name: orNull(s.smtpSenderName),
    external_email_enabled: true,
    external_phone_enabled: false,
    external_anonymous_users_enabled: false,
  };
}

/**
 * Values of Studio's auth forms that SupaManager does not manage but can state truthfully: what
 * the project's GoTrue runs with because SupaManager sets nothing for them (no OAuth provider,
 * SAML, captcha or hook is configured) or GoTrue's own defaults (internal/conf/configuration.go:
 * secure e-mail change and refresh-token rotation on, minimum password length 6, e-mail OTPs
 * valid 86400 s with 6 digits, SMS OTPs 60 s with 6 digits). Studio's forms show them; a PATCH
 * may send them back unchanged.
 */
const OAUTH_PROVIDERS = [
  "APPLE",
  "AZURE",
  "BITBUCKET",
  "DISCORD",
  "FACEBOOK",
  "FIGMA",
  "GITHUB",
  "GITLAB",
  "GOOGLE",
  "KAKAO",
  "KEYCLOAK",
  "LINKEDIN_OIDC",
  "NOTION",
  "SLACK_OIDC",
  "SPOTIFY",
  "TWITCH",
  "TWITTER",
  "WORKOS",
  "ZOOM",
];
const FIXED: Record<string, unknown> = {
  ...Object.fromEntries(OAUTH_PROVIDERS.map((p) => [`EXTERNAL_${p}_ENABLED`, false])),
  SAML_ENABLED: false,
  SECURITY_CAPTCHA_ENABLED: false,
  SECURITY_MANUAL_LINKING_ENABLED: false,
  HOOK_BEFORE_USER_CREATED_ENABLED: false,
  HOOK_CUSTOM_ACCESS_TOKEN_ENABLED: false,
  HOOK_SEND_EMAIL_ENABLED: false,
  HOOK_SEND_SMS_ENABLED: false,
  HOOK_MFA_VERIFICATION_ATTEMPT_ENABLED: false,
  HOOK_PASSWORD_VERIFICATION_ATTEMPT_ENABLED: false,
  MAILER_SECURE_EMAIL_CHANGE_ENABLED: true,
  REFRESH_TOKEN_ROTATION_ENABLED: true,
  PASSWORD_MIN_LENGTH: 6,
  MAILER_OTP_EXP: 86400,
  MAILER_OTP_LENGTH: 6,
  SMS_OTP_EXP: 60,
  SMS_OTP_LENGTH: 6,
};

/** Studio's shape: GoTrue's names; the password is never sent back. */
export function studioShape(s: AuthSettingsView): Record<string, unknown> {
  return { ...FIXED, ...Object.fromEntries(Object.entries(shared(s, null)).map(([k, v]) => [k.toUpperCase(), v])) };
}

/** FIXED by the Management API's (lower-case) names. */
const FIXED_V1 = Object.fromEntries(Object.entries(FIXED).map(([k, v]) => [k.toLowerCase(), v]));

/** What an unset field of Studio's forms looks like when sent back (its empty default). */
const isEmpty = (v: unknown) => v === null || v === undefined || v === "" || v === false || v === 0;

/**
 * The fields of a Studio PATCH that would change a setting SupaManager does not manage: any field
 * we do not store whose value differs from what GET answers (for fields GET leaves out, anything
 * but an empty form default). Studio's forms send every field of the form, changed or not.
 */
export function unmanagedChanges(
  body: Record<string, unknown>,
  current: Record<string, unknown>,
  upper = true,
): string[] {
  const managed = new Set(NAMES.map(([, name]) => (upper ? name.toUpperCase() : name)));
  return Object.keys(body)
    .filter((k) => !managed.has(k))
    .filter((k) => (k in current ? JSON.stringify(body[k]) !== JSON.stringify(current[k]) : !isEmpty(body[k])))
    .sort();
}

const MANAGED_NOTE =
  "SupaManager manages the site URL, redirect URLs, sign-ups, JWT expiry, e-mail auto-confirm and SMTP of a project's Auth";

/** The Management API's AuthConfigResponse: the managed fields (the password hashed) and FIXED. */
export function v1Shape(s: AuthSettingsView): Record<string, unknown> {
  return { ...FIXED_V1, ...shared(s, s.smtpPassHash) };
}

async function get(c: Context<AppEnv>, shape: (s: AuthSettingsView) => Record<string, unknown>) {
  return c.json(shape(await getAuthSettings(authed(c), refOf(c))));
}

async function patch(
  c: Context<AppEnv>,
  schema: z.ZodType<Record<string, unknown>>,
  upper: boolean,
  shape: (s: AuthSettingsView) => Record<string, unknown>,
) {
  const ref = refOf(c);
  const ctx = authed(c);
  // Membership and role before the body: an outsider learns nothing, a reader gets 403.
  await assertMayUpdateAuthSettings(ctx, ref);
  const body = await jsonBody(c, schema);
  // A change to a setting we do not manage is refused, never silently dropped (Studio shows this
  // message; Terraform and the CLI report it); nothing of the request is applied.
  const refused = unmanagedChanges(body, shape(await getAuthSettings(ctx, ref)), upper);
  if (refused.length > 0) {
    throw badRequest(
      `Not changed: ${refused.slice(0, 20).join(", ")}${refused.length > 20 ? ", …" : ""} ${refused.length === 1 ? "is" : "are"} not managed by SupaManager yet. ${MANAGED_NOTE}; the other settings keep GoTrue's defaults (send them unchanged, as GET states them, or leave them out).`,
    );
  }
  return c.json(shape(await updateAuthSettings(ctx, ref, toPatch(body, upper))));
}

export const studioAuthConfigGet = (c: Context<AppEnv>) => get(c, studioShape);
export const studioAuthConfigPatch = (c: Context<AppEnv>) => patch(c, StudioAuthConfigPatch, true, studioShape);
export const v1AuthConfigGet = (c: Context<AppEnv>) => get(c, v1Shape);
export const v1AuthConfigPatch = (c: Context<AppEnv>) => patch(c, V1AuthConfigPatch, false, v1Shape);

/** GoTrue's hooks, as UpdateGoTrueConfigHooksBody names them (HOOK_<name>_ENABLED, _URI, _SECRETS). */
const HOOKS = [
  "BEFORE_USER_CREATED",
  "CUSTOM_ACCESS_TOKEN",
  "MFA_VERIFICATION_ATTEMPT",
  "PASSWORD_VERIFICATION_ATTEMPT",
  "SEND_EMAIL",
  "SEND_SMS",
] as const;

/** UpdateGoTrueConfigHooksBody: nothing else is accepted. */
export const StudioAuthHooksPatch = z.strictObject(
  Object.fromEntries(
    HOOKS.flatMap((h) => [
      [`HOOK_${h}_ENABLED`, z.boolean().nullable().optional()],
      [`HOOK_${h}_URI`, z.string().max(2048).nullable().optional()],
      [`HOOK_${h}_SECRETS`, z.string().max(4096).nullable().optional()],
    ]),
  ) as Record<string, z.ZodOptional<z.ZodNullable<z.ZodBoolean | z.ZodString>>>,
);

/**
 * PATCH /platform/auth/:ref/config/hooks (Studio's Auth Hooks page, auth-hooks-update-mutation.ts).
 * GoTrue runs without hooks here and SupaManager does not render any into its environment yet, so
 * a body that turns a hook on or names its URI or secrets is refused with the fields named (never
 * their values); one that only keeps hooks off (Studio's "delete hook" sends ENABLED false and
 * nulls) passes and answers the auth config, as the config PATCH does. Owners and administrators.
 */
export async function studioAuthHooksPatch(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const ctx = authed(c);
  await assertMayUpdateAuthSettings(ctx, ref);
  const body = await jsonBody(c, StudioAuthHooksPatch);
  const refused = Object.keys(body)
    .filter((k) => !isEmpty(body[k]))
    .sort();
  if (refused.length > 0) {
    throw badRequest(
      `Not changed: ${refused.join(", ")} ${refused.length === 1 ? "is" : "are"} not managed by SupaManager yet. The project's Auth (GoTrue) runs without hooks; ${MANAGED_NOTE}.`,
    );
  }
  return c.json(studioShape(await getAuthSettings(ctx, ref)));
}

/** GoTrue's template names are lower-case words joined by underscores (confirmation, magic_link, …). */
const TemplateName = z.string().regex(/^[a-z][a-z_]{0,63}$/, "must be an e-mail template name");

export const NO_TEMPLATES_MESSAGE =
  "SupaManager keeps no e-mail templates: the project's Auth (GoTrue) sends its built-in messages, which cannot be changed here yet.";

/**
 * GET /platform/auth/:ref/templates/:template — members learn that there is no stored template
 * (404 with that message); POST …/templates/:template/reset (ResetTemplateDialog) answers the auth
 * config, as Studio expects: every template already is GoTrue's default, so there is nothing to
 * reset (owners and administrators).
 */
export async function studioAuthTemplateGet(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  await projectForMember(authed(c), ref, "projects.read");
  param(c, "template", TemplateName, "Template");
  throw notFound(NO_TEMPLATES_MESSAGE);
}

export async function studioAuthTemplateReset(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const ctx = authed(c);
  await assertMayUpdateAuthSettings(ctx, ref);
  param(c, "template", TemplateName, "Template");
  return c.json(studioShape(await getAuthSettings(ctx, ref)));
}
