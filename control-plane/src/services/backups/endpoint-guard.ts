/**
 * Which backup target endpoints the control plane may call (docs/security.md, "Backup target
 * endpoints"). An organization's owner chooses its target's endpoint, and the control plane itself
 * sends S3 requests there (test-connection, opening and completing multipart uploads, deleting old
 * backups). Without a check, an owner could aim those requests at services only the control plane
 * can reach: loopback, the private network, or a cloud's metadata service. With
 * SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS=deny (the default), such endpoints are refused for
 * organization targets; the instance admin's own target is trusted like the rest of the
 * operator's configuration.
 *
 * This module is runtime-neutral: the address checks are plain parsing, and name resolution is
 * loaded on demand where the runtime has it.
 */

/** What the check needs to know about a target. */
export interface EndpointTarget {
  endpoint: string | null;
  bucket: string;
  forcePathStyle: boolean;
}

/**
 * All addresses `host` resolves to; `[]` when it does not resolve, `null` where this runtime
 * cannot resolve names the way its outbound requests do.
 */
export type Resolver = (host: string) => Promise<string[] | null>;

export const PRIVATE_ENDPOINTS_SETTING = "SUPAMANAGER_BACKUP_PRIVATE_ENDPOINTS";

function parseV4(s: string): number[] | null {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) return null;
  const parts = s.split(".").map(Number);
  return parts.every((n) => n <= 255) ? parts : null;
}

/** Eight 16-bit groups, or null. Accepts `::` compression, a dotted IPv4 tail and a zone id. */
function parseV6(input: string): number[] | null {
  let s = input;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  if (s.includes(".")) {
    const cut = s.lastIndexOf(":");
    const v4 = parseV4(s.slice(cut + 1));
    if (cut < 0 || !v4) return null;
    tail = [((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0)];
    s = s.slice(0, cut + 1);
    if (!s.endsWith("::")) s = s.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (p: string) => (p === "" ? [] : p.split(":"));
  const head = groups(halves[0] ?? "");
  const rest = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (![...head, ...rest].every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  const hex = (gs: string[]) => gs.map((g) => Number.parseInt(g, 16));
  const fixed = head.length + rest.length + tail.length;
  if (halves.length === 2) {
    if (fixed > 7) return null;
    return [...hex(head), ...new Array<number>(8 - fixed).fill(0), ...hex(rest), ...tail];
  }
  return fixed === 8 ? [...hex(head), ...tail] : null;
}

function classifyV4([a = 0, b = 0]: number[]): string | null {
  if (a === 0) return "an unspecified address";
  if (a === 127) return "a loopback address";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "a private address";
  if (a === 169 && b === 254) return "a link-local address (where cloud metadata services answer)";
  if (a === 100 && b >= 64 && b <= 127) return "a shared (carrier-grade NAT) address";
  if (a >= 224 && a <= 239) return "a multicast address";
  if (a >= 240) return "a reserved address";
  return null;
}

function classifyV6(g: number[]): string | null {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const v4At = (i: number) => [(g[i] ?? 0) >> 8, (g[i] ?? 0) & 0xff, (g[i + 1] ?? 0) >> 8, (g[i + 1] ?? 0) & 0xff];
  const first = g[0] ?? 0;
  if (zeros(0, 8)) return "an unspecified address";
  if (zeros(0, 7) && g[7] === 1) return "a loopback address";
  // IPv6 forms that carry an IPv4 address reach that IPv4 address: judge it instead.
  if (zeros(0, 5) && g[5] === 0xffff) return classifyV4(v4At(6)); // ::ffff:a.b.c.d (mapped)
  if (zeros(0, 6)) return classifyV4(v4At(6)); // ::a.b.c.d (deprecated "compatible")
  if (first === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return classifyV4(v4At(6)); // NAT64
  if (first === 0x2002) return classifyV4(v4At(1)); // 6to4
  if ((first & 0xfe00) === 0xfc00) return "a private (unique local) address";
  if ((first & 0xffc0) === 0xfe80) return "a link-local address";
  if ((first & 0xffc0) === 0xfec0) return "a private (site-local) address";
  if ((first & 0xff00) === 0xff00) return "a multicast address";
  return null;
}

/** Whether `s` is an IP address literal (IPv6 with or without brackets). */
export function isIpLiteral(s: string): boolean {
  const bare = s.replace(/^\[(.*)\]$/, "$1");
  return parseV4(bare) !== null || (bare.includes(":") && parseV6(bare) !== null);
}

/**
 * Why an IP address is not public ("a loopback address", …), or null when it is public or not an
 * IP address at all.
 */
export function nonPublicAddress(ip: string): string | null {
  const bare = ip.replace(/^\[(.*)\]$/, "$1");
  const v4 = parseV4(bare);
  if (v4) return classifyV4(v4);
  const v6 = bare.includes(":") ? parseV6(bare) : null;
  return v6 ? classifyV6(v6) : null;
}

/** `localhost` and every name under it (RFC 6761: they always mean this machine). */
export function isLocalhostName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost");
}

/** The host part of an endpoint URL: lower case, without brackets or a trailing dot. */
export function endpointHost(endpoint: string): string {
  return new URL(endpoint).hostname
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "")
    .toLowerCase();
}

/** Why a name must not be called because of what it resolves to, or null. */
export async function resolvedRefusal(name: string, resolve: Resolver): Promise<string | null> {
  const addresses = await resolve(name);
  for (const address of addresses ?? []) {
    const why = nonPublicAddress(address);
    if (why) return `the host ${name} resolves to ${why}`;
  }
  return null;
}

/**
 * Why the control plane must not call this target's endpoint (a sentence for a 400), or null when
 * it may. A null endpoint is AWS S3, always allowed.
 */
export async function endpointRefusal(
  target: EndpointTarget,
  resolve: Resolver = systemResolve,
): Promise<string | null> {
  if (target.endpoint === null) return null;
  const host = endpointHost(target.endpoint);
  let why: string | null;
  if (isIpLiteral(host)) {
    const kind = nonPublicAddress(host);
    why = kind ? `${host} is ${kind}` : null;
  } else if (isLocalhostName(host)) {
    why = `${host} always names the control plane's own machine`;
  } else {
    // With virtual-hosted style the SDK sends requests to `<bucket>.<host>`, a different name
    // that may resolve elsewhere: check the names the requests may actually go to.
    const names = target.forcePathStyle ? [host] : [host, `${target.bucket}.${host}`];
    why = null;
    for (const name of names) {
      why = isLocalhostName(name)
        ? `${name} always names the control plane's own machine`
        : await resolvedRefusal(name, resolve);
      if (why) break;
    }
  }
  if (!why) return null;
  return (
    `The backup target's endpoint is not allowed: ${why}. Organization backup targets must use an endpoint ` +
    `on a public address; the operator can allow private ones with ${PRIVATE_ENDPOINTS_SETTING}=allow.`
  );
}

type Lookup = (host: string, options: { all: true }) => Promise<{ address: string }[]>;
let lookupLoaded: Promise<Lookup | null> | undefined;

async function loadLookup(): Promise<Lookup | null> {
  // Cloudflare Workers: node:dns exists under nodejs_compat, but its lookup() throws "Not
  // implemented" and its resolve*() functions ask 1.1.1.1 over HTTPS, which is not how the
  // Worker's own fetch() finds hosts. So names are not resolved there; literals and localhost
  // names are still checked (a Worker's fetch() cannot reach the operator's private network
  // anyway unless it is connected to it on purpose).
  const ua = (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent;
  if (ua === "Cloudflare-Workers") return null;
  try {
    const dns = await import("node:dns/promises");
    return dns.lookup as Lookup;
  } catch {
    return null; // a runtime without node:dns: no resolution, as on Workers
  }
}

/**
 * The operating system's resolver (what the AWS SDK's requests use on Node and Lambda). A name that
 * does not resolve answers `[]`: nothing to refuse, and the S3 call fails on its own (ENOTFOUND).
 */
export async function systemResolve(host: string): Promise<string[] | null> {
  lookupLoaded ??= loadLookup();
  const lookup = await lookupLoaded;
  if (!lookup) return null;
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return [];
  }
}
