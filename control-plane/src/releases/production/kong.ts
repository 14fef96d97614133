import { interpolate } from "../variables.js";

/**
 * The API gateway's declarative config (Kong 2.8, DB-less), written by us from the routes of the
 * official bundle. Rendered as JSON into `kong.json`: Kong reads a `.json` declarative file with
 * its JSON parser, and JSON is also valid YAML. The anon and service_role keys are filled in when
 * the stack is rendered (legacy HS256 JWTs: base64url and dots only, nothing to escape in JSON).
 *
 * Access: key-auth identifies the consumer from the `apikey` header; the ACL plugin then allows
 * `anon` (group anon) and `service_role` (group admin). `/pg/` and `/analytics/v1/` are admin
 * only. Storage and functions carry no key-auth, like the bundle: storage checks JWTs and S3
 * signatures itself, the functions runtime verifies JWTs (VERIFY_JWT).
 */

interface Plugin {
  name: string;
  config?: Record<string, unknown>;
}

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
    { username: "anon", keyauth_credentials: [{ key: interpolate("ANON_KEY") }] },
    { username: "service_role", keyauth_credentials: [{ key: interpolate("SERVICE_ROLE_KEY") }] },
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
    service("auth-v1", "http://auth:9999/", "/auth/v1/", [cors, keyAuth, allow("admin", "anon")]),
    service("rest-v1", "http://rest:3000/", "/rest/v1/", [cors, keyAuth, allow("admin", "anon")]),
    service("graphql-v1", "http://rest:3000/rpc/graphql", "/graphql/v1", [
      cors,
      keyAuth,
      { name: "request-transformer", config: { add: { headers: ["Content-Profile:graphql_public"] } } },
      allow("admin", "anon"),
    ]),
    // Realtime's tenant administration API stays internal.
    service("realtime-v1-tenants", `http://${REALTIME_HOST}:4000/api/tenants`, "/realtime/v1/api/tenants", [forbid]),
    service("realtime-v1-rest", `http://${REALTIME_HOST}:4000/api`, "/realtime/v1/api", [
      cors,
      keyAuth,
      allow("admin", "anon"),
    ]),
    service(
      "realtime-v1-ws",
      `http://${REALTIME_HOST}:4000/socket`,
      "/realtime/v1/",
      [cors, keyAuth, allow("admin", "anon")],
      { protocol: "ws" },
    ),
    service("storage-v1", "http://storage:5000/", "/storage/v1/", [cors]),
    service("functions-v1", "http://functions:9000/", "/functions/v1/", [cors], { read_timeout: 150000 }),
    service("analytics-v1", "http://analytics:4000/", "/analytics/v1/", [cors, keyAuth, allow("admin")]),
    service("meta", "http://meta:8080/", "/pg/", [keyAuth, allow("admin")]),
  ],
};

export const KONG_TEMPLATE = `${JSON.stringify(KONG_CONFIG, null, 2)}\n`;
