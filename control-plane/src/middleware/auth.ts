import { and, eq, isNull } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { TokenError } from "../crypto/jwt.js";
import { sessions, users } from "../db/schema.js";
import type { Actor, AppEnv } from "../deps.js";
import { unauthorized } from "../errors.js";
import { actorForPersonalAccessToken } from "../services/access-tokens/authenticate.js";
import { looksLikePersonalAccessToken } from "../services/access-tokens/tokens.js";
import { sessionCache } from "../services/sessions/cache.js";

/** Extract a Bearer token; anything else is treated as absent. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+([^\s]+)$/i.exec(header.trim());
  return m?.[1];
}

/**
 * Requires either a valid, unexpired dashboard access token whose session is still live
 * (so logout and refresh-token reuse detection take effect at once, not at token expiry — within
 * SUPAMANAGER_SESSION_CHECK_SECONDS when another process revoked it, see services/sessions/cache.ts
 * and ADR 0033), or a live personal access token (`sbp_…`, not expired, not revoked). Both set the same Actor; a
 * PAT's `sessionId` is `pat:<token id>`.
 */
export function requireAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.header("authorization"));
    if (!token) throw unauthorized("Missing access token");
    const deps = c.get("deps");
    if (looksLikePersonalAccessToken(token)) {
      const actor = await actorForPersonalAccessToken(c.get("db"), deps, token);
      if (!actor) throw unauthorized("Invalid, expired or revoked access token");
      c.set("actor", actor);
      await next();
      return;
    }
    let claims: Awaited<ReturnType<typeof deps.accessTokens.verify>>;
    try {
      claims = await deps.accessTokens.verify(token);
    } catch (err) {
      if (err instanceof TokenError) {
        throw unauthorized(err.reason === "expired" ? "Access token has expired" : "Invalid access token");
      }
      throw err;
    }
    const cache = sessionCache(deps);
    const known = cache.get(claims.session_id, claims.sub);
    if (known) {
      c.set("actor", known);
      await next();
      return;
    }
    const [row] = await c
      .get("db")
      .select({ userId: users.id, email: users.email, isInstanceAdmin: users.isInstanceAdmin })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.id, claims.session_id), eq(sessions.userId, claims.sub), isNull(sessions.revokedAt)))
      .limit(1);
    if (!row) throw unauthorized("Session has ended; sign in again");
    const actor: Actor = { ...row, sessionId: claims.session_id };
    cache.remember(actor);
    c.set("actor", actor);
    await next();
  };
}

/** The actor set by requireAuth; throws if a route forgot the middleware. */
export function actorOf(c: { get(key: "actor"): Actor | undefined }): Actor {
  const actor = c.get("actor");
  if (!actor) throw unauthorized();
  return actor;
}
