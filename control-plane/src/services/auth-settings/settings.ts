import type { ProjectVariable } from "../../releases/variables.js";

/**
 * A project's auth settings: what GoTrue needs to complete a sign-up (SMTP or auto-confirm, the
 * app's URL and redirect allow-list, sign-ups on/off, token lifetime). Stored per project
 * (store.ts; the SMTP password encrypted), rendered into GoTrue's environment only (the release's
 * GOTRUE_SETTINGS_ENV), so applying a change recreates the auth container alone.
 */
export interface AuthSettings {
  siteUrl: string;
  /** Additional redirect URLs (GoTrue's URI allow-list), in order. */
  additionalRedirectUrls: string[];
  disableSignup: boolean;
  /** Access-token lifetime in seconds. */
  jwtExp: number;
  /** Confirm email addresses without sending mail (GoTrue's MAILER_AUTOCONFIRM). */
  mailerAutoconfirm: boolean;
  smtpHost: string;
  smtpPort: number;
  smtpUser: string;
  /** Plaintext only in memory; stored encrypted, never returned by the API. */
  smtpPass: string;
  smtpAdminEmail: string;
  smtpSenderName: string;
}

/**
 * Defaults for a new project (ADR 0021). There is no mail server until the operator configures
 * one, so email addresses are confirmed automatically: otherwise `signUp()` would return no
 * session and sign-in would fail with "Email not confirmed". SITE_URL is upstream's default
 * (the app, .env.example SITE_URL=http://localhost:3000), not the gateway.
 */
export const DEFAULT_AUTH_SETTINGS: AuthSettings = {
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

/** The project variables the settings become (see releases/production/auth-env.ts). */
export function authVariables(s: AuthSettings): Partial<Record<ProjectVariable, string>> {
  return {
    SITE_URL: s.siteUrl,
    AUTH_URI_ALLOW_LIST: s.additionalRedirectUrls.join(","),
    AUTH_DISABLE_SIGNUP: String(s.disableSignup),
    AUTH_JWT_EXP: String(s.jwtExp),
    AUTH_MAILER_AUTOCONFIRM: String(s.mailerAutoconfirm),
    AUTH_SMTP_HOST: s.smtpHost,
    AUTH_SMTP_PORT: String(s.smtpPort),
    AUTH_SMTP_USER: s.smtpUser,
    AUTH_SMTP_PASS: s.smtpPass,
    AUTH_SMTP_ADMIN_EMAIL: s.smtpAdminEmail,
    AUTH_SMTP_SENDER_NAME: s.smtpSenderName,
  };
}
