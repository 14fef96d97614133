import { interpolate } from "../variables.js";

/**
 * GoTrue's environment from the project's auth settings (services/auth-settings/): the same
 * settings upstream's docker-compose.yml takes from its .env (services.auth.environment:
 * GOTRUE_SITE_URL ← SITE_URL, GOTRUE_URI_ALLOW_LIST ← ADDITIONAL_REDIRECT_URLS,
 * GOTRUE_DISABLE_SIGNUP, GOTRUE_JWT_EXP ← JWT_EXPIRY, GOTRUE_MAILER_AUTOCONFIRM ←
 * ENABLE_EMAIL_AUTOCONFIRM, GOTRUE_SMTP_*), shared by every release with a GoTrue.
 * Only the auth service refers to these variables, so changing them recreates auth alone.
 */
export const GOTRUE_SETTINGS_ENV: Record<string, string> = {
  GOTRUE_SITE_URL: interpolate("SITE_URL"),
  GOTRUE_URI_ALLOW_LIST: interpolate("AUTH_URI_ALLOW_LIST"),
  GOTRUE_DISABLE_SIGNUP: interpolate("AUTH_DISABLE_SIGNUP"),
  GOTRUE_JWT_EXP: interpolate("AUTH_JWT_EXP"),
  GOTRUE_MAILER_AUTOCONFIRM: interpolate("AUTH_MAILER_AUTOCONFIRM"),
  GOTRUE_SMTP_HOST: interpolate("AUTH_SMTP_HOST"),
  GOTRUE_SMTP_PORT: interpolate("AUTH_SMTP_PORT"),
  GOTRUE_SMTP_USER: interpolate("AUTH_SMTP_USER"),
  GOTRUE_SMTP_PASS: interpolate("AUTH_SMTP_PASS"),
  GOTRUE_SMTP_ADMIN_EMAIL: interpolate("AUTH_SMTP_ADMIN_EMAIL"),
  GOTRUE_SMTP_SENDER_NAME: interpolate("AUTH_SMTP_SENDER_NAME"),
  // #6: email links go through the gateway's open auth route (upstream .env.example
  // MAILER_URLPATHS_* = "/auth/v1/verify"); GoTrue's default `/verify` has no route.
  GOTRUE_MAILER_URLPATHS_INVITE: "/auth/v1/verify",
  GOTRUE_MAILER_URLPATHS_CONFIRMATION: "/auth/v1/verify",
  GOTRUE_MAILER_URLPATHS_RECOVERY: "/auth/v1/verify",
  GOTRUE_MAILER_URLPATHS_EMAIL_CHANGE: "/auth/v1/verify",
};
