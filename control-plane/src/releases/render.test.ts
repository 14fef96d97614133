import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INGRESS_NETWORK, Stack } from "@supamanager/shared";
import { describe, expect, it } from "vitest";
import { buildReleaseCatalog } from "./catalog.js";
import { LOCAL_RELEASE } from "./local.js";
import { ReleaseManifest } from "./manifest.js";
import { interpolate, releasePorts, renderStack } from "./render.js";
import { FACT_VARIABLES, SECRET_VARIABLES } from "./variables.js";

const REF = "abcdefghijklmnopqrst";
const input = {
  ref: REF,
  bindAddress: "127.0.0.1",
  ports: { db: 54010, gateway: 54011, meta: 54012 },
  memoryBytes: 512 * 1024 * 1024,
  variables: {
    POSTGRES_PASSWORD: "pa$$word'\"with stuff",
    PROJECT_REF: REF,
    PG_META_CRYPTO_KEY: "crypto-key-0123456789abcdef01234",
    READ_ONLY_PASSWORD: "0123456789abcdef0123456789abcdef",
    SERVICE_ROLE_KEY: "service.role.key-0123456789",
  },
};

describe("renderStack (local release)", () => {
  const local = ReleaseManifest.parse(LOCAL_RELEASE);
  const stack = renderStack(local, input);
  const compose = JSON.parse(stack.composeFile) as {
    services: Record<string, Record<string, unknown>>;
    networks: Record<string, { name: string }>;
    volumes: Record<string, { name: string }>;
  };

  it("is a valid protocol Stack with secrets only in env", () => {
    expect(Stack.parse(stack)).toBeTruthy();
    expect(stack.env).toEqual({
      POSTGRES_PASSWORD: input.variables.POSTGRES_PASSWORD,
      READ_ONLY_PASSWORD: input.variables.READ_ONLY_PASSWORD,
      PG_META_CRYPTO_KEY: input.variables.PG_META_CRYPTO_KEY,
      SERVICE_ROLE_KEY: input.variables.SERVICE_ROLE_KEY,
    });
    expect(stack.composeFile).not.toContain(input.variables.SERVICE_ROLE_KEY);
    expect(stack.composeFile).not.toContain(input.variables.POSTGRES_PASSWORD);
    expect(stack.composeFile).not.toContain(input.variables.PG_META_CRYPTO_KEY);
    expect(stack.composeFile).not.toContain(input.variables.READ_ONLY_PASSWORD);
    expect(stack.requiredServices).toEqual(["db", "meta", "gateway"]);
    expect(stack.release).toBe("local");
  });

  it("prefixes names by the ref, binds ports to the bind address, sets init and memory limits", () => {
    expect(Object.keys(compose.services)).toEqual(["db", "meta", "gateway"]);
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.container_name).toBe(`${REF}-${name}`);
      expect(svc.init).toBe(true);
      expect(svc.healthcheck).toBeTruthy();
      expect(svc.mem_limit).toBeGreaterThan(64 * 1024 * 1024);
    }
    expect(compose.services.db?.ports).toEqual(["127.0.0.1:54010:5432"]);
    expect(compose.services.gateway?.ports).toEqual(["127.0.0.1:54011:8000"]);
    // postgres-meta is superuser SQL: never published (only the gateway, with the service key).
    expect(compose.services.meta?.ports).toBeUndefined();
    expect(compose.services.gateway?.environment).toMatchObject({
      PG_META_URL: "http://meta:8080",
      GATEWAY_SERVICE_KEY: interpolate("SERVICE_ROLE_KEY"),
    });
    expect(compose.networks.default?.name).toBe(`${REF}_net`);
    expect(compose.volumes["db-data"]?.name).toBe(`${REF}_db-data`);
    expect(compose.services.meta?.depends_on).toEqual({ db: { condition: "service_healthy" } });
    expect(compose.services.db?.environment).toMatchObject({ POSTGRES_PASSWORD: interpolate("POSTGRES_PASSWORD") });
  });

  it("names every published port as an RPC endpoint on the bind address", () => {
    expect(stack.endpoints).toEqual({
      db: "http://127.0.0.1:54010",
      gateway: "http://127.0.0.1:54011",
    });
    const v6 = renderStack(local, { ...input, bindAddress: "::1" });
    expect(v6.endpoints.gateway).toBe("http://[::1]:54011");
  });

  it("initialises the database with the read-only role, its password read from the environment", () => {
    const file = stack.files.find((f) => f.path === "files/db/init-read-only.sql");
    expect(file?.content).toContain("create role supamanager_read_only with login");
    expect(file?.content).toContain("\\getenv supamanager_ro_password READ_ONLY_PASSWORD");
    expect(file?.content).not.toContain(input.variables.READ_ONLY_PASSWORD);
    // pg_read_all_data would open pg_authid (password hashes); REPLICATION stops ALTER ROLE on itself.
    expect(file?.content).not.toContain("pg_read_all_data");
    expect(file?.content).toMatch(/ replication bypassrls/);
    expect(file?.content).toContain("set default_transaction_read_only = on");
    expect(compose.services.db?.environment).toMatchObject({ READ_ONLY_PASSWORD: interpolate("READ_ONLY_PASSWORD") });
    expect(compose.services.db?.volumes).toContain(
      "./files/db/init-read-only.sql:/docker-entrypoint-initdb.d/50-supamanager-read-only.sql:ro,z",
    );
  });

  it("brackets IPv6 bind addresses and escapes literal $ in values", () => {
    const custom = ReleaseManifest.parse({
      name: "x",
      services: {
        app: {
          image: "busybox:1",
          environment: { A: `cost $5 ${interpolate("PROJECT_REF")}` },
          ports: [{ name: "app", container: 80 }],
          memoryShare: 1,
        },
      },
    });
    const out = JSON.parse(renderStack(custom, { ...input, bindAddress: "::1", ports: { app: 5000 } }).composeFile);
    expect(out.services.app.ports).toEqual(["[::1]:5000:80"]);
    expect(out.services.app.environment.A).toBe(`cost $$5 ${interpolate("PROJECT_REF")}`);
  });

  it("is accepted by docker-compose where it is installed", () => {
    if (spawnSync("docker-compose", ["version"]).status !== 0) return;
    const dir = mkdtempSync(join(tmpdir(), "render-"));
    writeFileSync(join(dir, "docker-compose.yml"), stack.composeFile);
    writeFileSync(
      join(dir, ".env"),
      "POSTGRES_PASSWORD=x\nPROJECT_REF=y\nPG_META_CRYPTO_KEY=z\nREAD_ONLY_PASSWORD=r\nSERVICE_ROLE_KEY=s\n",
    );
    const out = execFileSync("docker-compose", ["-p", REF, "config", "-q"], { cwd: dir, encoding: "utf8" });
    expect(out).toBe("");
  });
});

describe("renderStack for a host ingress (ADR 0036)", () => {
  const local = ReleaseManifest.parse(LOCAL_RELEASE);
  const hostname = `${REF}.projects.example.com`;
  const stack = renderStack(local, { ...input, ingress: { hostname } });
  const compose = JSON.parse(stack.composeFile) as {
    services: Record<string, Record<string, unknown>>;
    networks: Record<string, unknown>;
  };

  it("publishes no gateway port, joins the gateway to the ingress network, and names the route", () => {
    expect(Stack.parse(stack).ingress).toEqual({ hostname, upstream: `${REF}-gateway:8000`, endpoint: "gateway" });
    expect(compose.services.gateway?.ports).toBeUndefined();
    expect(compose.services.gateway?.networks).toEqual({ default: {}, ingress: {} });
    expect(compose.networks).toEqual({
      default: { name: `${REF}_net` },
      ingress: { name: INGRESS_NETWORK, external: true },
    });
    // Only the gateway shares the network; the database port stays published as before.
    expect(compose.services.meta?.networks).toBeUndefined();
    expect(compose.services.db?.ports).toEqual(["127.0.0.1:54010:5432"]);
    // The agent reaches the gateway through the ingress, not a published port.
    expect(stack.endpoints).toEqual({ db: "http://127.0.0.1:54010" });
  });

  it("is the direct stack without an ingress", () => {
    const direct = renderStack(local, input);
    expect(direct.ingress).toBeUndefined();
    expect(JSON.parse(direct.composeFile).services.gateway.ports).toEqual(["127.0.0.1:54011:8000"]);
  });

  it("refuses a release without a gateway port to route to", () => {
    const noGateway = ReleaseManifest.parse({
      ...LOCAL_RELEASE,
      services: { ...LOCAL_RELEASE.services, gateway: { ...LOCAL_RELEASE.services.gateway, ports: [] } },
    });
    expect(() => renderStack(noGateway, { ...input, ingress: { hostname } })).toThrow(/no "gateway" port/);
  });
});

describe("files a release writes on the host", () => {
  it("are 0600 whenever they hold a secret (local release)", () => {
    const facts = Object.fromEntries(FACT_VARIABLES.map((name) => [name, `fact-${name.toLowerCase()}`]));
    const secrets = Object.fromEntries(SECRET_VARIABLES.map((name, i) => [name, `secret-${name}-${i}-value`]));
    let checked = 0;
    for (const release of [ReleaseManifest.parse(LOCAL_RELEASE)]) {
      const ports = Object.fromEntries(releasePorts(release).map((p, i) => [p.name, 55000 + i]));
      const stack = renderStack(release, { ...input, ports, variables: { ...facts, ...secrets } });
      for (const f of stack.files) {
        const holdsSecret = Object.values(secrets).some((v) => f.content.includes(v));
        if (holdsSecret) expect(f.mode & 0o077, `${release.name}: ${f.path}`).toBe(0);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});

describe("the local-17 release", () => {
  const catalog = buildReleaseCatalog({ defaultRelease: "local" });
  const local = catalog.get("local") as ReleaseManifest;
  const local17 = catalog.get("local-17") as ReleaseManifest;
  it("is the local release with PostgreSQL 17 as its db, and says so", () => {
    expect(local17.database).toEqual({ service: "db", postgresMajor: 17, volume: "db-data" });
    expect(local.database?.postgresMajor).toBe(15);
    expect(local17.services.db?.image).toBe("supamanager/postgres-17:local");
    expect(local17.services.db?.imageKey).toBe("postgres-17");
    const { image: _a, imageKey: _b, ...db17 } = local17.services.db ?? {};
    const { image: _c, imageKey: _d, ...db15 } = local.services.db ?? {};
    expect(db17).toEqual(db15);
    expect(local17.services.meta).toEqual(local.services.meta);
    expect(local17.services.gateway).toEqual(local.services.gateway);
    expect(local17.files).toEqual(local.files);
    expect(local17.backup).toEqual(local.backup);
  });
  it("renders the same stack but for the db image (never pulled)", () => {
    const a = JSON.parse(renderStack(local, input).composeFile);
    const b = JSON.parse(renderStack(local17, input).composeFile);
    expect(b.services.db.image).toBe("supamanager/postgres-17:local");
    expect(b.services.db.pull_policy).toBe("never");
    b.services.db.image = a.services.db.image;
    expect(b).toEqual(a);
  });
});

describe("release catalog", () => {
  it("overrides local image tags from the images manifest and adds releases from a file", () => {
    const catalog = buildReleaseCatalog({
      defaultRelease: "extra",
      localImages: {
        postgres: "supamanager/postgres:abc123",
        "postgres-17": "supamanager/postgres-17:abc917",
        gateway: "supamanager/gateway:def456",
      },
      releasesFile: [{ name: "extra", services: { app: { image: "busybox:1", memoryShare: 1 } } }],
    });
    expect(catalog.names().sort()).toEqual(["extra", "local", "local-17", "supabase-2026.02", "supabase-v0.8.2"]);
    expect(catalog.get("local")?.services.db?.image).toBe("supamanager/postgres:abc123");
    expect(catalog.get("local")?.services.meta?.image).toBe("supamanager/postgres-meta:local");
    expect(catalog.get("local-17")?.services.db?.image).toBe("supamanager/postgres-17:abc917");
    expect(catalog.get("local-17")?.services.gateway?.image).toBe("supamanager/gateway:def456");
    expect(catalog.defaultRelease).toBe("extra");
  });

  it.each([
    [{ defaultRelease: "missing" }, /no release named missing/],
    [{ defaultRelease: "local", releasesFile: { name: "bad" } }, /SUPAMANAGER_RELEASES_FILE/],
    [{ defaultRelease: "local", localImages: { postgres: 42 } }, /SUPAMANAGER_LOCAL_IMAGES_FILE/],
    [
      {
        defaultRelease: "local",
        releasesFile: {
          name: "v",
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} reference is what is tested
          services: { a: { image: "x:1", environment: { A: "${SECRET}" }, memoryShare: 1 } },
        },
      },
      /refers to \$\{SECRET\}/,
    ],
    [
      {
        defaultRelease: "local",
        releasesFile: { name: "v", services: { a: { image: "x:1", dependsOn: ["b"], memoryShare: 1 } } },
      },
      /unknown service b/,
    ],
    [
      {
        defaultRelease: "local",
        releasesFile: {
          name: "v",
          services: { a: { image: "x:1", memoryShare: 0.8 }, b: { image: "x:1", memoryShare: 0.8 } },
        },
      },
      /more than 1/,
    ],
  ])("refuses invalid sources %#", (sources, message) => {
    expect(() => buildReleaseCatalog(sources)).toThrow(message);
  });
});

describe("release files and mounts", () => {
  const manifest = ReleaseManifest.parse({
    name: "with-files",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} reference is what is tested
    files: [{ path: "init/roles.sql", template: "alter role reader password '${READ_ONLY_PASSWORD}'; -- ${NOT_OURS}" }],
    services: {
      db: {
        image: "x:1",
        environment: { PGPASSWORD: interpolate("POSTGRES_PASSWORD") },
        mounts: [{ file: "init/roles.sql", target: "/docker-entrypoint-initdb.d/roles.sql" }],
        memoryShare: 1,
      },
    },
  });
  const stack = renderStack(manifest, {
    ...input,
    ports: {},
    variables: { POSTGRES_PASSWORD: "pw", READ_ONLY_PASSWORD: "ro-secret", PROJECT_REF: REF },
  });

  it("writes templates with the project's values and mounts them read-only", () => {
    expect(stack.files).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} reference is what is tested
      { path: "files/init/roles.sql", content: "alter role reader password 'ro-secret'; -- ${NOT_OURS}", mode: 0o644 },
    ]);
    const compose = JSON.parse(stack.composeFile) as { services: { db: { volumes: string[] } } };
    expect(compose.services.db.volumes).toEqual(["./files/init/roles.sql:/docker-entrypoint-initdb.d/roles.sql:ro,z"]);
    expect(Stack.parse(stack).files).toHaveLength(1);
  });

  it("sends only the variables the services refer to", () => {
    expect(stack.env).toEqual({ POSTGRES_PASSWORD: "pw" });
  });

  it("refuses a template whose variable has no value, and a mount of an unknown file", () => {
    expect(() => renderStack(manifest, { ...input, ports: {}, variables: { POSTGRES_PASSWORD: "pw" } })).toThrow(
      /READ_ONLY_PASSWORD/,
    );
    expect(
      ReleaseManifest.safeParse({
        name: "bad",
        services: { a: { image: "x:1", mounts: [{ file: "nope.sql", target: "/x" }], memoryShare: 1 } },
      }).success,
    ).toBe(false);
  });
});

describe("a release's database", () => {
  const base = {
    name: "db-test",
    services: {
      db: {
        image: "supamanager/postgres:local",
        volumes: [{ name: "db-data", target: "/var/lib/postgresql/data" }],
        memoryShare: 1,
      },
    },
  };
  it("names the service, major version and volume upgrades work with", () => {
    const m = ReleaseManifest.parse({ ...base, database: { service: "db", postgresMajor: 17, volume: "db-data" } });
    expect(m.database).toEqual({ service: "db", postgresMajor: 17, volume: "db-data" });
  });
  it("refuses an unknown service or a volume the service does not mount", () => {
    const svc = ReleaseManifest.safeParse({
      ...base,
      database: { service: "pg", postgresMajor: 15, volume: "db-data" },
    });
    expect(svc.success).toBe(false);
    expect(svc.error?.issues[0]?.message).toBe("unknown service pg");
    const vol = ReleaseManifest.safeParse({ ...base, database: { service: "db", postgresMajor: 15, volume: "data" } });
    expect(vol.error?.issues[0]?.message).toBe("service db has no volume data");
  });
  it("is declared by every built-in release", () => {
    const catalog = buildReleaseCatalog({ defaultRelease: "local" });
    for (const name of catalog.names()) expect(catalog.get(name)?.database?.service, name).toBe("db");
  });
});
