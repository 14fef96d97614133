import { prefixedId } from "@supamanager/shared";
import { and, asc, eq } from "drizzle-orm";
import { randomBytes, sha256Hex, toHex } from "../../crypto/encoding.js";
import { personalAccessTokens } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest, conflict, notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";

/** A personal access token as listed: never the token itself nor its hash. */
export interface AccessTokenView {
  id: string;
  name: string;
  token_alias: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

export interface CreatedAccessToken extends AccessTokenView {
  /** Shown exactly once, in the creation response. */
  token: string;
}

/** How many live tokens one account may hold; a cap so a script gone wrong cannot fill the table. */
export const MAX_TOKENS_PER_USER = 100;

const TOKEN_PATTERN = /^sbp_[0-9a-f]{40}$/;

/** `sbp_` + 40 lowercase hex characters (160 bits from the platform CSPRNG), the official CLI's format. */
export function newPersonalAccessToken(): string {
  return `sbp_${toHex(randomBytes(20))}`;
}

/** Cheap shape check before touching the database. */
export const looksLikePersonalAccessToken = (s: string) => TOKEN_PATTERN.test(s);

/** A display-only abbreviation that cannot be used to reconstruct the token. */
export function tokenAlias(token: string): string {
  return `${token.slice(0, 8)}…${token.slice(-4)}`;
}

export const hashPersonalAccessToken = (token: string) => sha256Hex(token);

function view(row: typeof personalAccessTokens.$inferSelect): AccessTokenView {
  return {
    id: row.id,
    name: row.name,
    token_alias: row.tokenAlias,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    expires_at: row.expiresAt?.toISOString() ?? null,
  };
}

/** The caller's own tokens, oldest first (expired ones included, so they can be cleaned up). */
export async function listAccessTokens(ctx: AuthedContext): Promise<AccessTokenView[]> {
  const rows = await ctx.db
    .select()
    .from(personalAccessTokens)
    .where(eq(personalAccessTokens.userId, ctx.actor.userId))
    .orderBy(asc(personalAccessTokens.createdAt), asc(personalAccessTokens.id));
  return rows.map(view);
}

export async function createAccessToken(
  ctx: AuthedContext,
  input: { name: string; expiresAt?: Date | null },
): Promise<CreatedAccessToken> {
  const { db, actor, deps, meta } = ctx;
  const now = deps.clock.now();
  if (input.expiresAt && input.expiresAt.getTime() <= now) {
    throw badRequest("body.expires_at: must be in the future");
  }
  const token = newPersonalAccessToken();
  const tokenHash = await hashPersonalAccessToken(token);
  return db.transaction(async (tx) => {
    const existing = await tx
      .select({ id: personalAccessTokens.id })
      .from(personalAccessTokens)
      .where(eq(personalAccessTokens.userId, actor.userId));
    if (existing.length >= MAX_TOKENS_PER_USER) {
      throw conflict(`An account can hold at most ${MAX_TOKENS_PER_USER} access tokens; revoke some first`);
    }
    const [row] = await tx
      .insert(personalAccessTokens)
      .values({
        id: prefixedId("pat"),
        userId: actor.userId,
        name: input.name,
        tokenHash,
        tokenAlias: tokenAlias(token),
        expiresAt: input.expiresAt ?? null,
        createdAt: new Date(now),
      })
      .returning();
    if (!row) throw new Error("insert returned no row");
    await recordAudit(tx, meta, {
      action: "access_token.create",
      outcome: "success",
      actor,
      target: row.id,
      details: { name: row.name, expires_at: row.expiresAt?.toISOString() ?? null },
    });
    return { ...view(row), token };
  });
}

/** Revoke (delete) one of the caller's tokens; someone else's id is indistinguishable from a missing one. */
export async function revokeAccessToken(ctx: AuthedContext, id: string): Promise<AccessTokenView> {
  const { db, actor, meta } = ctx;
  return db.transaction(async (tx) => {
    const [row] = await tx
      .delete(personalAccessTokens)
      .where(and(eq(personalAccessTokens.id, id), eq(personalAccessTokens.userId, actor.userId)))
      .returning();
    if (!row) throw notFound("Access token not found");
    await recordAudit(tx, meta, {
      action: "access_token.revoke",
      outcome: "success",
      actor,
      target: row.id,
      details: { name: row.name },
    });
    return view(row);
  });
}
