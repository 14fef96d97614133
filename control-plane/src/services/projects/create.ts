import { newProjectRef } from "@supamanager/shared";
import { projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { orgForMember } from "../organizations/access.js";
import { type ComputeSize, dbPassAad, type ProjectView, toView } from "./model.js";

export interface CreateProjectInput {
  name: string;
  organizationSlug: string;
  /** Plaintext; only ever stored encrypted and never echoed, logged or audited. */
  dbPass: string;
  cloudProvider: string;
  /** A configured region; absent → the first configured region. */
  region?: string | undefined;
  computeSize: ComputeSize;
}

/** A ref collision (~94 bits of entropy) is astronomically rare; a few retries are plenty. */
const REF_ATTEMPTS = 5;

/**
 * Create a project record in COMING_UP with desired state "running". The fleet work picks it
 * up from there (placement, secrets, apply); today the record is all there is.
 */
export async function createProject(ctx: AuthedContext, input: CreateProjectInput): Promise<ProjectView> {
  const { org } = await orgForMember(ctx, input.organizationSlug, "projects.create");
  const regions = ctx.deps.config.regions;
  const region = input.region ?? regions[0];
  if (region === undefined || !regions.includes(region)) {
    throw badRequest(`Unknown region ${JSON.stringify(input.region)}; valid regions: ${regions.join(", ")}`);
  }
  const now = new Date(ctx.deps.clock.now());

  return ctx.db.transaction(async (tx) => {
    for (let attempt = 0; attempt < REF_ATTEMPTS; attempt++) {
      const ref = newProjectRef();
      // The AAD names the ref, so the ciphertext is re-made for every candidate ref.
      const dbPassEncrypted = await ctx.deps.secretBox.encrypt(input.dbPass, dbPassAad(ref));
      // ON CONFLICT DO NOTHING keeps the transaction usable after a collision (a raised unique
      // violation would abort it).
      const [row] = await tx
        .insert(projects)
        .values({
          ref,
          orgId: org.id,
          name: input.name,
          region,
          cloudProvider: input.cloudProvider,
          status: "COMING_UP",
          desiredState: "running",
          specVersion: 1,
          computeSize: input.computeSize,
          dbPassEncrypted,
          createdAt: now,
          updatedAt: now,
        })
        .onConflictDoNothing({ target: projects.ref })
        .returning();
      if (!row) continue;
      await recordAudit(tx, ctx.meta, {
        action: "project.create",
        outcome: "success",
        actor: ctx.actor,
        orgId: org.id,
        projectRef: ref,
        target: ref,
        details: { name: input.name, region, cloud_provider: input.cloudProvider, compute_size: input.computeSize },
      });
      return toView(row, org.slug);
    }
    throw new Error(`could not find a free project ref after ${REF_ATTEMPTS} attempts`);
  });
}
