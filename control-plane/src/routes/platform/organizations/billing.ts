import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { getSubscription, getUsage, listEntitlements } from "../../../services/organizations/billing.js";
import { orgSlug } from "./params.js";

/** GET …/billing/subscription — named stub: the Free plan, nothing billed. */
export async function subscription(c: Context<AppEnv>): Promise<Response> {
  return c.json(await getSubscription(authed(c), orgSlug(c)));
}

/** GET …/entitlements — what this instance offers (see services/organizations/billing.ts). */
export async function entitlements(c: Context<AppEnv>): Promise<Response> {
  return c.json(await listEntitlements(authed(c), orgSlug(c)));
}

/** GET …/usage — named stub: no usage billing. */
export async function usage(c: Context<AppEnv>): Promise<Response> {
  return c.json(await getUsage(authed(c), orgSlug(c)));
}
