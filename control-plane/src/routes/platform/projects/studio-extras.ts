import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, shape } from "../../../lib/validate.js";
import { COMPUTE_CPUS } from "../../../releases/compute.js";
import { getProject } from "../../../services/projects/get.js";
import { COMPUTE_MEMORY_BYTES, COMPUTE_SIZES, type ComputeSize } from "../../../services/projects/model.js";
import { RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

const AddonVariant = z.object({
  identifier: z.string(),
  name: z.string(),
  price: z.number(),
  price_description: z.string(),
  price_interval: z.enum(["monthly", "hourly"]),
  price_type: z.enum(["fixed", "usage"]),
  meta: z.object({
    cpu_cores: z.number(),
    cpu_dedicated: z.boolean(),
    memory_gb: z.number(),
    baseline_disk_io_mbs: z.number().nullable(),
    max_disk_io_mbs: z.number().nullable(),
    connections_direct: z.number().nullable(),
    connections_pooler: z.number().nullable(),
  }),
});
export const ProjectAddonsResponse = z.object({
  ref: z.string(),
  selected_addons: z.array(z.object({ type: z.literal("compute_instance"), variant: AddonVariant })),
  available_addons: z.array(
    z.object({ type: z.literal("compute_instance"), name: z.string(), variants: z.array(AddonVariant) }),
  ),
});

const SIZE_LABELS: Record<ComputeSize, string> = {
  nano: "Nano",
  micro: "Micro",
  small: "Small",
  medium: "Medium",
  large: "Large",
  xlarge: "XL",
};

/** A compute size as Studio's `ci_<size>` add-on variant: our limits, no price (nothing is billed). */
export function computeVariant(size: ComputeSize): z.input<typeof AddonVariant> {
  return {
    identifier: `ci_${size}`,
    name: SIZE_LABELS[size],
    price: 0,
    price_description: "No charge: the project runs on the operator's own hosts",
    price_interval: "monthly",
    price_type: "fixed",
    meta: {
      cpu_cores: COMPUTE_CPUS[size],
      // The CPUs are a limit on shared host cores, not dedicated ones.
      cpu_dedicated: false,
      memory_gb: COMPUTE_MEMORY_BYTES[size] / 1024 ** 3,
      // We set no disk I/O or connection limits beyond Postgres' own.
      baseline_disk_io_mbs: null,
      max_disk_io_mbs: null,
      connections_direct: null,
      connections_pooler: null,
    },
  };
}

/**
 * GET /platform/projects/:ref/billing/addons — the project's compute size as Studio's selected
 * `compute_instance` add-on (what the Connect dialog, the compute page and the project home read),
 * and every size a project may run at as the available variants. No other add-on exists here.
 */
export async function projectAddonsRoute(c: Context<AppEnv>): Promise<Response> {
  const project = await getProject(authed(c), refOf(c));
  return c.json(
    shape(ProjectAddonsResponse, {
      ref: project.ref,
      selected_addons: [{ type: "compute_instance", variant: computeVariant(project.computeSize) }],
      available_addons: [
        { type: "compute_instance", name: "Compute Instance", variants: COMPUTE_SIZES.map(computeVariant) },
      ],
    }),
  );
}

/**
 * GET /platform/projects/:ref/load-balancers — STUB: projects have no read replicas, so there is
 * no load balancer in front of them; the empty list makes Studio show the primary only.
 */
export async function loadBalancersRoute(c: Context<AppEnv>): Promise<Response> {
  await getProject(authed(c), refOf(c));
  return c.json([]);
}

/**
 * GET /platform/projects/:ref/config/secrets/update-status — the state of a JWT secret rotation.
 * A project's JWT secret is never being rotated here (there is no rotation yet), so the status
 * is `null`: Studio then shows the API keys instead of "JWT secret is being updated" or an error.
 */
export async function secretsUpdateStatusRoute(c: Context<AppEnv>): Promise<Response> {
  await getProject(authed(c), refOf(c));
  return c.json({ update_status: null });
}
