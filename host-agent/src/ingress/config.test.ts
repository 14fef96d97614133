import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INGRESS_NETWORK } from "@supamanager/shared";
import { describe, expect, it } from "vitest";
import { CONTAINER_CONFIG_DIR, CONTAINER_TLS_DIR, caddyConfig, type IngressRoute, ingressCompose } from "./config.js";

const A: IngressRoute = {
  ref: "aaaaaaaaaaaaaaaaaaaa",
  hostname: "aaaaaaaaaaaaaaaaaaaa.p.test",
  upstream: "a-gateway:8000",
};
const B: IngressRoute = {
  ref: "bbbbbbbbbbbbbbbbbbbb",
  hostname: "bbbbbbbbbbbbbbbbbbbb.p.test",
  upstream: "b-gateway:8000",
};

type Server = { listen: string[]; routes: { match?: Record<string, string[]>[]; handle: Record<string, unknown>[] }[] };
type Config = {
  apps: { http: { servers: Record<string, Server & Record<string, unknown>> }; tls: Record<string, unknown> };
  logging: unknown;
};

describe("caddyConfig", () => {
  const config = caddyConfig([B, A], { kind: "files" }, "f".repeat(64)) as Config;
  const servers = config.apps.http.servers;

  it("routes each project's name to its own gateway, and anything else to a 404", () => {
    const routes = servers.public?.routes ?? [];
    expect(routes.map((r) => r.match?.[0]?.host)).toEqual([[A.hostname], [B.hostname], undefined]);
    expect(routes[0]?.handle).toEqual([{ handler: "reverse_proxy", upstreams: [{ dial: A.upstream }] }]);
    expect(routes[1]?.handle).toEqual([{ handler: "reverse_proxy", upstreams: [{ dial: B.upstream }] }]);
    expect(routes[2]?.handle[0]).toMatchObject({ handler: "static_response", status_code: 404 });
  });

  it("gives the agent a plain-HTTP listener that routes /<ref>/… with the prefix stripped", () => {
    const routes = servers.agent?.routes ?? [];
    expect(routes[0]?.match).toEqual([{ path: [`/${A.ref}/*`] }]);
    expect(routes[0]?.handle).toEqual([
      { handler: "rewrite", strip_path_prefix: `/${A.ref}` },
      { handler: "reverse_proxy", upstreams: [{ dial: A.upstream }] },
    ]);
    expect(servers.agent?.automatic_https).toEqual({ disable: true });
  });

  it("serves the operator's certificate files without ACME, and ACME when asked", () => {
    expect(servers.public?.automatic_https).toEqual({ disable: true });
    expect(servers.public?.tls_connection_policies).toEqual([{}]);
    expect(config.apps.tls).toEqual({
      certificates: {
        load_files: [
          {
            certificate: `${CONTAINER_TLS_DIR}/cert.pem`,
            key: `${CONTAINER_TLS_DIR}/key.pem`,
            tags: ["supamanager-ffffffffffffffff"],
          },
        ],
      },
    });
    const acme = caddyConfig([A], { kind: "acme", email: "ops@example.test" }) as Config;
    expect(acme.apps.tls).toEqual({
      automation: { policies: [{ issuers: [{ module: "acme", email: "ops@example.test" }] }] },
    });
    expect(acme.apps.http.servers.public?.automatic_https).toEqual({ disable_redirects: false });
  });

  it("changes when the certificate changes (a reload loads the new one)", () => {
    expect(JSON.stringify(caddyConfig([A], { kind: "files" }, "1".repeat(64)))).not.toBe(
      JSON.stringify(caddyConfig([A], { kind: "files" }, "2".repeat(64))),
    );
  });
});

describe("ingressCompose", () => {
  it("publishes TLS on the ingress address and the agent's port on loopback only, on the shared network", () => {
    const compose = JSON.parse(
      ingressCompose({
        image: "supamanager/ingress:local",
        address: "0.0.0.0",
        port: 443,
        agentPort: 54399,
        configDir: "/d/config",
        tlsDir: "/d/tls",
        dataDir: "/d/data",
      }),
    );
    const proxy = compose.services.proxy;
    expect(proxy.ports).toEqual(["0.0.0.0:443:443", "127.0.0.1:54399:8080"]);
    expect(proxy.pull_policy).toBe("never");
    expect(proxy.volumes).toEqual([
      `/d/config:${CONTAINER_CONFIG_DIR}:ro,z`,
      `/d/tls:${CONTAINER_TLS_DIR}:ro,z`,
      "/d/data:/data:z",
    ]);
    expect(compose.networks).toEqual({ ingress: { name: INGRESS_NETWORK, external: true } });
    const upstream = JSON.parse(
      ingressCompose({
        image: "caddy:2.6",
        address: "::",
        port: 8443,
        httpPort: 80,
        agentPort: 9000,
        configDir: "/c",
        tlsDir: "/t",
        dataDir: "/x",
      }),
    ).services.proxy;
    expect(upstream.pull_policy).toBeUndefined();
    expect(upstream.ports).toEqual(["[::]:8443:443", "127.0.0.1:9000:8080", "[::]:80:80"]);
  });
});

// The config is Caddy's own JSON: let the real Caddy (the `ingress` image) validate it.
const image = "supamanager/ingress:local";
const haveImage =
  process.env.CI === "true" && spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status === 0;

describe.runIf(haveImage)("caddy validate (the ingress image)", () => {
  it("accepts the generated config with a certificate", () => {
    const dir = mkdtempSync(join(tmpdir(), "ingress-config-"));
    try {
      execFileSync(
        "openssl",
        [
          ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"],
          ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-subj", "/CN=*.p.test"],
          ...["-addext", "subjectAltName=DNS:*.p.test"],
        ],
        { stdio: "ignore" },
      );
      writeFileSync(join(dir, "caddy.json"), JSON.stringify(caddyConfig([A, B], { kind: "files" }, "a".repeat(64))));
      const out = spawnSync(
        "docker",
        [
          ...["run", "--rm", "-v", `${dir}:${CONTAINER_CONFIG_DIR}:ro`, "-v", `${dir}:${CONTAINER_TLS_DIR}:ro`],
          ...["--entrypoint", "caddy", image, "validate", "--config", `${CONTAINER_CONFIG_DIR}/caddy.json`],
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(out.status, `${out.stdout}\n${out.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
