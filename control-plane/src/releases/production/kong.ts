import { interpolate } from "../variables.js";

/**
 * The API gateway's declarative config (Kong 2.8, DB-less), written by us from the routes of the
 * official bundle (docker/volumes/api/kong.yml; key translation and the routes added in 2026 from
 * its 089440fa revision). Rendered as JSON into `kong.json`: Kong reads a `.json` declarative file with
 * its JSON parser, and JSON is also valid YAML. The anon and service_role keys are filled in when
 * the stack is rendered (legacy HS256 JWTs: base64url and dots only, nothing to escape in JSON).
 *
 * Access: key-auth identifies the consumer from the `apikey` header (or query parameter); the
 * ACL plugin then allows `anon` (group anon) and `service_role` (group admin). Each consumer has
 * two keys, as upstream: the legacy JWT and the new opaque key (anon ← ANON_KEY + PUBLISHABLE_KEY,
 * service_role ← SERVICE_ROLE_KEY + SECRET_KEY). `/pg/` is admin only. Storage and functions
 * carry no key-auth, like the bundle: storage checks JWTs and S3 signatures itself, the functions
 * runtime verifies JWTs (VERIFY_JWT).
 *
 * Key translation (review #7): the services behind the gateway verify HS256 JWTs only, so a
 * request-transformer rewrites `Authorization` on every API route: a session JWT the client sent
 * is kept; otherwise an `sb_publishable_…` apikey becomes `Bearer <anon JWT>` and an
 * `sb_secret_…` apikey `Bearer <service_role JWT>` (what upstream's kong-entrypoint.sh builds as
 * $LUA_AUTH_EXPR, except that upstream maps to ES256 JWTs its verifiers get a JWKS for). Realtime's
 * websocket gets the same for its `apikey` query parameter, in the `x-api-key` header it reads.
 */

interface Plugin {
  name: string;
  config?: Record<string, unknown>;
}

const ANON = interpolate("ANON_KEY");
const SERVICE = interpolate("SERVICE_ROLE_KEY");
const PUBLISHABLE = interpolate("PUBLISHABLE_KEY");
const SECRET = interpolate("SECRET_KEY");

/**
 * request-transformer's template (a Lua expression in `$(…)`, evaluated by Kong per request):
 * keep a non-`sb_` Authorization, else map the opaque apikey to its role's JWT, else leave what
 * the client sent. The keys are base64url/JWT characters: nothing to escape in a Lua string.
 */
export const AUTH_EXPR =
  `$((headers.authorization ~= nil and headers.authorization:sub(1, 10) ~= 'Bearer sb_' and headers.authorization)` +
  ` or (headers.apikey == '${SECRET}' and 'Bearer ${SERVICE}')` +
  ` or (headers.apikey == '${PUBLISHABLE}' and 'Bearer ${ANON}')` +
  ` or (headers.apikey ~= nil and headers.apikey:sub(1, 3) ~= 'sb_' and ('Bearer ' .. headers.apikey))` +
  ` or headers.authorization)`;
/** The same for Realtime's websocket: the key arrives as `?apikey=`, Realtime reads `x-api-key` first. */
export const REALTIME_WS_EXPR =
  `$((query_params.apikey == '${SECRET}' and '${SERVICE}')` +
  ` or (query_params.apikey == '${PUBLISHABLE}' and '${ANON}') or query_params.apikey)`;

const translate = (header: string, expr: string): Plugin => ({
  name: "request-transformer",
  config: { add: { headers: [`${header}: ${expr}`] }, replace: { headers: [`${header}: ${expr}`] } },
});
const authTranslation = translate("Authorization", AUTH_EXPR);

const cors: Plugin = { name: "cors" };
const keyAuth: Plugin = { name: "key-auth", config: { hide_credentials: false } };
const allow = (...groups: string[]): Plugin => ({ name: "acl", config: { hide_groups_header: true, allow: groups } });
const forbid: Plugin = { name: "request-termination", config: { status_code: 403, message: "Access is forbidden." } };

function service(
  name: string,
  url: string,
  path: string,
  plugins: Plugin[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name, url, ...extra, routes: [{ name, strip_path: true, paths: [path] }], plugins };
}

/** Realtime takes its tenant from the host name it is called by: see the service's network alias. */
export const REALTIME_HOST = "realtime-dev.supabase-realtime";

const open = (name: string, upstream: string) =>
  service(`auth-v1-open-${name}`, `http://auth:9999/${upstream}`, `/auth/v1/${upstream}`, [cors]);

export const KONG_CONFIG = {
  _format_version: "2.1",
  _transform: true,
  consumers: [
    { username: "anon", keyauth_credentials: [{ key: ANON }, { key: PUBLISHABLE }] },
    { username: "service_role", keyauth_credentials: [{ key: SERVICE }, { key: SECRET }] },
  ],
  acls: [
    { consumer: "anon", group: "anon" },
    { consumer: "service_role", group: "admin" },
  ],
  services: [
    // Auth endpoints reached by browsers without an apikey (email links, OAuth, key discovery).
    open("verify", "verify"),
    open("callback", "callback"),
    open("authorize", "authorize"),
    open("jwks", ".well-known/jwks.json"),
    // SAML SSO (kong.yml 089440fa auth-v1-open-sso-acs / -metadata).
    open("sso-acs", "sso/saml/acs"),
    open("sso-metadata", "sso/saml/metadata"),
    // OAuth server discovery (kong.yml 089440fa well-known-oauth).
    service(
      "well-known-oauth",
      "http://auth:9999/.well-known/oauth-authorization-server",
      "/.well-known/oauth-authorization-server",
      [cors],
    ),
    service("auth-v1", "http://auth:9999/", "/auth/v1/", [cors, keyAuth, authTranslation, allow("admin", "anon")]),
    service("rest-v1", "http://rest:3000/", "/rest/v1/", [cors, keyAuth, authTranslation, allow("admin", "anon")]),
    service("graphql-v1", "http://rest:3000/rpc/graphql", "/graphql/v1", [
      cors,
      keyAuth,
      {
        name: "request-transformer",
        config: {
          add: { headers: ["Content-Profile:graphql_public", `Authorization: ${AUTH_EXPR}`] },
          replace: { headers: [`Authorization: ${AUTH_EXPR}`] },
        },
      },
      allow("admin", "anon"),
    ]),
    // Realtime's tenant administration API and its OpenAPI spec stay internal (upstream 0.6.0
    // "block access to Realtime /api/tenants and /api/openapi").
    service("realtime-v1-tenants", `http://${REALTIME_HOST}:4000/api/tenants`, "/realtime/v1/api/tenants", [forbid]),
    service("realtime-v1-openapi", `http://${REALTIME_HOST}:4000/api/openapi`, "/realtime/v1/api/openapi", [forbid]),
    service("realtime-v1-rest", `http://${REALTIME_HOST}:4000/api`, "/realtime/v1/api", [
      cors,
      keyAuth,
      authTranslation,
      allow("admin", "anon"),
    ]),
    service(
      "realtime-v1-ws",
      `http://${REALTIME_HOST}:4000/socket`,
      "/realtime/v1/",
      [cors, keyAuth, translate("x-api-key", REALTIME_WS_EXPR), allow("admin", "anon")],
      { protocol: "ws" },
    ),
    service("storage-v1", "http://storage:5000/", "/storage/v1/", [cors, authTranslation]),
    service("functions-v1", "http://functions:9000/", "/functions/v1/", [cors, authTranslation], {
      read_timeout: 150000,
    }),
    // #10: no /analytics/v1/ route (upstream removed it on 2026-02-16: the Logflare API stays internal).
    service("meta", "http://meta:8080/", "/pg/", [keyAuth, allow("admin")]),
  ],
};

export const KONG_TEMPLATE = `${JSON.stringify(KONG_CONFIG, null, 2)}\n`;
