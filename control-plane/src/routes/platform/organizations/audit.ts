import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { query } from "../../../lib/validate.js";
import { AUDIT_MAX_LIMIT, listOrgAudit } from "../../../services/organizations/audit.js";
import { orgSlug } from "./params.js";

const Timestamp = z.iso.datetime({ offset: true, error: "must be an ISO 8601 timestamp" });

export const AuditQuery = z.object({
  iso_timestamp_start: Timestamp.optional(),
  iso_timestamp_end: Timestamp.optional(),
  limit: z.coerce.number().int().min(1).max(AUDIT_MAX_LIMIT).optional(),
  /** Some Studio builds send format=v2; the V2 shape is the only one we answer. */
  format: z.string().optional(),
});

/** GET /platform/organizations/:slug/audit — this organization's audit rows, newest first. */
export async function getAudit(c: Context<AppEnv>): Promise<Response> {
  const slug = orgSlug(c);
  const q = query(c, AuditQuery);
  return c.json(
    await listOrgAudit(authed(c), slug, {
      start: q.iso_timestamp_start ? new Date(q.iso_timestamp_start) : undefined,
      end: q.iso_timestamp_end ? new Date(q.iso_timestamp_end) : undefined,
      limit: q.limit,
    }),
  );
}
