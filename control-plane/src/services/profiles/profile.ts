import { eq, sql } from "drizzle-orm";
import { prepared } from "../../db/prepared.js";
import { profiles, users } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { recordAudit } from "../audit/record.js";

export interface Profile {
  id: number;
  gotrue_id: string;
  auth0_id: string;
  primary_email: string;
  username: string;
  first_name: string | null;
  last_name: string | null;
  mobile: string | null;
  free_project_limit: number | null;
  is_alpha_user: boolean;
  is_sso_user: boolean;
  disabled_features: string[];
}

/**
 * Parts of Studio that belong to Supabase's hosted service and mean nothing on our instance.
 * Studio hides them at run time when the profile lists them.
 */
export const DISABLED_FEATURES = [
  "billing:account_data",
  "billing:credits",
  "billing:invoices",
  "billing:payment_methods",
];

function toProfile(row: typeof profiles.$inferSelect, email: string): Profile {
  return {
    id: row.id,
    gotrue_id: row.userId,
    auth0_id: row.userId,
    primary_email: email,
    username: row.username,
    first_name: row.firstName,
    last_name: row.lastName,
    mobile: row.mobile,
    free_project_limit: null,
    is_alpha_user: false,
    is_sso_user: false,
    disabled_features: DISABLED_FEATURES,
  };
}

/** The caller's profile, created on first read (Studio creates it right after the first login). */
export async function getOrCreateProfile(ctx: AuthedContext): Promise<Profile> {
  const { db, actor } = ctx;
  const [existing] = await prepared(db, "sm_profile_of_user", (d, name) =>
    d
      .select()
      .from(profiles)
      .where(eq(profiles.userId, sql.placeholder("userId")))
      .limit(1)
      .prepare(name),
  ).execute({ userId: actor.userId });
  if (existing) return toProfile(existing, actor.email);
  return db.transaction(async (tx) => {
    const [created] = await tx
      .insert(profiles)
      .values({ userId: actor.userId, username: defaultUsername(actor.email) })
      .onConflictDoNothing({ target: profiles.userId })
      .returning();
    if (created) {
      await recordAudit(tx, ctx.meta, {
        action: "profile.create",
        outcome: "success",
        actor,
        target: String(created.id),
      });
      return toProfile(created, actor.email);
    }
    // Lost a race with a concurrent first read: the row exists now.
    const [row] = await tx.select().from(profiles).where(eq(profiles.userId, actor.userId)).limit(1);
    if (!row) throw new Error("profile vanished");
    return toProfile(row, actor.email);
  });
}

export async function updateProfile(
  ctx: AuthedContext,
  input: { first_name?: string | null; last_name?: string | null; username?: string; mobile?: string | null },
): Promise<Profile> {
  await getOrCreateProfile(ctx);
  const { db, actor } = ctx;
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(profiles)
      .set({
        ...(input.first_name !== undefined ? { firstName: input.first_name } : {}),
        ...(input.last_name !== undefined ? { lastName: input.last_name } : {}),
        ...(input.username !== undefined ? { username: input.username } : {}),
        ...(input.mobile !== undefined ? { mobile: input.mobile } : {}),
        updatedAt: new Date(ctx.deps.clock.now()),
      })
      .where(eq(profiles.userId, actor.userId))
      .returning();
    if (!row) throw new Error("profile vanished");
    await recordAudit(tx, ctx.meta, {
      action: "profile.update",
      outcome: "success",
      actor,
      target: String(row.id),
      details: { fields: Object.keys(input) },
    });
    return toProfile(row, actor.email);
  });
}

function defaultUsername(email: string): string {
  return (email.split("@")[0] ?? "user").replace(/[^a-zA-Z0-9_.-]/g, "").slice(0, 40) || "user";
}

/** Used by member listings: usernames for a set of users, falling back to the email's local part. */
export async function usernameFor(ctx: Pick<AuthedContext, "db">, userId: string): Promise<string | undefined> {
  const [row] = await ctx.db
    .select({ username: profiles.username, email: users.email })
    .from(users)
    .leftJoin(profiles, eq(profiles.userId, users.id))
    .where(eq(users.id, userId))
    .limit(1);
  return row ? (row.username ?? defaultUsername(row.email)) : undefined;
}
