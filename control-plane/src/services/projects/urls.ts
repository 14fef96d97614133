import type { Config } from "../../config.js";

/** How apps reach a host's projects (hosts.reachability; ADR 0035). */
export const REACHABILITY_MODES = ["direct", "ingress", "tunnel"] as const;
export type Reachability = (typeof REACHABILITY_MODES)[number];

/** `host:port` with IPv6 hosts bracketed. */
export const hostPort = (host: string, port: number) => `${host.includes(":") ? `[${host}]` : host}:${port}`;

/**
 * The URL apps call a project at (its API gateway), the one every URL SupaManager hands out is
 * built from (Studio's settings, /v1, the API keys page, GoTrue's API_EXTERNAL_URL):
 *  - a host in `tunnel` mode, with a tunnel domain: `https://<ref>.<tunnel domain>` (served by the
 *    control plane and relayed to the agent);
 *  - with a projects domain: `https://<ref>.<projects domain>`;
 *  - otherwise the gateway's published port on the host's bind address, `http://<address>:<port>`,
 *    or null while the project has no gateway port.
 */
export function projectUrl(
  config: Pick<Config, "projects">,
  ref: string,
  host: { bindAddress: string; reachability?: Reachability },
  gatewayPort: number | undefined | null,
): string | null {
  const { domain, tunnelDomain } = config.projects;
  if (host.reachability === "tunnel" && tunnelDomain !== undefined) return `https://${ref}.${tunnelDomain}`;
  if (domain !== undefined) return `https://${ref}.${domain}`;
  if (gatewayPort === undefined || gatewayPort === null) return null;
  return `http://${hostPort(host.bindAddress, gatewayPort)}`;
}

/**
 * The project ref a request's Host header names under the tunnel's (or the projects') domain, or
 * null: `abcdefghijklmnopqrst.tunnel.example.com[:port]` → `abcdefghijklmnopqrst`.
 */
export function refFromHostHeader(config: Pick<Config, "projects">, hostHeader: string | undefined): string | null {
  if (!hostHeader) return null;
  const name = hostHeader
    .toLowerCase()
    .replace(/:\d{1,5}$/, "")
    .replace(/\.$/, "");
  for (const domain of [config.projects.tunnelDomain, config.projects.domain]) {
    if (domain === undefined) continue;
    const suffix = `.${domain}`;
    if (!name.endsWith(suffix)) continue;
    const ref = name.slice(0, -suffix.length);
    if (/^[a-z]{20}$/.test(ref)) return ref;
  }
  return null;
}
