/**
 * The variables a release may refer to as `${NAME}` — in service environments and in config file
 * templates. Values are per project: secrets are generated once at project creation and stored
 * encrypted (services/secrets/), facts are derived from the project and its host.
 * The full list and what uses each is in docs/releases.md.
 */
export const SECRET_VARIABLES = [
  /** The project database's superuser password: the `db_pass` given at creation. */
  "POSTGRES_PASSWORD",
  "JWT_SECRET",
  "ANON_KEY",
  "SERVICE_ROLE_KEY",
  /** New-style API keys and the ES256 signing key set (private JWKS for auth, public for verifiers). */
  "PUBLISHABLE_KEY",
  "SECRET_KEY",
  "JWT_KEYS",
  "JWT_JWKS",
  "SECRET_KEY_BASE",
  "VAULT_ENC_KEY",
  "DB_ENC_KEY",
  "PG_META_CRYPTO_KEY",
  "LOGFLARE_PUBLIC_ACCESS_TOKEN",
  "LOGFLARE_PRIVATE_ACCESS_TOKEN",
  "S3_PROTOCOL_ACCESS_KEY_ID",
  "S3_PROTOCOL_ACCESS_KEY_SECRET",
  "PGSODIUM_ROOT_KEY",
  "DASHBOARD_USERNAME",
  "DASHBOARD_PASSWORD",
  /** Password of the read-only login role used for read_only members' SQL. */
  "READ_ONLY_PASSWORD",
  /** The SMTP password of the project's auth settings (services/auth-settings/); "" when unset. */
  "AUTH_SMTP_PASS",
] as const;

export const FACT_VARIABLES = [
  "PROJECT_REF",
  "POOLER_TENANT_ID",
  /** The URL the project's API is reached at (gateway on the host's bind address). */
  "API_EXTERNAL_URL",
  "SUPABASE_PUBLIC_URL",
  /**
   * The project's auth settings (services/auth-settings/), rendered into GoTrue's environment
   * only, so a change recreates the auth container alone. SITE_URL is the app's URL.
   */
  "SITE_URL",
  "AUTH_URI_ALLOW_LIST",
  "AUTH_DISABLE_SIGNUP",
  "AUTH_JWT_EXP",
  "AUTH_MAILER_AUTOCONFIRM",
  "AUTH_SMTP_HOST",
  "AUTH_SMTP_PORT",
  "AUTH_SMTP_USER",
  "AUTH_SMTP_ADMIN_EMAIL",
  "AUTH_SMTP_SENDER_NAME",
] as const;

/**
 * Variables computed from other variables when a stack is rendered (render.ts), never stored or
 * generated: whatever projectVariables() passes for them is replaced.
 * - POSTGRES_PASSWORD_URLENCODED: POSTGRES_PASSWORD percent-encoded for the userinfo of a
 *   connection URL (db_pass is the user's own and may hold `@`, `:`, `/`, `%`, `#`…). Secret.
 */
export const DERIVED_VARIABLES = ["POSTGRES_PASSWORD_URLENCODED"] as const;

export const PROJECT_VARIABLES = [...SECRET_VARIABLES, ...FACT_VARIABLES, ...DERIVED_VARIABLES] as const;
export type ProjectVariable = (typeof PROJECT_VARIABLES)[number];
export type SecretVariable = (typeof SECRET_VARIABLES)[number];
export type DerivedVariable = (typeof DERIVED_VARIABLES)[number];

/**
 * Percent-encode every byte outside RFC 3986's unreserved set. Decoded alike by libpq, pgx/Go's
 * net/url, node-postgres (pg-connection-string) and Elixir's URI/Ecto (no `+` is left, so
 * form-style decoders agree too).
 */
export function urlEncodeUserinfo(value: string): string {
  return Array.from(new TextEncoder().encode(value), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9._~-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("");
}

/** The variables with the derived ones computed from their sources (when the source is known). */
export function withDerivedVariables(
  variables: Partial<Record<ProjectVariable, string>>,
): Partial<Record<ProjectVariable, string>> {
  const out = { ...variables };
  delete out.POSTGRES_PASSWORD_URLENCODED;
  if (variables.POSTGRES_PASSWORD !== undefined) {
    out.POSTGRES_PASSWORD_URLENCODED = urlEncodeUserinfo(variables.POSTGRES_PASSWORD);
  }
  return out;
}

export function isProjectVariable(name: string): name is ProjectVariable {
  return (PROJECT_VARIABLES as readonly string[]).includes(name);
}

const REFERENCE = /\$\{([A-Z_][A-Z0-9_]*)\}/g;

/** The `${NAME}` references in a string. */
export function referencedVariables(value: string): string[] {
  return [...value.matchAll(REFERENCE)].map((m) => m[1] as string);
}

/** `${NAME}`: how a manifest refers to a project variable. */
export const interpolate = (name: ProjectVariable) => `\${${name}}`;
