import { INGRESS_NETWORK } from "@supamanager/shared";

/** One project the ingress serves: its public name and its gateway on the ingress network. */
export interface IngressRoute {
  ref: string;
  hostname: string;
  /** `container:port` on INGRESS_NETWORK. */
  upstream: string;
}

/** Where the proxy finds things inside its container (the agent mounts these directories). */
export const CONTAINER_CONFIG_DIR = "/etc/supamanager-ingress";
export const CONTAINER_CONFIG_FILE = `${CONTAINER_CONFIG_DIR}/caddy.json`;
export const CONTAINER_TLS_DIR = "/etc/supamanager-ingress-tls";
export const CONTAINER_DATA_DIR = "/data";
/** Container ports: TLS, plain HTTP (ACME HTTP-01 and redirects), the agent's loopback listener. */
export const CONTAINER_HTTPS_PORT = 443;
export const CONTAINER_HTTP_PORT = 80;
export const CONTAINER_AGENT_PORT = 8080;
/** The Compose project and container name of the host's proxy. */
export const INGRESS_PROJECT = "supamanager-ingress";

/**
 * How the proxy gets its certificate: files the operator gave the agent (a wildcard for the
 * projects domain), or ACME (Caddy obtains one certificate per project name, HTTP-01 or
 * TLS-ALPN-01; both need the names to resolve to this host and ports 80/443 reachable from the CA).
 */
export type IngressTls = { kind: "files" } | { kind: "acme"; email: string; ca?: string | undefined };

const NOT_FOUND_BODY = JSON.stringify({
  message: "no project is served under this name on this host",
  code: "not_found",
});

function notFound() {
  return {
    handle: [
      {
        handler: "static_response",
        status_code: 404,
        headers: { "Content-Type": ["application/json"] },
        body: NOT_FOUND_BODY,
      },
    ],
  };
}

/** The gateway as Caddy dials it; the Host header and X-Forwarded-* are Caddy's defaults. */
const proxyTo = (upstream: string) => ({ handler: "reverse_proxy", upstreams: [{ dial: upstream }] });

/**
 * Caddy's JSON config for the host's proxy (ADR 0036). Two servers:
 *  - `public` on the TLS port: one route per project, matched by Host name, to that project's
 *    gateway; any other name answers 404. TLS from the operator's certificate files, or ACME;
 *  - `agent` on a plain-HTTP port published on loopback only: `/<ref>/…` to that project's gateway
 *    with the prefix stripped, the path the agent's rpcs take now that gateways publish no port.
 * No access log (paths carry query strings, headers carry keys); Caddy's own log at WARN.
 * `certificateDigest` changes the config when the certificate files change, so a reload picks
 * the new ones up.
 */
export function caddyConfig(routes: readonly IngressRoute[], tls: IngressTls, certificateDigest = ""): unknown {
  const sorted = [...routes].sort((a, b) => a.hostname.localeCompare(b.hostname));
  const publicRoutes = [
    ...sorted.map((r) => ({ match: [{ host: [r.hostname] }], handle: [proxyTo(r.upstream)], terminal: true })),
    notFound(),
  ];
  const agentRoutes = [
    ...sorted.map((r) => ({
      match: [{ path: [`/${r.ref}/*`] }],
      handle: [{ handler: "rewrite", strip_path_prefix: `/${r.ref}` }, proxyTo(r.upstream)],
      terminal: true,
    })),
    notFound(),
  ];
  const tlsApp =
    tls.kind === "files"
      ? {
          certificates: {
            load_files: [
              {
                certificate: `${CONTAINER_TLS_DIR}/cert.pem`,
                key: `${CONTAINER_TLS_DIR}/key.pem`,
                tags: [`supamanager-${certificateDigest.slice(0, 16) || "operator"}`],
              },
            ],
          },
        }
      : {
          automation: {
            policies: [
              {
                issuers: [{ module: "acme", email: tls.email, ...(tls.ca ? { ca: tls.ca } : {}) }],
              },
            ],
          },
        };
  const servers: Record<string, unknown> = {
    public: {
      listen: [`:${CONTAINER_HTTPS_PORT}`],
      routes: publicRoutes,
      tls_connection_policies: [{}],
      // With certificate files nothing is obtained: Caddy must not try ACME for the route names.
      automatic_https: tls.kind === "files" ? { disable: true } : { disable_redirects: false },
    },
    agent: {
      listen: [`:${CONTAINER_AGENT_PORT}`],
      routes: agentRoutes,
      automatic_https: { disable: true },
    },
  };
  return {
    admin: { listen: "localhost:2019" },
    logging: { logs: { default: { level: "WARN" } } },
    storage: { module: "file_system", root: CONTAINER_DATA_DIR },
    apps: { http: { servers }, tls: tlsApp },
  };
}

export interface IngressComposeInput {
  image: string;
  /** Host interface and port the TLS listener is published on. */
  address: string;
  port: number;
  /** ACME only: the host port for HTTP-01 (and the HTTP → HTTPS redirect). */
  httpPort?: number | undefined;
  /** Loopback port of the agent's listener. */
  agentPort: number;
  configDir: string;
  tlsDir: string;
  dataDir: string;
}

const publish = (address: string, hostPort: number, containerPort: number) =>
  `${address.includes(":") ? `[${address}]` : address}:${hostPort}:${containerPort}`;

/**
 * The proxy's Compose file (JSON): one service on INGRESS_NETWORK (external, created by the agent),
 * its config and certificate directories mounted read-only. The command is given in full so that
 * the image may be ours (`supamanager/ingress`, images/build.mjs) or the upstream `caddy` image.
 * A `supamanager/…` image is built on the host and never pulled.
 */
export function ingressCompose(input: IngressComposeInput): string {
  const ports = [
    publish(input.address, input.port, CONTAINER_HTTPS_PORT),
    publish("127.0.0.1", input.agentPort, CONTAINER_AGENT_PORT),
    ...(input.httpPort !== undefined ? [publish(input.address, input.httpPort, CONTAINER_HTTP_PORT)] : []),
  ];
  const compose = {
    services: {
      proxy: {
        image: input.image,
        ...(input.image.startsWith("supamanager/") ? { pull_policy: "never" } : {}),
        container_name: INGRESS_PROJECT,
        init: true,
        restart: "unless-stopped",
        entrypoint: ["caddy"],
        command: ["run", "--config", CONTAINER_CONFIG_FILE],
        environment: { XDG_DATA_HOME: CONTAINER_DATA_DIR, XDG_CONFIG_HOME: `${CONTAINER_DATA_DIR}/config` },
        ports,
        volumes: [
          `${input.configDir}:${CONTAINER_CONFIG_DIR}:ro,z`,
          `${input.tlsDir}:${CONTAINER_TLS_DIR}:ro,z`,
          `${input.dataDir}:${CONTAINER_DATA_DIR}:z`,
        ],
        cap_drop: ["ALL"],
        cap_add: ["NET_BIND_SERVICE"],
        security_opt: ["no-new-privileges:true"],
        networks: ["ingress"],
        labels: { "org.supamanager.ingress": "true" },
      },
    },
    networks: { ingress: { name: INGRESS_NETWORK, external: true } },
  };
  return `${JSON.stringify(compose, null, 2)}\n`;
}
