import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { serviceContext } from "../../../lib/context.js";
import { shape } from "../../../lib/validate.js";
import { regionSummary } from "../../../services/fleet/hosts.js";

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

/**
 * GET /platform/projects/available-regions (RegionsInfo): our regions are the regions of enrolled
 * hosts. A region whose hosts are all offline, cordoned or draining is flagged `capacity`. We
 * have no smart groups; the required recommendation names one that places a project on the best
 * host in any region (which is what a smart-group selection does on create).
 */
export async function availableRegionsRoute(c: Context<AppEnv>): Promise<Response> {
  const regions = await regionSummary(serviceContext(c));
  const specific = regions.map((r) => ({
    code: r.code,
    name: r.code,
    provider: "AWS" as const,
    type: "specific" as const,
    ...(r.schedulableHosts === 0 ? { status: "capacity" as const } : {}),
  }));
  const best = [...regions].sort((a, b) => b.schedulableHosts - a.schedulableHosts)[0];
  return c.json(
    shape(RegionsInfo, {
      all: { smartGroup: [], specific },
      recommendations: {
        smartGroup: { code: "americas", name: "Any region (best host)", type: "smartGroup" },
        specific: specific.filter((s) => s.code === best?.code && best.schedulableHosts > 0),
      },
    }),
  );
}
