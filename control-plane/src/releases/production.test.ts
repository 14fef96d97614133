import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Stack } from "@supamanager/shared";
import { afterAll, describe, expect, it } from "vitest";
import { ProjectStore } from "../../../host-agent/src/reconcile/store.js";
import { authVariables, DEFAULT_AUTH_SETTINGS } from "../services/auth-settings/settings.js";
import { defaultComputeSize } from "../services/projects/create.js";
import { buildReleaseCatalog } from "./catalog.js";
import { COMPUTE_CPUS, computeLimits, computeSizeAllowed, minimumComputeSize, releaseMinimumBytes } from "./compute.js";
import { LOCAL_RELEASE } from "./local.js";
import { ReleaseManifest } from "./manifest.js";
import { MEMORY_FLOORS_MIB, PRODUCTION_RELEASE, PRODUCTION_RELEASE_NAME } from "./production/index.js";
import { PASSWORD_ROLES, READ_ONLY_ROLE } from "./production/sql.js";
import { releasePorts, renderStack } from "./render.js";
import {
  FACT_VARIABLES,
  type ProjectVariable,
  SECRET_VARIABLES,
  urlEncodeUserinfo,
  withDerivedVariables,
} from "./variables.js";

const production = ReleaseManifest.parse(PRODUCTION_RELEASE);

type Compose = {
  services: Record<
    string,
    {
      container_name: string;
      ports?: string[];
      volumes?: string[];
      environment: Record<string, string>;
      cpus?: number;
      mem_limit: number;
      depends_on?: Record<string, { condition: string }>;
      networks?: { default: { aliases: string[] } };
      labels: Record<string, string>;
      healthcheck?: { test: string[] };
      security_opt?: string[];
    }
  >;
  networks: Record<string, { name: string }>;
  volumes: Record<string, { name: string }>;
};

/** Distinct random values for every secret; the db password is full of URL and shell syntax. */
function secrets(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of SECRET_VARIABLES) out[name] = `${tag}${randomBytes(24).toString("base64url")}`;
  out.POSTGRES_PASSWORD = `p@ss:w/rd?#%$x${tag}\\ "${randomBytes(6).toString("hex")}+&=`;
  out.PGSODIUM_ROOT_KEY = randomBytes(32).toString("hex");
  out.PUBLISHABLE_KEY = `sb_publishable_${tag}${randomBytes(16).toString("base64url")}`;
  out.SECRET_KEY = `sb_secret_${tag}${randomBytes(16).toString("base64url")}`;
  out.DB_ENC_KEY = randomBytes(8).toString("hex");
  return out;
}

function project(ref: string, firstPort: number, tag: string) {
  const ports = Object.fromEntries(releasePorts(production).map((p, i) => [p.name, firstPort + i]));
  const values = secrets(tag);
  const api = `http://10.0.0.5:${ports.gateway}`;
  const variables: Partial<Record<ProjectVariable, string>> = {
    ...values,
    PROJECT_REF: ref,
    POOLER_TENANT_ID: ref,
    API_EXTERNAL_URL: api,
    SUPABASE_PUBLIC_URL: api,
    ...authVariables(DEFAULT_AUTH_SETTINGS),
    AUTH_SMTP_PASS: `smtp-${tag}${randomBytes(12).toString("base64url")}`,
  };
  const stack = renderStack(production, {
    ref,
    bindAddress: "10.0.0.5",
    ports,
    ...computeLimits("medium"),
    variables,
  });
  return { ref, ports, variables, stack, compose: JSON.parse(stack.composeFile) as Compose };
}

const A = project("aaaaaaaaaaaaaaaaaaaa", 54100, "a");
const B = project("bbbbbbbbbbbbbbbbbbbb", 54200, "b");

const hostPorts = (c: Compose) => Object.values(c.services).flatMap((s) => (s.ports ?? []).map((p) => p.split(":")[1]));
const namedVolumes = (c: Compose) => Object.values(c.volumes).map((v) => v.name);
const file = (p: typeof A, path: string) => {
  const f = p.stack.files.find((x) => x.path === `files/${path}`);
  if (!f) throw new Error(`no file ${path}`);
  return f.content;
};

describe("production release: the manifest", () => {
  it("is built in next to local, which stays the default", () => {
    const catalog = buildReleaseCatalog({ defaultRelease: "local" });
    expect(catalog.get(PRODUCTION_RELEASE_NAME)?.services.db?.image).toBe("supabase/postgres:15.8.1.085");
    expect(catalog.defaultRelease).toBe("local");
  });

  it("runs every service of the official bundle but studio, at pinned tags", () => {
    const images = Object.fromEntries(Object.entries(production.services).map(([n, s]) => [n, s.image]));
    expect(images).toEqual({
      vector: "timberio/vector:0.53.0-alpine",
      db: "supabase/postgres:15.8.1.085",
      analytics: "supabase/logflare:1.31.2",
      kong: "kong:2.8.1",
      auth: "supabase/gotrue:v2.186.0",
      rest: "postgrest/postgrest:v14.5",
      realtime: "supabase/realtime:v2.78.15",
      storage: "supabase/storage-api:v1.44.2",
      imgproxy: "darthsim/imgproxy:v3.30.1",
      meta: "supabase/postgres-meta:v0.95.2",
      functions: "supabase/edge-runtime:v1.70.3",
      supavisor: "supabase/supavisor:2.7.4",
    });
    for (const image of Object.values(images)) expect(image).not.toMatch(/:latest$|^[^:]+$/);
  });

  it("chains dependencies: db waits for vector, the services for db and analytics, health where there is a rule", () => {
    const deps = Object.fromEntries(Object.entries(A.compose.services).map(([n, s]) => [n, s.depends_on ?? {}]));
    expect(deps.db).toEqual({ vector: { condition: "service_healthy" } });
    expect(deps.analytics).toEqual({ db: { condition: "service_healthy" } });
    expect(deps.kong).toEqual({ analytics: { condition: "service_healthy" } });
    for (const s of ["auth", "rest", "realtime", "meta", "supavisor"]) {
      expect(deps[s]).toEqual({ db: { condition: "service_healthy" }, analytics: { condition: "service_healthy" } });
    }
    expect(deps.storage).toEqual({
      db: { condition: "service_healthy" },
      rest: { condition: "service_healthy" },
      imgproxy: { condition: "service_healthy" },
    });
    expect(deps.functions).toEqual({ analytics: { condition: "service_healthy" } });
    expect(A.stack.requiredServices.sort()).toEqual(
      ["analytics", "auth", "db", "kong", "meta", "realtime", "rest", "storage", "supavisor"].sort(),
    );
    // #14: rest and meta have health rules too.
    for (const s of [
      "db",
      "vector",
      "analytics",
      "auth",
      "rest",
      "meta",
      "realtime",
      "storage",
      "imgproxy",
      "supavisor",
      "kong",
    ]) {
      expect(A.compose.services[s]?.healthcheck, s).toBeTruthy();
    }
  });

  it("publishes only the gateway and the pooler ports on the host's interface, never Postgres itself (#9)", () => {
    const published = Object.entries(A.compose.services)
      .filter(([, s]) => s.ports)
      .map(([n, s]) => [n, s.ports]);
    expect(Object.fromEntries(published)).toEqual({
      kong: [`10.0.0.5:${A.ports.gateway}:8000`],
      supavisor: [`10.0.0.5:${A.ports["pooler-session"]}:5432`, `10.0.0.5:${A.ports["pooler-transaction"]}:6543`],
    });
  });

  it("gives every service at least its measured floor and lets it use the size's CPUs (#5)", () => {
    const min = minimumComputeSize(production) as "medium";
    const p = project("cccccccccccccccccccc", 54300, "c");
    const at = (size: "medium" | "xlarge") =>
      JSON.parse(
        renderStack(production, {
          ref: p.ref,
          bindAddress: "10.0.0.5",
          ports: p.ports,
          ...computeLimits(size),
          variables: p.variables,
        }).composeFile,
      ) as Compose;
    for (const size of [min, "xlarge"] as const) {
      const services = at(size).services;
      const mem = Object.values(services).reduce((n, s) => n + s.mem_limit, 0);
      expect(mem).toBeLessThanOrEqual(computeLimits(size).memoryBytes);
      expect(mem).toBeGreaterThan(computeLimits(size).memoryBytes * 0.99);
      for (const [name, s] of Object.entries(services)) {
        expect(s.mem_limit, name).toBeGreaterThanOrEqual(
          MEMORY_FLOORS_MIB[name as keyof typeof MEMORY_FLOORS_MIB] * 1024 * 1024,
        );
        expect(s.cpus, name).toBe(COMPUTE_CPUS[size]);
      }
    }
    // Footprints the review measured: Logflare ≥ 1 GiB, Kong's two workers, BEAM nodes ≥ 200 MB.
    const services = at(min).services;
    expect(services.analytics?.mem_limit).toBeGreaterThanOrEqual(1024 * 1024 * 1024);
    expect(services.kong?.mem_limit).toBeGreaterThanOrEqual(384 * 1024 * 1024);
    for (const s of ["realtime", "supavisor"])
      expect(services[s]?.mem_limit, s).toBeGreaterThanOrEqual(230 * 1024 * 1024);
    expect(services.functions?.mem_limit).toBeGreaterThan(2 * 150 * 1024 * 1024);
  });

  it("needs upstream's documented 4 GB with every part, less with fewer parts (#5)", () => {
    const GiB = 1024 ** 3;
    expect(releaseMinimumBytes(production)).toBeGreaterThan(3 * GiB);
    expect(minimumComputeSize(production)).toBe("medium");
    expect(releaseMinimumBytes(production, ["realtime", "storage", "functions"])).toBeLessThan(
      releaseMinimumBytes(production),
    );
    expect(minimumComputeSize(production, [])).toBe("small");
    expect(minimumComputeSize(ReleaseManifest.parse(LOCAL_RELEASE))).toBe("nano");
    expect(minimumComputeSize({ minMemoryBytes: 64 * 1024 ** 3 })).toBeUndefined();
  });

  it.each([
    ["nano", false],
    ["small", false],
    ["medium", true],
    ["xlarge", true],
  ] as const)("compute size %s may run it with every part: %s", (size, ok) => {
    const verdict = computeSizeAllowed(production, size);
    expect(verdict.ok).toBe(ok);
    if (!verdict.ok) expect(verdict.reason).toMatch(/at least the medium compute size/);
  });

  it("a create without a size gets the release's minimum, not the refused nano (#12)", () => {
    expect(defaultComputeSize(production)).toBe("medium");
    expect(computeSizeAllowed(production, defaultComputeSize(production)).ok).toBe(true);
    expect(defaultComputeSize(ReleaseManifest.parse(LOCAL_RELEASE))).toBe("nano");
  });
});

describe("production release: two projects on one host", () => {
  it("share no container name, host port, network or volume", () => {
    const containers = (c: Compose) => Object.values(c.services).map((s) => s.container_name);
    expect(containers(A.compose).filter((n) => containers(B.compose).includes(n))).toEqual([]);
    expect(hostPorts(A.compose).filter((p) => hostPorts(B.compose).includes(p))).toEqual([]);
    expect(A.compose.networks.default?.name).not.toBe(B.compose.networks.default?.name);
    expect(namedVolumes(A.compose).filter((v) => namedVolumes(B.compose).includes(v))).toEqual([]);
    for (const p of [A, B]) {
      for (const [name, s] of Object.entries(p.compose.services)) {
        expect(s.container_name).toBe(`${p.ref}-${name}`);
        expect(s.labels["org.supamanager.ref"]).toBe(p.ref);
      }
      expect(p.compose.networks.default?.name).toBe(`${p.ref}_net`);
      for (const v of namedVolumes(p.compose)) expect(v.startsWith(`${p.ref}_`)).toBe(true);
      expect(new Set(hostPorts(p.compose)).size).toBe(hostPorts(p.compose).length);
    }
  });

  it("keeps every secret out of the compose file and out of the other project's stack", () => {
    for (const [p, other] of [
      [A, B],
      [B, A],
    ] as const) {
      const all = withDerivedVariables(p.variables);
      for (const name of [...SECRET_VARIABLES, "POSTGRES_PASSWORD_URLENCODED"] as const) {
        const value = all[name] as string;
        expect(p.stack.composeFile.includes(value), name).toBe(false);
        expect(JSON.stringify(other.stack).includes(value), name).toBe(false);
      }
    }
  });

  it("puts secrets only in env and in the files that need them", () => {
    const secretsIn = (content: string) => SECRET_VARIABLES.filter((n) => content.includes(A.variables[n] as string));
    const where = Object.fromEntries(
      A.stack.files.map((f) => [f.path, secretsIn(f.content)] as const).filter(([, found]) => found.length > 0),
    );
    expect(where).toEqual({
      "files/kong/kong.json": ["ANON_KEY", "SERVICE_ROLE_KEY", "PUBLISHABLE_KEY", "SECRET_KEY"],
      "files/vector/vector.json": ["LOGFLARE_PUBLIC_ACCESS_TOKEN"],
    });
    expect(() => Stack.parse(A.stack)).not.toThrow();
  });

  it("puts the db password into connection URLs percent-encoded, and raw where it is a separate setting", () => {
    const env = A.stack.env;
    const raw = A.variables.POSTGRES_PASSWORD as string;
    expect(env.POSTGRES_PASSWORD).toBe(raw);
    expect(env.POSTGRES_PASSWORD_URLENCODED).toBe(urlEncodeUserinfo(raw));
    const url = new URL(
      A.compose.services.auth?.environment.GOTRUE_DB_DATABASE_URL?.replace(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the compose reference is what is replaced
        "${POSTGRES_PASSWORD_URLENCODED}",
        env.POSTGRES_PASSWORD_URLENCODED as string,
      ) ?? "",
    );
    expect(decodeURIComponent(url.password)).toBe(raw);
    expect(url.hostname).toBe("db");
    expect(url.username).toBe("supabase_auth_admin");
    for (const [name, s] of Object.entries(A.compose.services)) {
      for (const [k, v] of Object.entries(s.environment)) {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} reference is what is tested
        if (/^[a-z]+:\/\//.test(v)) expect(v.includes("${POSTGRES_PASSWORD}"), `${name}.${k}`).toBe(false);
      }
    }
  });

  it.each([
    ["plain", "secret"],
    ["url syntax", "a@b:c/d?e#f%g h+i&j=k"],
    ["unicode", "pässwörd€"],
  ])("percent-encodes a %s password so URL parsers give it back", (_, pw) => {
    const enc = urlEncodeUserinfo(pw);
    expect(enc).toMatch(/^[A-Za-z0-9._~%-]*$/);
    expect(decodeURIComponent(new URL(`postgres://u:${enc}@db:5432/postgres`).password)).toBe(pw);
  });
});

describe("production release: config files", () => {
  it("kong.json parses, identifies anon and service_role by their legacy and new keys and routes every API", () => {
    const kong = JSON.parse(file(A, "kong/kong.json"));
    // #7: upstream kong.yml 089440fa consumers.anon = anon + publishable, service_role = service + secret.
    expect(kong.consumers).toEqual([
      { username: "anon", keyauth_credentials: [{ key: A.variables.ANON_KEY }, { key: A.variables.PUBLISHABLE_KEY }] },
      {
        username: "service_role",
        keyauth_credentials: [{ key: A.variables.SERVICE_ROLE_KEY }, { key: A.variables.SECRET_KEY }],
      },
    ]);
    expect(kong.acls).toEqual([
      { consumer: "anon", group: "anon" },
      { consumer: "service_role", group: "admin" },
    ]);
    type KongService = {
      name: string;
      url: string;
      routes: { paths: string[] }[];
      plugins: { name: string; config?: { allow?: string[] } }[];
    };
    const byPath = new Map<string, KongService>();
    for (const s of kong.services as KongService[]) for (const r of s.routes) for (const p of r.paths) byPath.set(p, s);
    for (const path of [
      "/auth/v1/",
      "/rest/v1/",
      "/graphql/v1",
      "/realtime/v1/",
      "/storage/v1/",
      "/functions/v1/",
      "/pg/",
      "/auth/v1/sso/saml/acs",
      "/auth/v1/sso/saml/metadata",
      "/.well-known/oauth-authorization-server",
    ]) {
      expect(byPath.has(path), path).toBe(true);
    }
    // #10: the Logflare API is not routed (upstream 2026-02-16), realtime's tenants and openapi are blocked.
    expect(byPath.has("/analytics/v1/")).toBe(false);
    for (const path of ["/realtime/v1/api/tenants", "/realtime/v1/api/openapi"]) {
      expect(
        byPath.get(path)?.plugins.map((p) => p.name),
        path,
      ).toEqual(["request-termination"]);
    }
    const acl = (path: string) => byPath.get(path)?.plugins.find((p) => p.name === "acl")?.config?.allow;
    expect(acl("/pg/")).toEqual(["admin"]);
    expect(acl("/rest/v1/")).toEqual(["admin", "anon"]);
    expect(byPath.get("/pg/")?.url).toBe("http://meta:8080/");
    expect(byPath.get("/rest/v1/")?.plugins.map((p) => p.name)).toEqual([
      "cors",
      "key-auth",
      "request-transformer",
      "acl",
    ]);
    // Every plugin used is enabled in the gateway.
    const enabled = (A.compose.services.kong?.environment.KONG_PLUGINS ?? "").split(",");
    for (const s of kong.services as KongService[]) for (const p of s.plugins) expect(enabled).toContain(p.name);
  });

  it("realtime is reachable under the host name its tenant is derived from", () => {
    expect(A.compose.services.realtime?.networks?.default.aliases).toEqual(["realtime-dev.supabase-realtime"]);
    expect(A.compose.services.realtime?.healthcheck?.test[1]).toContain("$$SUPAMANAGER_HEALTH_BEARER");
  });

  it("init SQL sets every service role's password from the environment, JWT settings and the platform schemas", () => {
    const sql = A.stack.files
      .filter((f) => f.path.startsWith("files/db/") && f.path.endsWith(".sql"))
      .map((f) => f.content)
      .join("\n");
    for (const role of PASSWORD_ROLES) expect(sql).toContain(`'${role}'`);
    expect(sql).toContain("format('alter role %I with password %L', r.rolname, :'pgpass')");
    expect(sql).toContain(`\\set pgpass \`printf '%s' "$POSTGRES_PASSWORD"\``);
    expect(sql).toContain(`alter database postgres set "app.settings.jwt_secret" to :'jwt_secret'`);
    expect(sql).toContain(`alter database postgres set "app.settings.jwt_exp" to :'jwt_exp'`);
    for (const schema of ["_realtime", "_analytics", "_supavisor", "supabase_functions"]) {
      expect(sql).toContain(`create schema if not exists ${schema}`);
    }
    expect(sql).toContain("create table if not exists supabase_functions.hooks");
    expect(sql).toMatch(
      new RegExp(`create role ${READ_ONLY_ROLE} with login inherit[^;]* bypassrls\\s+password :'ropass';`),
    );
    expect(sql).toContain(`grant pg_read_all_data to ${READ_ONLY_ROLE}`);
    expect(sql).toContain(`alter role ${READ_ONLY_ROLE} set default_transaction_read_only = on`);
    // No secret is written into SQL: psql reads them from the db container's environment.
    for (const name of SECRET_VARIABLES) expect(sql.includes(A.variables[name] as string), name).toBe(false);
    for (const v of ["POSTGRES_PASSWORD", "PGPASSWORD", "JWT_SECRET", "READ_ONLY_PASSWORD"]) {
      expect(A.compose.services.db?.environment[v], v).toMatch(/^\$\{[A-Z_]+\}$/);
    }
  });

  it.runIf(spawnSync("psql", ["--version"]).status === 0)(
    "psql quotes any password the roles file reads from the environment (real PostgreSQL, rolled back)",
    () => {
      const roles = file(A, "db/init-scripts/99-supamanager-roles.sql");
      const script = [
        "begin;",
        "create role supabase_admin; create role authenticator;",
        "\\set ECHO queries",
        roles,
        "rollback;",
      ].join("\n");
      const password = `it's $x\\y "q" %40 ${A.variables.POSTGRES_PASSWORD}`;
      const out = spawnSync(
        "psql",
        ["-X", "-v", "ON_ERROR_STOP=1", process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"],
        {
          input: script,
          encoding: "utf8",
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", POSTGRES_PASSWORD: password },
        },
      );
      expect(out.stderr).toBe("");
      expect(out.status).toBe(0);
      const literal = (v: string) =>
        `${v.includes("\\") ? "E" : ""}'${v.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
      expect(out.stdout).toContain(`alter role authenticator with password ${literal(password)}`);
      expect(out.stdout).toContain(`alter role supabase_admin with password ${literal(password)}`);
    },
  );

  it("mounts the init SQL read-only into the image's init directories, named to run in order", () => {
    const mounts = (A.compose.services.db?.volumes ?? []).filter((v) => v.includes("docker-entrypoint-initdb.d"));
    const targets = mounts.map((m) => m.split(":")[1] as string);
    const base = (t: string) => t.split("/").pop() as string;
    const initScripts = targets.filter((t) => t.includes("/init-scripts/")).map(base);
    const migrations = targets.filter((t) => t.includes("/migrations/")).map(base);
    // Webhooks create supabase_functions_admin before the roles file sets its password.
    expect(initScripts.sort()[0]).toBe("98-supamanager-webhooks.sql");
    expect(initScripts).toContain("99-supamanager-roles.sql");
    // The _supabase database exists before the analytics and pooler schemas go into it.
    expect(migrations.sort()[0]).toBe("97-supamanager-supabase-db.sql");
    expect(migrations).toEqual(expect.arrayContaining(["99-supamanager-logs.sql", "99-supamanager-pooler.sql"]));
    expect(mounts).toHaveLength(8);
    for (const m of mounts) expect(m.endsWith(":ro,z")).toBe(true);
  });

  it("vector reads only the project's own containers and ships to the project's analytics", () => {
    const vector = JSON.parse(file(A, "vector/vector.json"));
    expect(vector.sources.project_containers).toEqual({
      type: "docker_logs",
      include_labels: [`org.supamanager.ref=${A.ref}`],
      exclude_containers: [`${A.ref}-vector`],
    });
    expect(vector.transforms.own_project.condition).toBe(`.label."org.supamanager.ref" == "${A.ref}"`);
    const text = file(A, "vector/vector.json");
    expect(text).not.toContain(B.ref);
    expect(text).not.toContain("$");
    for (const sink of Object.values(vector.sinks) as { uri: string }[]) {
      expect(sink.uri.startsWith("http://analytics:4000/api/logs?source_name=")).toBe(true);
    }
  });

  it("mounts the Docker socket read-only into vector and nowhere else", () => {
    for (const [name, s] of Object.entries(A.compose.services)) {
      const socket = (s.volumes ?? []).filter((v) => v.includes("docker.sock"));
      expect(socket, name).toEqual(name === "vector" ? ["/var/run/docker.sock:/var/run/docker.sock:ro,z"] : []);
      // #13: SELinux hosts: the socket is read unlabelled, every file mount is relabelled (`z`).
      expect(s.security_opt, name).toEqual(name === "vector" ? ["label=disable"] : undefined);
      for (const v of (s.volumes ?? []).filter((v) => v.startsWith("./files/"))) expect(v.endsWith(",z"), v).toBe(true);
    }
  });

  it("keeps function sources in a volume, with our main service over it", () => {
    expect(A.compose.services.functions?.volumes).toEqual([
      "functions:/home/deno/functions",
      "deno-cache:/root/.cache/deno",
      "./files/functions/main/index.ts:/home/deno/functions/main/index.ts:ro,z",
    ]);
    expect(A.compose.volumes.functions?.name).toBe(`${A.ref}_functions`);
  });
});

/** Evaluate a request-transformer template's Lua expression the way Kong does (LuaJIT, a sandbox env). */
function kongTemplate(template: string, cases: { headers?: Record<string, string>; query?: Record<string, string> }[]) {
  const inner = template.replace(/^\$\(/, "").replace(/\)$/, "");
  const table = (o: Record<string, string> = {}) =>
    `{${Object.entries(o)
      .map(([k, v]) => `[${JSON.stringify(k)}]=${JSON.stringify(v)}`)
      .join(",")}}`;
  const script = [
    `local f = assert(loadstring("return " .. ${JSON.stringify(inner)}))`,
    ...cases.map(
      (c) => `setfenv(f, { headers = ${table(c.headers)}, query_params = ${table(c.query)} }); print(tostring(f()))`,
    ),
  ].join("\n");
  const out = spawnSync("luajit", ["-e", script], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`luajit: ${out.stderr}`);
  return out.stdout.trimEnd().split("\n");
}

const hasLuajit = spawnSync("luajit", ["-v"]).status === 0;
if (!hasLuajit && process.env.CI === "true") throw new Error("CI=true and luajit is missing (.ci/run installs it)");

describe("production release: the review's defects stay fixed", () => {
  const env = (svc: string) => A.compose.services[svc]?.environment ?? {};
  const health = (svc: string) => (A.compose.services[svc]?.healthcheck?.test ?? []).join(" ");

  it("#1 #2: vector and storage are asked by service name, not localhost (::1 on Docker >= 26)", () => {
    expect(health("vector")).toContain("http://vector:9001/health");
    expect(health("storage")).toContain("http://storage:5000/status");
    for (const svc of ["vector", "storage", "analytics", "meta"]) expect(health(svc), svc).not.toContain("localhost");
  });

  it("#3: Logflare's health check passes on any HTTP answer (no -f), as upstream's plain curl", () => {
    const test = A.compose.services.analytics?.healthcheck?.test ?? [];
    expect(test.slice(0, 2)).toEqual(["CMD", "curl"]);
    expect(test.some((a) => /^-[a-zA-Z]*f/.test(a))).toBe(false);
  });

  it("#4: Kong runs two nginx workers whatever the host's CPU count", () => {
    expect(env("kong").KONG_NGINX_WORKER_PROCESSES).toBe("2");
  });

  it("#6: GoTrue gets SMTP, auto-confirm, the app's site URL and mailer paths under /auth/v1", () => {
    const auth = env("auth");
    for (const k of ["INVITE", "CONFIRMATION", "RECOVERY", "EMAIL_CHANGE"]) {
      expect(auth[`GOTRUE_MAILER_URLPATHS_${k}`], k).toBe("/auth/v1/verify");
    }
    for (const k of ["HOST", "PORT", "USER", "PASS", "ADMIN_EMAIL", "SENDER_NAME"]) {
      expect(auth[`GOTRUE_SMTP_${k}`], k).toMatch(/^\$\{AUTH_SMTP_[A-Z_]+\}$/);
    }
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Compose reference is what is tested
    expect(auth.GOTRUE_SITE_URL).toBe("${SITE_URL}");
    expect(A.stack.env.SITE_URL).toBe("http://localhost:3000");
    expect(A.stack.env.SITE_URL).not.toBe(A.variables.API_EXTERNAL_URL);
    expect(A.stack.env.AUTH_MAILER_AUTOCONFIRM).toBe("true");
    expect(A.stack.env.AUTH_SMTP_PASS).toBe(A.variables.AUTH_SMTP_PASS);
    // Only auth refers to the settings: changing them recreates auth alone.
    for (const [name, s] of Object.entries(A.compose.services)) {
      if (name === "auth") continue;
      expect(JSON.stringify(s.environment), name).not.toMatch(/\$\{(AUTH_[A-Z_]+|SITE_URL)\}/);
    }
  });

  it.runIf(hasLuajit)(
    "#7: the gateway maps sb_publishable_ to the anon JWT and sb_secret_ to service_role (LuaJIT)",
    () => {
      const kong = JSON.parse(file(A, "kong/kong.json"));
      type S = { name: string; plugins: { name: string; config?: { add?: { headers: string[] } } }[] };
      const template = (svc: string, header: string) =>
        (kong.services as S[])
          .find((s) => s.name === svc)
          ?.plugins.find((p) => p.name === "request-transformer")
          ?.config?.add?.headers.find((h) => h.startsWith(`${header}: `))
          ?.slice(header.length + 2) as string;
      const v = A.variables as Record<string, string>;
      const session = "Bearer eyJ.user-session.jwt";
      for (const svc of ["auth-v1", "rest-v1", "graphql-v1", "realtime-v1-rest", "storage-v1", "functions-v1"]) {
        expect(
          kongTemplate(template(svc, "Authorization"), [
            { headers: { apikey: v.PUBLISHABLE_KEY as string, authorization: `Bearer ${v.PUBLISHABLE_KEY}` } },
            { headers: { apikey: v.SECRET_KEY as string } },
            { headers: { apikey: v.PUBLISHABLE_KEY as string, authorization: session } },
            { headers: { apikey: v.ANON_KEY as string } },
            { headers: { apikey: v.ANON_KEY as string, authorization: `Bearer ${v.ANON_KEY}` } },
            { headers: {} },
          ]),
          svc,
        ).toEqual([
          `Bearer ${v.ANON_KEY}`,
          `Bearer ${v.SERVICE_ROLE_KEY}`,
          session,
          `Bearer ${v.ANON_KEY}`,
          `Bearer ${v.ANON_KEY}`,
          "nil",
        ]);
      }
      expect(
        kongTemplate(template("realtime-v1-ws", "x-api-key"), [
          { query: { apikey: v.PUBLISHABLE_KEY as string } },
          { query: { apikey: v.SECRET_KEY as string } },
          { query: { apikey: v.ANON_KEY as string } },
        ]),
      ).toEqual([v.ANON_KEY, v.SERVICE_ROLE_KEY, v.ANON_KEY]);
    },
  );

  it("#11: no file is bind-mounted inside a directory a backup tars (restore could not replace it)", () => {
    const tars = (production.backup?.artifacts ?? []).flatMap((a) => (a.source.kind === "tar" ? [a.source] : []));
    expect(tars.map((t) => t.path)).toContain("/etc/postgresql-custom");
    for (const t of tars) {
      for (const m of (A.compose.services[t.service]?.volumes ?? []).filter((v) => v.startsWith("./files/"))) {
        const target = m.split(":")[1] as string;
        expect(target.startsWith(`${t.path}/`), `${t.service}: ${target}`).toBe(false);
      }
    }
  });

  it("#14: rest is ready only once PostgREST's admin server says so, meta once /health answers", () => {
    expect(A.compose.services.rest?.healthcheck?.test).toEqual(["CMD", "postgrest", "--ready"]);
    expect(env("rest").PGRST_ADMIN_SERVER_PORT).toBe("3001");
    expect(health("meta")).toContain("http://meta:8080/health");
  });
});

describe("production release: Compose accepts the rendered stack", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const composes: [string, (dir: string, p: typeof A) => string[]][] = [];
  const flags = (dir: string, p: typeof A) => [
    "--project-name",
    p.ref,
    "--project-directory",
    join(dir, "projects", p.ref),
    "--file",
    join(dir, "projects", p.ref, "docker-compose.json"),
    "--env-file",
    join(dir, "projects", p.ref, ".env"),
  ];
  if (spawnSync("docker-compose", ["version"]).status === 0) {
    composes.push(["docker-compose", (dir, p) => [...flags(dir, p), "config"]]);
  }
  if (spawnSync("docker", ["compose", "version"]).status === 0) {
    composes.push(["docker", (dir, p) => ["compose", ...flags(dir, p), "config"]]);
  }

  it.runIf(composes.length > 0).each(composes)(
    "%s config passes for both projects, written as the agent writes them",
    async (cmd, argv) => {
      const dir = mkdtempSync(join(tmpdir(), "production-release-"));
      dirs.push(dir);
      const store = new ProjectStore(dir);
      await store.init();
      for (const p of [A, B]) {
        await store.writeStack(p.ref, p.stack);
        const out = spawnSync(cmd, argv(dir, p), {
          encoding: "utf8",
          // Like DockerRuntime: the stack's variables in the environment, plus a minimal PATH.
          env: { ...p.stack.env, PATH: process.env.PATH ?? "/usr/bin:/bin" },
        });
        expect(out.stderr).not.toMatch(/ERROR|invalid|not set/i);
        expect(out.status).toBe(0);
        // Interpolated from .env: the URL-encoded password reaches the DSNs, names stay prefixed.
        expect(out.stdout).toContain(
          `supabase_auth_admin:${urlEncodeUserinfo(p.variables.POSTGRES_PASSWORD as string)}@db:5432`,
        );
        expect(out.stdout).toContain(`${p.ref}_net`);
        expect(out.stdout).toContain(`${p.ref}-db`);
        expect(readFileSync(join(store.dir(p.ref), "files/kong/kong.json"), "utf8")).toContain(p.variables.ANON_KEY);
      }
    },
  );

  it("every fact variable and secret the release refers to is a known project variable", () => {
    const known = new Set<string>([...SECRET_VARIABLES, ...FACT_VARIABLES, "POSTGRES_PASSWORD_URLENCODED"]);
    for (const name of Object.keys(A.stack.env)) expect(known.has(name), name).toBe(true);
  });
});
