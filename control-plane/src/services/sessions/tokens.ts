import { and, eq, gte, isNull } from "drizzle-orm";
import { randomToken, sha256Hex } from "../../crypto/encoding.js";
import type { Executor } from "../../db/index.js";
import { refreshTokens, sessions, users } from "../../db/schema.js";
import type { Actor, AppDeps, ServiceContext } from "../../deps.js";
import { ApiError, rateLimited } from "../../errors.js";
import { normalizeEmail } from "../accounts/signup.js";
import { recordAudit } from "../audit/record.js";
import { hit, peek, reset } from "../rate-limit/login-limiter.js";
import { sessionCache } from "./cache.js";

/** GoTrue's session object, as Studio's auth client reads it. */
export interface SessionResponse {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: UserResponse;
}

export interface UserResponse {
  id: string;
  aud: "authenticated";
  role: "authenticated";
  email: string;
  email_confirmed_at: string;
  confirmed_at: string;
  last_sign_in_at: string | null;
  app_metadata: { provider: "email"; providers: ["email"] };
  user_metadata: Record<string, never>;
  identities: [];
  factors: [];
  created_at: string;
  updated_at: string;
}

interface UserRow {
  id: string;
  email: string;
  createdAt: Date;
  updatedAt: Date;
  lastSignInAt: Date | null;
}

export function userResponse(u: UserRow): UserResponse {
  return {
    id: u.id,
    aud: "authenticated",
    role: "authenticated",
    email: u.email,
    email_confirmed_at: u.createdAt.toISOString(),
    confirmed_at: u.createdAt.toISOString(),
    last_sign_in_at: u.lastSignInAt?.toISOString() ?? null,
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    identities: [],
    factors: [],
    created_at: u.createdAt.toISOString(),
    updated_at: u.updatedAt.toISOString(),
  };
}

const INVALID_LOGIN = "Invalid login credentials";

/** How long an address stays "known" for an account after a session was started from it. */
const KNOWN_ADDRESS_DAYS = 90;

/** Whether the account started a session from `ip` within KNOWN_ADDRESS_DAYS. */
async function knownAddress(db: Executor, userId: string, ip: string, now: number): Promise<boolean> {
  const since = new Date(now - KNOWN_ADDRESS_DAYS * 86_400_000);
  const [row] = await db
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(eq(sessions.userId, userId), eq(sessions.ip, ip), gte(sessions.createdAt, since)))
    .limit(1);
  return row !== undefined;
}

/**
 * `grant_type=password`. Unknown email and wrong password answer the same error and take the
 * same time; attempts are limited per client IP and failures per email.
 */
export async function passwordGrant(
  ctx: ServiceContext,
  input: { email: string; password: string },
): Promise<SessionResponse> {
  const { deps, db, meta } = ctx;
  const email = normalizeEmail(input.email);
  const { windowSeconds, maxPerIp, maxPerEmail } = deps.config.loginLimit;
  const now = deps.clock.now();
  const ip = meta.ip ?? "unknown";

  const [user] = await db.select().from(users).where(eq(users.email, email)).limit(1);
  // Failed attempts from anywhere share one counter per email, except from an address this
  // account signed in from before (a known device): those count on their own, so strangers
  // holding the shared counter at its limit never lock the owner out there (docs/security.md).
  const known = user && meta.ip ? await knownAddress(db, user.id, meta.ip, now) : false;
  const emailKey = known ? `login:email-ip:${email}:${ip}` : `login:email:${email}`;

  // Both counters are taken atomically BEFORE the password is checked, so concurrent attempts
  // cannot all slip under the limit; a successful login gives the email's attempts back.
  const ipDecision = await hit(db, `login:ip:${ip}`, maxPerIp, windowSeconds, now);
  const emailDecision = ipDecision.allowed
    ? await hit(db, emailKey, maxPerEmail, windowSeconds, now)
    : await peek(db, emailKey, maxPerEmail, windowSeconds, now);
  if (!ipDecision.allowed || !emailDecision.allowed) {
    await recordAudit(db, meta, {
      action: "auth.login",
      outcome: "failure",
      actorEmail: email,
      details: { reason: "rate_limited" },
    });
    throw rateLimited(
      Math.max(
        ipDecision.allowed ? 0 : ipDecision.retryAfterSeconds,
        emailDecision.allowed ? 0 : emailDecision.retryAfterSeconds,
      ),
    );
  }

  let ok = false;
  if (user) ok = await deps.passwords.verify(input.password, user.passwordHash);
  else await deps.passwords.burn(input.password);
  if (!user || !ok) {
    await recordAudit(db, meta, {
      action: "auth.login",
      outcome: "failure",
      actorEmail: email,
      actor: user ? { userId: user.id, email } : null,
      details: { reason: "invalid_credentials" },
    });
    throw new ApiError("invalid_grant", INVALID_LOGIN);
  }

  return db.transaction(async (tx) => {
    await reset(tx, emailKey);
    const signedInAt = new Date(now);
    const [updated] = await tx.update(users).set({ lastSignInAt: signedInAt }).where(eq(users.id, user.id)).returning();
    const [session] = await tx
      .insert(sessions)
      .values({ userId: user.id, ip: meta.ip ?? null, userAgent: meta.userAgent ?? null })
      .returning({ id: sessions.id });
    if (!session || !updated) throw new Error("session insert returned no row");
    const refresh = await issueRefreshToken(tx, deps, session.id, null);
    await recordAudit(tx, meta, {
      action: "auth.login",
      outcome: "success",
      actor: { userId: user.id, email },
      target: session.id,
    });
    return sessionResponse(deps, updated, session.id, refresh);
  });
}

/**
 * `grant_type=refresh_token`. Each refresh token works once: using it revokes it and issues a
 * child. Presenting a token that was already rotated means it leaked (or a client misbehaves):
 * the whole session — every token of that login — is revoked.
 */
export async function refreshGrant(ctx: ServiceContext, input: { refreshToken: string }): Promise<SessionResponse> {
  const { deps, db, meta } = ctx;
  const tokenHash = await sha256Hex(input.refreshToken);
  const now = deps.clock.now();
  const outcome = await db.transaction(async (tx) => {
    const [row] = await tx
      .select({ token: refreshTokens, session: sessions, user: users })
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(eq(refreshTokens.tokenHash, tokenHash))
      .for("update", { of: refreshTokens })
      .limit(1);
    if (!row) return { kind: "invalid" as const };
    if (row.session.revokedAt) return { kind: "invalid" as const };
    if (row.token.revoked) {
      await revokeSession(tx, row.session.id, "refresh_token_reuse", now);
      await recordAudit(tx, meta, {
        action: "auth.refresh_token_reuse",
        outcome: "failure",
        actor: { userId: row.user.id, email: row.user.email },
        target: row.session.id,
      });
      return { kind: "reused" as const, sessionId: row.session.id };
    }
    if (row.token.expiresAt.getTime() <= now) return { kind: "invalid" as const };
    await tx.update(refreshTokens).set({ revoked: true }).where(eq(refreshTokens.id, row.token.id));
    await tx
      .update(sessions)
      .set({ refreshedAt: new Date(now) })
      .where(eq(sessions.id, row.session.id));
    const refresh = await issueRefreshToken(tx, deps, row.session.id, row.token.id);
    return { kind: "ok" as const, response: await sessionResponse(deps, row.user, row.session.id, refresh) };
  });
  // The reuse revocation must commit, so the error is thrown after the transaction.
  if (outcome.kind === "ok") return outcome.response;
  if (outcome.kind === "reused") sessionCache(deps).forget([outcome.sessionId]);
  if (outcome.kind === "reused")
    throw new ApiError("invalid_grant", "Refresh token has already been used; the session was revoked");
  throw new ApiError("invalid_grant", "Invalid refresh token");
}

/** `POST /logout?scope=local|global|others`. */
export async function logout(
  ctx: ServiceContext & { actor: Actor },
  scope: "local" | "global" | "others",
): Promise<void> {
  const { db, actor, deps, meta } = ctx;
  const now = deps.clock.now();
  const revoked: string[] = [];
  await db.transaction(async (tx) => {
    if (scope === "local") {
      // A personal-access-token actor (`pat:<id>`) has no dashboard session to end; PATs are
      // revoked at /platform/profile/access-tokens.
      if (!actor.sessionId.startsWith("pat:")) {
        await revokeSession(tx, actor.sessionId, "logout", now);
        revoked.push(actor.sessionId);
      }
    } else {
      const live = await tx
        .select({ id: sessions.id })
        .from(sessions)
        .where(and(eq(sessions.userId, actor.userId), isNull(sessions.revokedAt)));
      for (const s of live) {
        if (scope === "others" && s.id === actor.sessionId) continue;
        await revokeSession(tx, s.id, "logout", now);
        revoked.push(s.id);
      }
    }
    await recordAudit(tx, meta, { action: "auth.logout", outcome: "success", actor, details: { scope } });
  });
  // Committed: this process stops accepting them now (others within the session check's TTL).
  sessionCache(deps).forget(revoked);
}

async function revokeSession(tx: Executor, sessionId: string, reason: string, now: number): Promise<void> {
  await tx
    .update(sessions)
    .set({ revokedAt: new Date(now), revokedReason: reason })
    .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)));
  await tx.update(refreshTokens).set({ revoked: true }).where(eq(refreshTokens.sessionId, sessionId));
}

async function issueRefreshToken(
  tx: Executor,
  deps: AppDeps,
  sessionId: string,
  parentId: number | null,
): Promise<string> {
  const token = randomToken(32);
  await tx.insert(refreshTokens).values({
    tokenHash: await sha256Hex(token),
    sessionId,
    parentId,
    expiresAt: new Date(deps.clock.now() + deps.config.refreshTokenTtlSeconds * 1000),
  });
  return token;
}

async function sessionResponse(
  deps: AppDeps,
  user: UserRow,
  sessionId: string,
  refreshToken: string,
): Promise<SessionResponse> {
  const access = await deps.accessTokens.sign({
    sub: user.id,
    email: user.email,
    session_id: sessionId,
    aal: "aal1",
    role: "authenticated",
  });
  return {
    access_token: access.token,
    token_type: "bearer",
    expires_in: access.expiresIn,
    expires_at: access.expiresAt,
    refresh_token: refreshToken,
    user: userResponse(user),
  };
}
