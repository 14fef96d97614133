import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ProjectStore } from "../../../host-agent/src/reconcile/store.js";
import { authVariables, DEFAULT_AUTH_SETTINGS } from "../services/auth-settings/settings.js";
import { buildReleaseCatalog } from "./catalog.js";
import { computeLimits, effectiveParts, minimumComputeSize } from "./compute.js";
import type { ReleaseManifest, ReleasePart } from "./manifest.js";
import { PRODUCTION_RELEASE_NAME } from "./production/index.js";
import { releasePorts, renderStack } from "./render.js";
import { ENVOY_LUA } from "./supabase-v08/envoy.js";
import { V08_RELEASE_NAME } from "./supabase-v08/index.js";
import { type ProjectVariable, SECRET_VARIABLES } from "./variables.js";

/**
 * Conformance: upstream's facts about each service, checked against the rendered stack of every
 * release that runs Supabase's images (which cannot be pulled here), for two projects on one host.
 * Each fact names its source: `compose` = supabase/supabase docker/docker-compose.yml (00069a4c for
 * the Kong release's era), `logs.yml` = docker/docker-compose.logs.yml (07b8529e), `envoy.yml` =
 * docker/docker-compose.envoy.yml (24294f0c), `.env` = docker/.env.example, `review` =
 * shared/design/reviews/production-release-2026-12.md, `upstream-2026` = shared/design/upstream-2026.md.
 */

const catalog = buildReleaseCatalog({ defaultRelease: "local" });
const RELEASES = [PRODUCTION_RELEASE_NAME, V08_RELEASE_NAME].map((n) => catalog.get(n) as ReleaseManifest);
const ALL_PARTS: ReleasePart[] = ["logs", "realtime", "storage", "functions"];

type Service = {
  container_name: string;
  ports?: string[];
  volumes?: string[];
  environment: Record<string, string>;
  mem_limit: number;
  healthcheck?: { test: string[] };
  networks?: { default: { aliases: string[] } };
};
type Compose = {
  services: Record<string, Service>;
  networks: Record<string, { name: string }>;
  volumes?: Record<string, { name: string }>;
};

function render(release: ReleaseManifest, ref: string, firstPort: number, parts: ReleasePart[] = ALL_PARTS) {
  const ports = Object.fromEntries(releasePorts(release).map((p, i) => [p.name, firstPort + i]));
  const variables: Partial<Record<ProjectVariable, string>> = {
    ...Object.fromEntries(
      SECRET_VARIABLES.map((n) => [n, `${ref.slice(0, 2)}${randomBytes(18).toString("base64url")}`]),
    ),
    PUBLISHABLE_KEY: `sb_publishable_${randomBytes(16).toString("base64url")}`,
    SECRET_KEY: `sb_secret_${randomBytes(16).toString("base64url")}`,
    PROJECT_REF: ref,
    POOLER_TENANT_ID: ref,
    API_EXTERNAL_URL: `http://10.0.0.5:${ports.gateway}`,
    SUPABASE_PUBLIC_URL: `http://10.0.0.5:${ports.gateway}`,
    ...authVariables(DEFAULT_AUTH_SETTINGS),
  };
  const size = minimumComputeSize(release, parts) ?? "xlarge";
  const stack = renderStack(release, { ref, bindAddress: "10.0.0.5", ports, ...computeLimits(size), variables, parts });
  return { ref, ports, variables, stack, compose: JSON.parse(stack.composeFile) as Compose };
}

/** The gateway service of a release (kong or api-gw): the one publishing `gateway`. */
const gatewayOf = (r: ReleaseManifest) =>
  Object.entries(r.services).find(([, s]) => s.ports.some((p) => p.name === "gateway"))?.[0] as string;

/**
 * Where each service listens (its own config or image), so a health check's target must reach it:
 * an IPv4-only listener cannot be asked as `localhost` by a client that only tries ::1 first
 * (busybox wget, node fetch), since Docker 26 maps localhost to ::1 (review #1, #2).
 */
const LISTEN: Record<string, { ipv6: boolean; source: string }> = {
  vector: { ipv6: false, source: "vector api.address 0.0.0.0:9001 (review #1)" },
  storage: { ipv6: false, source: "storage-api src/config.ts SERVER_HOST 0.0.0.0 (review #2)" },
  analytics: { ipv6: false, source: "Logflare Phoenix endpoint on 0.0.0.0:4000 (review #3)" },
  meta: { ipv6: true, source: "postgres-meta PG_META_HOST default '::'" },
  auth: { ipv6: true, source: "GoTrue GOTRUE_API_HOST 0.0.0.0, Go's wildcard listener is dual-stack (review)" },
};
/** Clients that try every address of a name (so `localhost` falls back to 127.0.0.1). */
const FALLS_BACK = new Set(["curl", "pg_isready"]);

describe.each(RELEASES.map((r) => [r.name, r] as const))("conformance of %s", (_, release) => {
  const A = render(release, "aaaaaaaaaaaaaaaaaaaa", 54100);
  const B = render(release, "bbbbbbbbbbbbbbbbbbbb", 54200);
  const gw = gatewayOf(release);
  const env = (svc: string) => A.compose.services[svc]?.environment ?? {};

  it("health checks reach every service over IPv4 and IPv6: a service name, 127.0.0.1, or localhost only where the server or the client is dual-stack", () => {
    for (const [name, s] of Object.entries(A.compose.services)) {
      const test = s.healthcheck?.test ?? [];
      const text = test.join(" ");
      for (const m of text.matchAll(/https?:\/\/([^:/\s]+)/g)) {
        const host = m[1] as string;
        if (host === "localhost") {
          const client = test[0] === "CMD-SHELL" ? (test[1] ?? "").split(" ")[0] : test[1];
          expect(LISTEN[name]?.ipv6 || FALLS_BACK.has(client as string), `${name}: localhost with ${client}`).toBe(
            true,
          );
        } else {
          expect([name, "127.0.0.1"], `${name} asks ${host}`).toContain(host);
        }
      }
    }
    // compose services.vector / services.storage healthcheck: by service name.
    expect(A.compose.services.vector?.healthcheck?.test.join(" ")).toContain("http://vector:9001/health");
    expect(A.compose.services.storage?.healthcheck?.test.join(" ")).toContain("http://storage:5000/status");
  });

  it("listen addresses: GoTrue on 0.0.0.0:9999, realtime and supavisor on 4000, meta on 8080 (compose)", () => {
    expect(env("auth")).toMatchObject({ GOTRUE_API_HOST: "0.0.0.0", GOTRUE_API_PORT: "9999" });
    expect(env("realtime").PORT).toBe("4000");
    expect(env("supavisor").PORT).toBe("4000");
    expect(env("meta").PG_META_PORT).toBe("8080");
    expect(env("imgproxy").IMGPROXY_BIND).toBe(":5001");
  });

  it("required environment: upstream's names and values (compose services.*.environment)", () => {
    expect(env("rest")).toMatchObject({ PGRST_DB_ANON_ROLE: "anon", PGRST_DB_USE_LEGACY_GUCS: "false" });
    expect(env("auth")).toMatchObject({
      GOTRUE_JWT_ADMIN_ROLES: "service_role",
      GOTRUE_JWT_AUD: "authenticated",
      GOTRUE_JWT_DEFAULT_GROUP_NAME: "authenticated",
      GOTRUE_DB_DRIVER: "postgres",
    });
    expect(env("realtime")).toMatchObject({
      DB_AFTER_CONNECT_QUERY: "SET search_path TO _realtime",
      SEED_SELF_HOST: "true",
      APP_NAME: "realtime",
    });
    for (const k of ["METRICS_JWT_SECRET", "API_JWT_SECRET", "SECRET_KEY_BASE", "DB_ENC_KEY"])
      expect(env("realtime")[k], k).toBeTruthy();
    expect(env("storage")).toMatchObject({
      STORAGE_BACKEND: "file",
      POSTGREST_URL: "http://rest:3000",
      REQUEST_ALLOW_X_FORWARDED_PATH: "true",
    });
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Compose reference is what is tested
    expect(env("storage").STORAGE_PUBLIC_URL).toBe("${SUPABASE_PUBLIC_URL}");
    expect(env("analytics")).toMatchObject({
      LOGFLARE_SINGLE_TENANT: "true",
      LOGFLARE_SUPABASE_MODE: "true",
      DB_SCHEMA: "_analytics",
    });
    expect(env("db").POSTGRES_HOST).toBe("/var/run/postgresql");
  });

  it("the gateway: routes, consumers and access as upstream's kong.yml (089440fa) and envoy config", () => {
    const files = A.stack.files.map((f) => f.content).join("\n");
    for (const path of [
      "/auth/v1/",
      "/rest/v1/",
      "/graphql/v1",
      "/realtime/v1/",
      "/storage/v1/",
      "/functions/v1/",
      "/pg/",
    ]) {
      expect(files, path).toContain(`"${path}"`);
    }
    expect(files).not.toContain('"/analytics/v1/"');
    for (const key of ["ANON_KEY", "SERVICE_ROLE_KEY", "PUBLISHABLE_KEY", "SECRET_KEY"] as const) {
      expect(files.includes(A.variables[key] as string), key).toBe(true);
    }
    expect(release.opaqueKeys).toBe(true);
  });

  it("worker counts and memory floors (review #4, #5; upstream-2026 §4)", () => {
    if (gw === "kong") expect(env("kong").KONG_NGINX_WORKER_PROCESSES).toBe("2");
    const floors: Record<string, number> = {
      analytics: 1024,
      realtime: 200,
      supavisor: 191,
      meta: 110,
      storage: 113,
      db: 95,
    };
    for (const [svc, mib] of Object.entries(floors)) {
      expect(A.compose.services[svc]?.mem_limit ?? 0, svc).toBeGreaterThanOrEqual(mib * 1024 * 1024);
    }
    const all = Object.values(A.compose.services).reduce((n, s) => n + s.mem_limit, 0);
    expect(all).toBeLessThanOrEqual(computeLimits(minimumComputeSize(release, ALL_PARTS) ?? "xlarge").memoryBytes);
  });

  it("mailer links and public URLs go through the gateway's /auth/v1 (.env MAILER_URLPATHS_*, 0.7.0 API_EXTERNAL_URL)", () => {
    const a = env("auth");
    const external = a.API_EXTERNAL_URL as string;
    const path = a.GOTRUE_MAILER_URLPATHS_CONFIRMATION ?? "/verify";
    // GoTrue joins the path to API_EXTERNAL_URL's path.
    expect(`${new URL(external.replace(/\$\{[A-Z_]+\}/, "http://h:1")).pathname.replace(/\/$/, "")}${path}`).toBe(
      "/auth/v1/verify",
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Compose reference is what is tested
    expect(a.GOTRUE_SITE_URL).toBe("${SITE_URL}");
    expect(A.stack.env.SITE_URL).not.toContain(String(A.ports.gateway));
  });

  it("publishes only the gateway and Supavisor's two ports (compose: db has no ports)", () => {
    const published = Object.entries(A.compose.services)
      .filter(([, s]) => s.ports)
      .map(([n]) => n)
      .sort();
    expect(published).toEqual([gw, "supavisor"].sort());
    expect(A.compose.services.db?.ports).toBeUndefined();
  });

  it("two projects on one host share no container, port, network or volume", () => {
    const containers = (c: Compose) => Object.values(c.services).map((s) => s.container_name);
    const ports = (c: Compose) => Object.values(c.services).flatMap((s) => s.ports ?? []);
    const volumes = (c: Compose) => Object.values(c.volumes ?? {}).map((v) => v.name);
    expect(containers(A.compose).filter((n) => containers(B.compose).includes(n))).toEqual([]);
    expect(ports(A.compose).filter((p) => ports(B.compose).includes(p))).toEqual([]);
    expect(A.compose.networks.default?.name).not.toBe(B.compose.networks.default?.name);
    expect(volumes(A.compose).filter((v) => volumes(B.compose).includes(v))).toEqual([]);
  });

  it("parts: a project without them runs none of their services and depends on none", () => {
    const core = render(release, "cccccccccccccccccccc", 54300, []);
    const names = Object.keys(core.compose.services).sort();
    for (const svc of ["vector", "analytics", "realtime", "storage", "imgproxy", "functions"])
      expect(names).not.toContain(svc);
    for (const s of Object.values(core.compose.services) as (Service & { depends_on?: Record<string, unknown> })[]) {
      for (const d of Object.keys(s.depends_on ?? {})) expect(names).toContain(d);
    }
    expect(core.stack.requiredServices.sort()).toEqual(["auth", "db", gw, "meta", "rest", "supavisor"].sort());
  });

  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  it.runIf(spawnSync("docker", ["compose", "version"]).status === 0)(
    "docker compose config (v2) accepts both projects' stacks, written as the agent writes them",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "conformance-"));
      dirs.push(dir);
      const store = new ProjectStore(dir);
      await store.init();
      for (const p of [A, B]) {
        await store.writeStack(p.ref, p.stack);
        const d = join(dir, "projects", p.ref);
        const out = spawnSync(
          "docker",
          [
            "compose",
            "--project-name",
            p.ref,
            "--project-directory",
            d,
            "--file",
            join(d, "docker-compose.json"),
            "--env-file",
            join(d, ".env"),
            "config",
            "--format",
            "json",
          ],
          { encoding: "utf8", env: { ...p.stack.env, PATH: process.env.PATH ?? "/usr/bin:/bin" } },
        );
        expect(out.stderr).not.toMatch(/ERROR|invalid|not set/i);
        expect(out.status).toBe(0);
        const resolved = JSON.parse(out.stdout) as {
          name: string;
          services: Record<string, { container_name: string }>;
        };
        expect(resolved.name).toBe(p.ref);
        for (const s of Object.values(resolved.services)) expect(s.container_name.startsWith(`${p.ref}-`)).toBe(true);
      }
    },
  );
});

describe(`${V08_RELEASE_NAME}: upstream's v0.8 layout`, () => {
  const release = catalog.get(V08_RELEASE_NAME) as ReleaseManifest;
  const A = render(release, "aaaaaaaaaaaaaaaaaaaa", 54100, effectiveParts(release));

  it("Envoy is the gateway `api-gw`, PostgreSQL 17, logs opt-in, pg-meta as postgres (upstream-2026 §0)", () => {
    expect(release.services["api-gw"]?.image).toMatch(/^envoyproxy\/envoy:v1\.\d+\.\d+$/);
    expect(release.services.kong).toBeUndefined();
    expect(release.services.db?.image).toBe("supabase/postgres:17.6.1.136");
    expect(effectiveParts(release)).toEqual(["realtime", "storage", "functions"]);
    expect(Object.keys(A.compose.services)).not.toContain("analytics");
    expect(A.compose.services.meta?.environment.PG_META_DB_USER).toBe("postgres");
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Compose reference is what is tested
    expect(A.compose.services.auth?.environment.API_EXTERNAL_URL).toBe("${SUPABASE_PUBLIC_URL}/auth/v1");
    for (const s of Object.values(release.services)) expect(s.image).not.toMatch(/:latest$|^[^:]+$/);
  });

  it("with logs, vector waits for analytics and nothing else waits for logs (logs.yml)", () => {
    const withLogs = render(release, "dddddddddddddddddddd", 54400, ALL_PARTS);
    const deps = (s: string) =>
      Object.keys((withLogs.compose.services[s] as { depends_on?: object })?.depends_on ?? {});
    expect(deps("vector")).toEqual(["analytics"]);
    expect(deps("db")).toEqual([]);
    for (const s of ["auth", "rest", "realtime", "meta", "supavisor", "api-gw"])
      expect(deps(s), s).not.toContain("analytics");
  });

  const hasLuajit = spawnSync("luajit", ["-v"]).status === 0;
  it.runIf(hasLuajit)(
    "the Envoy Lua filter checks keys and maps sb_ keys like Kong (LuaJIT, a mocked request handle)",
    () => {
      const v = A.variables as Record<string, string>;
      const lua = A.stack.files.find((f) => f.path === "files/envoy/envoy.json")?.content as string;
      const source = (
        JSON.parse(lua) as {
          static_resources: {
            listeners: {
              filter_chains: {
                filters: {
                  typed_config: {
                    http_filters: { typed_config: { default_source_code?: { inline_string: string } } }[];
                  };
                }[];
              }[];
            }[];
          };
        }
      ).static_resources.listeners[0]?.filter_chains[0]?.filters[0]?.typed_config.http_filters[1]?.typed_config
        .default_source_code?.inline_string as string;
      expect(source).toContain(v.PUBLISHABLE_KEY);
      expect(ENVOY_LUA).toContain("envoy_on_request");
      const cases: [string, Record<string, string>][] = [
        ["anon", { apikey: v.PUBLISHABLE_KEY as string, authorization: `Bearer ${v.PUBLISHABLE_KEY}` }],
        ["anon", { apikey: v.SECRET_KEY as string }],
        ["anon", { apikey: v.PUBLISHABLE_KEY as string, authorization: "Bearer user-session" }],
        ["anon", { apikey: "sb_publishable_wrong" }],
        ["anon", {}],
        ["admin", { apikey: v.PUBLISHABLE_KEY as string }],
        ["admin", { apikey: v.SECRET_KEY as string }],
        ["anon", { ":path": `/realtime/v1/websocket?apikey=${v.PUBLISHABLE_KEY}&vsn=1.0.0` }],
        ["open", {}],
      ];
      const table = (o: Record<string, string>) =>
        `{${Object.entries(o)
          .map(([k, val]) => `[${JSON.stringify(k)}]=${JSON.stringify(val)}`)
          .join(",")}}`;
      const script = [
        source,
        "local function run(access, h)",
        "  local out = {}",
        "  local handle = {",
        "    metadata = function() return { get = function(_, k) return k == 'access' and access or nil end } end,",
        "    headers = function() return { get = function(_, k) return h[k] end, replace = function(_, k, val) h[k] = val end } end,",
        "    respond = function(_, hd, body) out.status = hd[':status'] end,",
        "  }",
        "  envoy_on_request(handle)",
        "  print((out.status or '-') .. '|' .. tostring(h['authorization']) .. '|' .. tostring(h['x-api-key']))",
        "end",
        ...cases.map(([access, h]) => `run(${JSON.stringify(access)}, ${table(h)})`),
      ].join("\n");
      const out = spawnSync("luajit", ["-e", script], { encoding: "utf8" });
      expect(out.stderr).toBe("");
      expect(out.stdout.trimEnd().split("\n")).toEqual([
        `-|Bearer ${v.ANON_KEY}|nil`,
        `-|Bearer ${v.SERVICE_ROLE_KEY}|nil`,
        "-|Bearer user-session|nil",
        "401|nil|nil",
        "401|nil|nil",
        "403|nil|nil",
        `-|Bearer ${v.SERVICE_ROLE_KEY}|nil`,
        `-|Bearer ${v.ANON_KEY}|${v.ANON_KEY}`,
        "-|nil|nil",
      ]);
    },
  );
});
