import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { serviceContext } from "../../../lib/context.js";
import { shape } from "../../../lib/validate.js";
import { regionSummary } from "../../../services/fleet/hosts.js";
import { regionLabel } from "../../../services/fleet/region-names.js";

const Specific = z.object({
  code: z.string(),
  name: z.string(),
  provider: z.literal("AWS"),
  type: z.literal("specific"),
  status: z.literal("capacity").optional(),
});
const SmartGroup = z.object({ code: z.literal("americas"), name: z.string(), type: z.literal("smartGroup") });
const RegionsInfo = z.object({
  all: z.object({ smartGroup: z.array(SmartGroup), specific: z.array(Specific) }),
  recommendations: z.object({ smartGroup: SmartGroup, specific: z.array(Specific) }),
});

/** The one "smart group" we offer: a create with it goes to the best host in any region. */
export const ANY_REGION = { code: "americas", name: "Any region (best host)", type: "smartGroup" } as const;

/**
 * GET /platform/projects/available-regions (RegionsInfo): our regions are the regions of enrolled
 * hosts, named as Studio names them where it has a label for the code (so the form shows and
 * posts "East US (North Virginia)" for us-east-1, as its built-in list does; ADR 0025). A region
 * whose hosts are all offline, cordoned or draining is flagged `capacity`. Supabase's smart
 * groups do not exist here; the one we list (and recommend, so it is the form's default) places
 * a project on the best host in any region. Studio's query (cloud_provider, organization_slug,
 * desired_instance_size) does not change the answer: every organization may use every region.
 */
export async function availableRegionsRoute(c: Context<AppEnv>): Promise<Response> {
  const regions = await regionSummary(serviceContext(c));
  const specific = regions.map((r) => ({
    code: r.code,
    name: regionLabel(r.code),
    provider: "AWS" as const,
    type: "specific" as const,
    ...(r.schedulableHosts === 0 ? { status: "capacity" as const } : {}),
  }));
  const best = [...regions].sort((a, b) => b.schedulableHosts - a.schedulableHosts)[0];
  return c.json(
    shape(RegionsInfo, {
      all: { smartGroup: regions.length > 0 ? [ANY_REGION] : [], specific },
      recommendations: {
        smartGroup: ANY_REGION,
        specific: specific.filter((s) => s.code === best?.code && best.schedulableHosts > 0),
      },
    }),
  );
}
