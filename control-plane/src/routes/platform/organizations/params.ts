import { OrgSlug } from "@supamanager/shared";
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { param } from "../../../lib/validate.js";

/** The `:slug` of every organization route; a malformed slug is simply "not found". */
export const orgSlug = (c: Context<AppEnv>): string => param(c, "slug", OrgSlug, "Organization");

/** A member's `:gotrue_id` (the account uuid). */
export const memberId = (c: Context<AppEnv>): string => param(c, "gotrue_id", z.uuid(), "Member");

/** A numeric `:role_id` path segment. */
export const roleIdParam = (c: Context<AppEnv>): number =>
  param(c, "role_id", z.coerce.number().int().positive().max(1_000_000), "Role");
