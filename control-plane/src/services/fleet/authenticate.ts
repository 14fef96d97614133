import { and, eq, isNull } from "drizzle-orm";
import { hosts } from "../../db/schema.js";
import type { ServiceContext } from "../../deps.js";
import { unauthorized } from "../../errors.js";
import { looksLikeHostCredential, secretHash } from "./credentials.js";

/** The host a credential belongs to; unknown or revoked (removed host) → 401. */
export async function authenticateHost(ctx: ServiceContext, credential: string | undefined): Promise<{ id: string }> {
  const refused = unauthorized("Unknown or revoked host credential");
  if (!credential || !looksLikeHostCredential(credential)) throw refused;
  const [host] = await ctx.db
    .select({ id: hosts.id })
    .from(hosts)
    .where(and(eq(hosts.credentialHash, await secretHash(credential)), isNull(hosts.removedAt)))
    .limit(1);
  if (!host) throw refused;
  return host;
}
