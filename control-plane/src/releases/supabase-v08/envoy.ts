import { REALTIME_HOST } from "../production/kong.js";
import { interpolate } from "../variables.js";

/**
 * The API gateway of the v0.8 release: Envoy (upstream's `api-gw` service since self-hosted 0.8.0,
 * supabase/supabase#48153), with a static config written by us as JSON (`envoy.json`: Envoy picks
 * the format from the extension). The routes are those of the Kong release (kong.ts), which
 * follow upstream's kong.yml; what Kong's key-auth, ACL and request-transformer plugins did is one
 * Lua filter here (Envoy runs LuaJIT), driven by each route's metadata:
 *
 * - `access: "open"`  — no key needed (auth's browser routes, storage, functions);
 * - `access: "anon"`  — an `apikey` (header, or `?apikey=` for websockets) of the anon or the
 *   service_role consumer: ANON_KEY / PUBLISHABLE_KEY or SERVICE_ROLE_KEY / SECRET_KEY, else
 *   401 "No API key found in request" / "Invalid authentication credentials" (Kong's answers);
 * - `access: "admin"` — only the service_role keys (403 otherwise), like Kong's ACL group admin.
 *
 * On every route the filter then maps the key to a JWT the services verify (as kong.ts's
 * AUTH_EXPR): a session JWT the client sent is kept; an `sb_publishable_` key becomes
 * `Bearer <ANON_KEY>`, an `sb_secret_` key `Bearer <SERVICE_ROLE_KEY>`; a legacy key without
 * Authorization becomes its own bearer. The realtime websocket also gets `x-api-key`.
 * Blocked routes (realtime's tenant API and OpenAPI spec) answer 403 directly.
 */

const ANON = interpolate("ANON_KEY");
const SERVICE = interpolate("SERVICE_ROLE_KEY");
const PUBLISHABLE = interpolate("PUBLISHABLE_KEY");
const SECRET = interpolate("SECRET_KEY");

/** The Lua filter (keys filled in at render time: base64url/JWT characters, safe in Lua strings). */
export const ENVOY_LUA = `-- SupaManager: API keys at the gateway (see control-plane/src/releases/supabase-v08/envoy.ts).
local ROLE = {
  ["${ANON}"] = "anon", ["${PUBLISHABLE}"] = "anon",
  ["${SERVICE}"] = "service_role", ["${SECRET}"] = "service_role",
}
local OPAQUE = { ["${PUBLISHABLE}"] = "${ANON}", ["${SECRET}"] = "${SERVICE}" }

local function query_param(path, name)
  local query = path and path:match("%?(.*)$")
  if not query then return nil end
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if k == name then return v end
  end
  return nil
end

local function deny(handle, status, message)
  handle:respond({ [":status"] = status, ["content-type"] = "application/json" }, '{"message":"' .. message .. '"}')
end

function envoy_on_request(handle)
  local access = handle:metadata():get("access") or "open"
  local headers = handle:headers()
  local key = headers:get("apikey")
  local from_query = false
  if key == nil then
    key = query_param(headers:get(":path"), "apikey")
    from_query = key ~= nil
  end
  local role = key and ROLE[key]
  if access == "anon" or access == "admin" then
    if key == nil then return deny(handle, "401", "No API key found in request") end
    if role == nil then return deny(handle, "401", "Invalid authentication credentials") end
    if access == "admin" and role ~= "service_role" then return deny(handle, "403", "You cannot consume this service") end
  end
  if key == nil then return end
  local jwt = OPAQUE[key] or (key:sub(1, 3) ~= "sb_" and key) or nil
  if from_query and jwt then headers:replace("x-api-key", jwt) end
  local auth = headers:get("authorization")
  if auth ~= nil and auth:sub(1, 10) ~= "Bearer sb_" then return end
  if OPAQUE[key] then
    headers:replace("authorization", "Bearer " .. OPAQUE[key])
  elseif auth == nil and jwt then
    headers:replace("authorization", "Bearer " .. jwt)
  end
end
`;

type Access = "open" | "anon" | "admin";

interface Route {
  prefix: string;
  cluster?: string;
  rewrite?: string;
  access?: Access;
  /** 403 without reaching any upstream. */
  forbid?: boolean;
  timeout?: string;
  headers?: Record<string, string>;
}

/** Routes, most specific first (Envoy takes the first match). Paths follow the Kong release's. */
export const ENVOY_ROUTES: Route[] = [
  ...["verify", "callback", "authorize", ".well-known/jwks.json", "sso/saml/acs", "sso/saml/metadata"].map(
    (p): Route => ({ prefix: `/auth/v1/${p}`, cluster: "auth", rewrite: `/${p}`, access: "open" }),
  ),
  {
    prefix: "/.well-known/oauth-authorization-server",
    cluster: "auth",
    rewrite: "/.well-known/oauth-authorization-server",
    access: "open",
  },
  { prefix: "/auth/v1/", cluster: "auth", rewrite: "/", access: "anon" },
  { prefix: "/rest/v1/", cluster: "rest", rewrite: "/", access: "anon" },
  {
    prefix: "/graphql/v1",
    cluster: "rest",
    rewrite: "/rpc/graphql",
    access: "anon",
    headers: { "Content-Profile": "graphql_public" },
  },
  { prefix: "/realtime/v1/api/tenants", forbid: true },
  { prefix: "/realtime/v1/api/openapi", forbid: true },
  { prefix: "/realtime/v1/api", cluster: "realtime", rewrite: "/api", access: "anon" },
  // Websockets: no route timeout (a socket lives as long as the client keeps it).
  { prefix: "/realtime/v1/", cluster: "realtime", rewrite: "/socket/", access: "anon", timeout: "0s" },
  { prefix: "/storage/v1/", cluster: "storage", rewrite: "/", access: "open" },
  { prefix: "/functions/v1/", cluster: "functions", rewrite: "/", access: "open", timeout: "150s" },
  { prefix: "/pg/", cluster: "meta", rewrite: "/", access: "admin" },
];

/** Upstream clusters: service name on the project's network and port. */
export const ENVOY_CLUSTERS: Record<string, { host: string; port: number }> = {
  auth: { host: "auth", port: 9999 },
  rest: { host: "rest", port: 3000 },
  realtime: { host: REALTIME_HOST, port: 4000 },
  storage: { host: "storage", port: 5000 },
  functions: { host: "functions", port: 9000 },
  meta: { host: "meta", port: 8080 },
};

const T = "type.googleapis.com/envoy.extensions";

function route(r: Route): Record<string, unknown> {
  const match = { prefix: r.prefix };
  if (r.forbid) {
    return { match, direct_response: { status: 403, body: { inline_string: '{"message":"Access is forbidden."}' } } };
  }
  return {
    match,
    route: { cluster: r.cluster, prefix_rewrite: r.rewrite, timeout: r.timeout ?? "60s" },
    metadata: { filter_metadata: { "envoy.filters.http.lua": { access: r.access ?? "open" } } },
    ...(r.headers
      ? {
          request_headers_to_add: Object.entries(r.headers).map(([key, value]) => ({
            header: { key, value },
            append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
          })),
        }
      : {}),
  };
}

export const ENVOY_CONFIG = {
  // The admin API on loopback only: the health check asks it, nothing else may.
  admin: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } },
  static_resources: {
    listeners: [
      {
        name: "api",
        address: { socket_address: { address: "0.0.0.0", port_value: 8000 } },
        filter_chains: [
          {
            filters: [
              {
                name: "envoy.filters.network.http_connection_manager",
                typed_config: {
                  "@type": `${T}.filters.network.http_connection_manager.v3.HttpConnectionManager`,
                  stat_prefix: "api",
                  upgrade_configs: [{ upgrade_type: "websocket" }],
                  route_config: {
                    name: "api",
                    virtual_hosts: [
                      {
                        name: "api",
                        domains: ["*"],
                        typed_per_filter_config: {
                          "envoy.filters.http.cors": {
                            "@type": `${T}.filters.http.cors.v3.CorsPolicy`,
                            allow_origin_string_match: [{ safe_regex: { regex: ".*" } }],
                            allow_methods: "GET,POST,PUT,PATCH,DELETE,OPTIONS,HEAD",
                            allow_headers:
                              "authorization,apikey,content-type,x-client-info,accept-profile,content-profile,prefer,range,x-upsert,x-api-key",
                            expose_headers: "content-range,range",
                            max_age: "3600",
                          },
                        },
                        routes: ENVOY_ROUTES.map(route),
                      },
                    ],
                  },
                  http_filters: [
                    { name: "envoy.filters.http.cors", typed_config: { "@type": `${T}.filters.http.cors.v3.Cors` } },
                    {
                      name: "envoy.filters.http.lua",
                      typed_config: {
                        "@type": `${T}.filters.http.lua.v3.Lua`,
                        default_source_code: { inline_string: ENVOY_LUA },
                      },
                    },
                    {
                      name: "envoy.filters.http.router",
                      typed_config: { "@type": `${T}.filters.http.router.v3.Router` },
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
    // STRICT_DNS over the project's network (IPv4: the services listen there); a part the project
    // left out has no host, so its routes answer 503 and Envoy still starts.
    clusters: Object.entries(ENVOY_CLUSTERS).map(([name, c]) => ({
      name,
      type: "STRICT_DNS",
      connect_timeout: "5s",
      dns_lookup_family: "V4_ONLY",
      load_assignment: {
        cluster_name: name,
        endpoints: [
          { lb_endpoints: [{ endpoint: { address: { socket_address: { address: c.host, port_value: c.port } } } }] },
        ],
      },
    })),
  },
};

export const ENVOY_TEMPLATE = `${JSON.stringify(ENVOY_CONFIG, null, 2)}\n`;
