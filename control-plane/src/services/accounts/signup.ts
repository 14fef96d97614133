import { count, eq, sql } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { users } from "../../db/schema.js";
import type { AppDeps, ServiceContext } from "../../deps.js";
import { ApiError, conflict, rateLimited } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { hit } from "../rate-limit/login-limiter.js";

/** Serialises "is this the first account?" across processes ("supasgnp"). */
const SIGNUP_LOCK_KEY = 0x7375_7061_7367;

export interface NewAccount {
  id: string;
  email: string;
  isInstanceAdmin: boolean;
  createdAt: Date;
}

const signupClosed = () =>
  new ApiError("forbidden", "Signups are disabled on this instance; ask an administrator for an account");

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/**
 * Create a dashboard account. The very first account may always sign up and becomes the
 * instance admin; later ones need SUPAMANAGER_ALLOW_SIGNUP (or an admin creating them).
 */
export async function signUp(ctx: ServiceContext, input: { email: string; password: string }): Promise<NewAccount> {
  const email = normalizeEmail(input.email);
  // Everything that can refuse runs before the password hash (scrypt is the expensive part):
  // closed sign-up (checked again under the lock below), then the per-address limit.
  if (!ctx.deps.config.allowSignup) {
    const [{ n } = { n: 0 }] = await ctx.db.select({ n: count() }).from(users);
    if (n > 0) throw signupClosed();
  }
  const { windowSeconds, maxPerIp } = ctx.deps.config.loginLimit;
  const limit = await hit(
    ctx.db,
    `signup:ip:${ctx.meta.ip ?? "unknown"}`,
    maxPerIp,
    windowSeconds,
    ctx.deps.clock.now(),
  );
  if (!limit.allowed) throw rateLimited(limit.retryAfterSeconds);
  const passwordHash = await ctx.deps.passwords.hash(input.password);
  return ctx.db.transaction(async (tx) => {
    const account = await insertAccount(tx, ctx.deps, email, passwordHash, {
      allowFirstOnly: !ctx.deps.config.allowSignup,
    });
    await recordAudit(tx, ctx.meta, {
      action: "account.signup",
      outcome: "success",
      actor: { userId: account.id, email },
      target: account.id,
      details: { instance_admin: account.isInstanceAdmin },
    });
    return account;
  });
}

async function insertAccount(
  tx: Executor,
  _deps: AppDeps,
  email: string,
  passwordHash: string,
  opts: { allowFirstOnly: boolean; forceAdmin?: boolean },
): Promise<NewAccount> {
  await tx.execute(sql`select pg_advisory_xact_lock(${SIGNUP_LOCK_KEY})`);
  const [{ n } = { n: 0 }] = await tx.select({ n: count() }).from(users);
  const first = n === 0;
  if (!first && opts.allowFirstOnly) throw signupClosed();
  const existing = await tx.select({ id: users.id }).from(users).where(eq(users.email, email)).limit(1);
  if (existing.length > 0) throw conflict("An account with this email already exists");
  const [row] = await tx
    .insert(users)
    .values({ email, passwordHash, isInstanceAdmin: first || opts.forceAdmin === true })
    .returning({
      id: users.id,
      email: users.email,
      isInstanceAdmin: users.isInstanceAdmin,
      createdAt: users.createdAt,
    });
  if (!row) throw new Error("insert returned no row");
  return row;
}

/**
 * Create the configured admin (SUPAMANAGER_ADMIN_EMAIL/PASSWORD) if it does not exist yet.
 * Idempotent: an existing account is left as it is (its password is not overwritten).
 */
export async function ensureAdmin(deps: AppDeps): Promise<"created" | "exists" | "skipped"> {
  const admin = deps.config.admin;
  if (!admin) return "skipped";
  const email = normalizeEmail(admin.email);
  const db = deps.database.db;
  const found = await db.select({ id: users.id }).from(users).where(eq(users.email, email)).limit(1);
  if (found.length > 0) return "exists";
  const passwordHash = await deps.passwords.hash(admin.password);
  try {
    return await db.transaction(async (tx) => {
      const account = await insertAccount(tx, deps, email, passwordHash, { allowFirstOnly: false, forceAdmin: true });
      await recordAudit(
        tx,
        { requestId: "startup", ip: undefined, userAgent: undefined },
        { action: "account.bootstrap_admin", outcome: "success", target: account.id, actorEmail: email },
      );
      return "created" as const;
    });
  } catch (err) {
    // Another process created it between our look and our insert.
    if (err instanceof ApiError && err.code === "conflict") return "exists";
    throw err;
  }
}
