import { and, eq, isNotNull, ne, sql } from "drizzle-orm";
import type { Config } from "../../config.js";
import type { Executor } from "../../db/index.js";
import { projects } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";

/**
 * Issue 15: "changing the domain re-renders the affected settings". A project's stack carries
 * URLs built from the projects and tunnel domains (API_EXTERNAL_URL, SUPABASE_PUBLIC_URL, …,
 * see projectUrl), and agents re-render only for a new spec version. So every apply records the
 * domains it was rendered for (`projects.url_domains`), and a control plane that starts with other
 * domains bumps the spec version of each project rendered for the old ones: its agent gets an
 * apply with the new URLs (Compose recreates only the services whose environment changed).
 *
 * Checked once per process (every replica's first maintenance run, and at Node start-up), not on
 * every tick: while a rolling restart runs replicas with old and new domains side by side, a
 * replica still on the old ones renders them again, and the new stamp is bumped once more when
 * that replica restarts with the new configuration. Replicas must end up with the same domains.
 */
export function projectUrlDomains(config: Pick<Config, "projects">): string {
  const { domain, tunnelDomain } = config.projects;
  return `projects=${domain ?? ""};tunnel=${tunnelDomain ?? ""}`;
}

/** Record, at render time, the domains a project's stack was rendered for (a write only on change). */
export async function stampUrlDomains(
  db: Executor,
  config: Pick<Config, "projects">,
  p: { id: number; urlDomains: string | null },
): Promise<void> {
  const current = projectUrlDomains(config);
  if (p.urlDomains === current) return;
  await db.update(projects).set({ urlDomains: current }).where(eq(projects.id, p.id));
}

/**
 * Bump the spec version of every live project whose stack was rendered for other domains, and
 * wake its host. Projects never stamped (rendered before the column existed) are left alone: they
 * are stamped by their next apply. Returns the refs bumped.
 */
export async function rerenderForDomainChange(deps: AppDeps): Promise<string[]> {
  const current = projectUrlDomains(deps.config);
  const bumped = await deps.database.db
    .update(projects)
    .set({
      specVersion: sql`${projects.specVersion} + 1`,
      urlDomains: current,
      updatedAt: new Date(deps.clock.now()),
    })
    .where(
      and(
        isNotNull(projects.urlDomains),
        ne(projects.urlDomains, current),
        ne(projects.status, "REMOVED"),
        ne(projects.desiredState, "deleted"),
      ),
    )
    .returning({ ref: projects.ref, hostId: projects.hostId });
  if (bumped.length > 0) {
    deps.logger.info("projects domain changed: re-rendering the projects' stacks", {
      projects: bumped.length,
      domains: current,
    });
    for (const hostId of new Set(bumped.map((b) => b.hostId))) if (hostId) await deps.hub.kick(hostId);
  }
  return bumped.map((b) => b.ref);
}

const checked = new WeakMap<AppDeps, Promise<unknown>>();

/** rerenderForDomainChange, once per process and deps (see the module comment). */
export function rerenderForDomainChangeOnce(deps: AppDeps): Promise<unknown> {
  let done = checked.get(deps);
  if (!done) {
    done = rerenderForDomainChange(deps).catch((err: unknown) => {
      checked.delete(deps); // try again on the next maintenance run
      deps.logger.error("could not check the projects domain", { err });
    });
    checked.set(deps, done);
  }
  return done;
}
