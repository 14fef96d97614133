/**
 * The floor for bench/platform-load.ts: the least an authenticated, database-backed request on this
 * stack can cost. A minimal Hono app that checks the same kind of token the control plane issues
 * (jose, HS256, same issuer/audience/claims) and answers each benchmarked route with ONE indexed
 * query returning the same rows as the control plane's route, serialised as they come. No session
 * check, no logging, no metrics, no validation library: what remains is the HTTP server, the JWT
 * check and one database round trip.
 */
import { Hono } from "hono";
import { jwtVerify } from "jose";

/** One parameterised statement on the benchmark's database (a pg pool, or the PGlite instance). */
export type FloorQuery = (text: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

const PROFILE_SQL = `select id, user_id, username, first_name, last_name, mobile
  from profiles where user_id = $1`;

// The org's page under the same membership rule as the control plane (a member of the org), with
// the exact count of the filter in the same statement (a window over the same rows).
const ORG_PROJECTS_SQL = `select p.id, p.ref, p.name, p.status, p.region, p.cloud_provider, p.host_id, p.created_at,
    p.compute_size, p.release, count(*) over () as total
  from projects p
  join organizations o on o.id = p.org_id
  join org_members m on m.org_id = o.id and m.user_id = $2
  where o.slug = $1 and p.status <> 'REMOVED'
  order by lower(p.name), p.id
  limit $3 offset $4`;

// Project detail and status: the project by ref, for a member of its organization, with its host's
// liveness (a project on an offline host reads UNKNOWN in the control plane).
const PROJECT_SQL = `select p.id, p.ref, p.name, p.status, p.region, p.cloud_provider, p.host_id, p.created_at,
    p.compute_size, p.release, o.slug, h.last_seen_at, h.bind_address
  from projects p
  join organizations o on o.id = p.org_id
  join org_members m on m.org_id = p.org_id and m.user_id = $2
  left join hosts h on h.id = p.host_id
  where p.ref = $1 and p.status <> 'REMOVED'`;

export function floorApp(secret: string, query: FloorQuery) {
  // Imported once, as the control plane does (crypto/jwt.ts): raw bytes would make jose import a
  // WebCrypto key on every verification.
  const key = crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const app = new Hono<{ Variables: { sub: string } }>();
  app.use("*", async (c, next) => {
    const m = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "");
    if (!m?.[1]) return c.json({ message: "unauthorized" }, 401);
    try {
      const { payload } = await jwtVerify(m[1], await key, {
        algorithms: ["HS256"],
        issuer: "supamanager",
        audience: "authenticated",
        requiredClaims: ["exp", "sub", "iat"],
      });
      c.set("sub", String(payload.sub));
    } catch {
      return c.json({ message: "unauthorized" }, 401);
    }
    await next();
  });
  app.get("/profile", async (c) => {
    const [row] = await query(PROFILE_SQL, [c.get("sub")]);
    return row ? c.json(row) : c.json({ message: "not found" }, 404);
  });
  app.get("/organizations/:slug/projects", async (c) => {
    const limit = Number(c.req.query("limit") ?? 100);
    const offset = Number(c.req.query("offset") ?? 0);
    const rows = await query(ORG_PROJECTS_SQL, [c.req.param("slug"), c.get("sub"), limit, offset]);
    return c.json({ count: Number(rows[0]?.total ?? 0), projects: rows });
  });
  app.get("/projects/:ref", async (c) => {
    const [row] = await query(PROJECT_SQL, [c.req.param("ref"), c.get("sub")]);
    return row ? c.json(row) : c.json({ message: "not found" }, 404);
  });
  app.get("/projects/:ref/status", async (c) => {
    const [row] = await query(PROJECT_SQL, [c.req.param("ref"), c.get("sub")]);
    return row ? c.json({ status: row.status }) : c.json({ message: "not found" }, 404);
  });
  return app;
}
