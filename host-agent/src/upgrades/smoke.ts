/**
 * The API part of an upgrade's post-check (docs/upgrades.md): after the new release's stack is
 * healthy and its data verified, the agent calls the project's gateway on this host the way a
 * client would, for each service the release runs. Health checks say a container answers its
 * own probe; this says the gateway routes to it with the project's keys. Each check is one
 * read-only request (nothing is created, so nothing must be cleaned up):
 *
 * - the gateway guards its routes: `GET /pg/` without a key answers 401 or 403;
 * - postgres-meta (`meta`): `POST /pg/query` `select 1` with the service_role key, 2xx;
 * - Auth (`auth`): `GET /auth/v1/health` with the anon key, 2xx (GoTrue's health endpoint);
 * - PostgREST (`rest`): `GET /rest/v1/` with the anon key, 2xx (the schema's description);
 * - Storage (`storage`): `GET /storage/v1/bucket` with the service_role key, 2xx (the bucket list).
 *
 * A fuller check (sign-up, rows, files, Realtime) is `supamanager projects smoke` (ADR 0031).
 */

export interface ApiSmokeTarget {
  /** The gateway's base URL as this host reaches it (a published port or the host ingress). */
  gateway: string;
  /** The services the release runs (Compose service names). */
  services: readonly string[];
  anonKey?: string | undefined;
  serviceKey?: string | undefined;
}

export interface ApiSmokeOptions {
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** What failed, one line each; empty when every check passed. Never includes a key. */
export async function apiSmoke(t: ApiSmokeTarget, opts: ApiSmokeOptions = {}): Promise<string[]> {
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const base = t.gateway.replace(/\/+$/, "");
  const problems: string[] = [];
  const keyed = (key: string | undefined): Record<string, string> =>
    key ? { apikey: key, authorization: `Bearer ${key}` } : {};

  const check = async (
    what: string,
    method: string,
    path: string,
    headers: Record<string, string>,
    ok: (status: number) => boolean,
    expected: string,
    body?: unknown,
  ) => {
    try {
      const res = await doFetch(`${base}${path}`, {
        method,
        headers: {
          accept: "application/json",
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = (await res.text()).replace(/\s+/g, " ").trim();
      if (!ok(res.status)) {
        problems.push(
          `${what}: ${method} ${path} answered HTTP ${res.status}${text ? ` (${text.slice(0, 200)})` : ""}, not ${expected}`,
        );
      }
    } catch (err) {
      problems.push(`${what}: ${method} ${path} failed: ${(err as Error).message}`);
    }
  };
  const is2xx = (s: number) => s >= 200 && s <= 299;
  const runs = (s: string) => t.services.includes(s);

  await check("the gateway", "GET", "/pg/", {}, (s) => s === 401 || s === 403, "401 or 403 without a key");
  if (runs("meta") && t.serviceKey) {
    await check("postgres-meta", "POST", "/pg/query", keyed(t.serviceKey), is2xx, "2xx", { query: "select 1 as ok" });
  }
  if (runs("auth") && t.anonKey) {
    await check("Auth", "GET", "/auth/v1/health", keyed(t.anonKey), is2xx, "2xx");
  }
  if (runs("rest") && t.anonKey) {
    await check("PostgREST", "GET", "/rest/v1/", keyed(t.anonKey), is2xx, "2xx");
  }
  if (runs("storage") && t.serviceKey) {
    await check("Storage", "GET", "/storage/v1/bucket", keyed(t.serviceKey), is2xx, "2xx");
  }
  return problems;
}
