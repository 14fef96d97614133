import { newProjectRef } from "@supamanager/shared";
import { projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest } from "../../errors.js";
import { computeSizeAllowed, effectiveParts, minimumComputeSize, releaseParts } from "../../releases/compute.js";
import type { ReleaseManifest } from "../../releases/manifest.js";
import { releasePorts as releasePortNames } from "../../releases/render.js";
import { recordAudit } from "../audit/record.js";
import { matchRegion, regionLabel } from "../fleet/region-names.js";
import { enrolledRegions, placeProject, reservePorts } from "../fleet/scheduling.js";
import { orgForMember } from "../organizations/access.js";
import { generateProjectSecrets } from "../secrets/generate.js";
import { insertProjectSecrets } from "../secrets/store.js";
import { hostFacts } from "./host-facts.js";
import {
  COMPUTE_MEMORY_BYTES,
  COMPUTE_SIZES,
  type ComputeSize,
  DEFAULT_COMPUTE_SIZE,
  dbPassAad,
  type ProjectView,
  toView,
} from "./model.js";

export interface CreateProjectInput {
  name: string;
  organizationSlug: string;
  /** Plaintext; only ever stored encrypted and never echoed, logged or audited. */
  dbPass: string;
  cloudProvider: string;
  /**
   * A region with enrolled hosts, by code or by the label Studio shows for it ("East US (North
   * Virginia)"); absent → wherever the best host is, in any region.
   */
  region?: string | undefined;
  /** Absent → the smallest size the release runs in (never below DEFAULT_COMPUTE_SIZE). */
  computeSize?: ComputeSize | undefined;
  /** A release by name (GET /platform/fleet/releases); absent → the default release. */
  release?: string | undefined;
  /** The release's optional parts to run; absent → the release's default parts. */
  parts?: string[] | undefined;
}

/** A ref collision (~94 bits of entropy) is astronomically rare; a few retries are plenty. */
const REF_ATTEMPTS = 5;

/**
 * Create a project: place it on a host (online, schedulable, most free memory in its region),
 * reserve its ports there, store its password and generated secrets encrypted, and queue the first apply (desired
 * state "running", spec version 1, status COMING_UP). The host's agent is kicked after commit;
 * if it is not connected the apply goes out when it reconnects.
 */
export async function createProject(ctx: AuthedContext, input: CreateProjectInput): Promise<ProjectView> {
  const { org } = await orgForMember(ctx, input.organizationSlug, "projects.create");
  const region = input.region === undefined ? undefined : await resolveRegion(ctx, input.region);
  const release = releaseFor(ctx, input.release);
  const parts = partsFor(release, input.parts);
  const computeSize = input.computeSize ?? defaultComputeSize(release, parts);
  const fits = computeSizeAllowed(release, computeSize, parts);
  if (!fits.ok) throw badRequest(`${fits.reason}${partsNote(release, parts)}`);
  const now = new Date(ctx.deps.clock.now());

  const view = await ctx.db.transaction(async (tx) => {
    const host = await placeProject(tx, ctx.deps, region, {
      bytes: COMPUTE_MEMORY_BYTES[computeSize],
      size: computeSize,
    });
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
          region: host.region,
          cloudProvider: input.cloudProvider,
          status: "COMING_UP",
          desiredState: "running",
          specVersion: 1,
          computeSize,
          hostId: host.id,
          release: release.name,
          parts,
          dbPassEncrypted,
          createdAt: now,
          updatedAt: now,
        })
        .onConflictDoNothing({ target: projects.ref })
        .returning();
      if (!row) continue;
      const ports = await reservePorts(tx, ctx.deps, host.id, ref, releasePortNames(release));
      // Every secret of the stack, generated now (CSPRNG) and stored encrypted with the project.
      await insertProjectSecrets(tx, ctx.deps, ref, await generateProjectSecrets(ref, ctx.deps.clock.now()), now);
      await recordAudit(tx, ctx.meta, {
        action: "project.create",
        outcome: "success",
        actor: ctx.actor,
        orgId: org.id,
        projectRef: ref,
        target: ref,
        details: {
          name: input.name,
          region: host.region,
          cloud_provider: input.cloudProvider,
          compute_size: computeSize,
          host_id: host.id,
          release: release.name,
          parts,
        },
      });
      return toView(row, org.slug, hostFacts(ctx.deps, ref, { ...host, lastSeenAt: now, removedAt: null }, ports));
    }
    throw new Error(`could not find a free project ref after ${REF_ATTEMPTS} attempts`);
  });
  await ctx.deps.hub.kick(view.hostId as string);
  return view;
}

/** The release a create names (400 listing the known ones when unknown), else the default. */
function releaseFor(ctx: AuthedContext, name: string | undefined): ReleaseManifest {
  const releases = ctx.deps.releases;
  const release = releases.get(name ?? releases.defaultRelease);
  if (release) return release;
  if (name === undefined) throw new Error(`default release ${releases.defaultRelease} is missing`);
  throw badRequest(`Unknown release ${JSON.stringify(name)}; known releases: ${releases.names().join(", ")}`);
}

/** The parts a create asks for, checked against the release (400 naming the valid ones). */
function partsFor(release: ReleaseManifest, asked: string[] | undefined): string[] {
  if (asked === undefined) return effectiveParts(release);
  const has = releaseParts(release);
  const unknown = asked.filter((p) => !(has as string[]).includes(p));
  if (unknown.length > 0) {
    throw badRequest(
      `Release ${release.name} has no part ${unknown.join(", ")}; its optional parts: ${has.join(", ") || "none"}`,
    );
  }
  return effectiveParts(release, asked);
}

const partsNote = (release: ReleaseManifest, parts: string[]) =>
  releaseParts(release).length > 0 ? ` with the parts ${parts.join(", ") || "(none)"}` : "";

/** A new project's size when none is asked for: the release's minimum, at least the default size. */
export function defaultComputeSize(
  release: Parameters<typeof minimumComputeSize>[0],
  parts?: readonly string[] | null,
): ComputeSize {
  const min = minimumComputeSize(release, parts) ?? DEFAULT_COMPUTE_SIZE;
  return COMPUTE_SIZES.indexOf(min) > COMPUTE_SIZES.indexOf(DEFAULT_COMPUTE_SIZE) ? min : DEFAULT_COMPUTE_SIZE;
}

/** The enrolled region `value` names (a code or Studio's label for it), or a 400 that lists them. */
async function resolveRegion(ctx: AuthedContext, value: string): Promise<string> {
  const regions = await enrolledRegions(ctx.db);
  if (regions.length === 0) {
    throw badRequest(
      `Unknown region ${JSON.stringify(value)}: no host is enrolled yet (the instance admin enrolls hosts with a join token)`,
    );
  }
  const match = matchRegion(value, regions);
  if (match.kind === "region") return match.code;
  const valid = regions.map((r) => (regionLabel(r) === r ? r : `${regionLabel(r)} (${r})`)).join(", ");
  if (match.kind === "not-enrolled") {
    throw badRequest(
      `Region ${JSON.stringify(match.label)} (${match.code}) has no host in this fleet; choose one of: ${valid}`,
    );
  }
  throw badRequest(`Unknown region ${JSON.stringify(value)}; valid regions: ${valid}`);
}
