import { and, eq, gt, isNull, lt, or } from "drizzle-orm";
import type { Database } from "../../db/index.js";
import { personalAccessTokens, users } from "../../db/schema.js";
import type { Actor, AppDeps } from "../../deps.js";
import { hashPersonalAccessToken } from "./tokens.js";

/** `last_used_at` is written at most this often per token, so busy scripts do not write on every call. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** The session id an actor authenticated by a personal access token carries. */
export const patSessionId = (tokenId: string) => `pat:${tokenId}`;
export const isPatSession = (sessionId: string) => sessionId.startsWith("pat:");

/**
 * The actor behind a personal access token, or undefined when the token is unknown, revoked
 * (deleted) or expired. Looked up by hash through a unique index: no timing oracle.
 */
export async function actorForPersonalAccessToken(
  db: Database,
  deps: Pick<AppDeps, "clock">,
  token: string,
): Promise<Actor | undefined> {
  const now = new Date(deps.clock.now());
  const tokenHash = await hashPersonalAccessToken(token);
  const [row] = await db
    .select({
      id: personalAccessTokens.id,
      lastUsedAt: personalAccessTokens.lastUsedAt,
      userId: users.id,
      email: users.email,
      isInstanceAdmin: users.isInstanceAdmin,
    })
    .from(personalAccessTokens)
    .innerJoin(users, eq(users.id, personalAccessTokens.userId))
    .where(
      and(
        eq(personalAccessTokens.tokenHash, tokenHash),
        or(isNull(personalAccessTokens.expiresAt), gt(personalAccessTokens.expiresAt, now)),
      ),
    )
    .limit(1);
  if (!row) return undefined;
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS) {
    const threshold = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
    // Conditional, so concurrent requests in the same minute write at most once.
    await db
      .update(personalAccessTokens)
      .set({ lastUsedAt: now })
      .where(
        and(
          eq(personalAccessTokens.id, row.id),
          or(isNull(personalAccessTokens.lastUsedAt), lt(personalAccessTokens.lastUsedAt, threshold)),
        ),
      );
  }
  return {
    userId: row.userId,
    email: row.email,
    isInstanceAdmin: row.isInstanceAdmin,
    sessionId: patSessionId(row.id),
  };
}
