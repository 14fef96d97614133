import type { ProjectStatus } from "@supamanager/shared";
import { and, asc, count, desc, eq, ilike, inArray, ne, or, type SQL, sql } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { prepared } from "../../db/prepared.js";
import { hosts, organizations, orgMembers, projects } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { isOnline } from "../fleet/status.js";
import { assertCan, orgForMember } from "../organizations/access.js";
import { effectiveStatusSql, hostFactColumns, listHostFacts } from "./host-facts.js";
import { PROJECT_LIST_ITEM_COLUMNS, type ProjectListItem, type ProjectView, toListItem, toView } from "./model.js";

export const PROJECT_SORTS = ["name_asc", "name_desc", "created_asc", "created_desc"] as const;
export type ProjectSort = (typeof PROJECT_SORTS)[number];

export interface ListProjectsInput {
  limit: number;
  offset: number;
  /** Case-insensitive substring of the name or the ref, matched literally (no wildcards). */
  search?: string | undefined;
  sort: ProjectSort;
  /** Only these statuses; empty → every status but REMOVED. */
  statuses: ProjectStatus[];
}

export interface ProjectPage<P = ProjectView> {
  count: number;
  limit: number;
  offset: number;
  projects: P[];
}

const hostColumns = hostFactColumns;

/** A list item's columns (model.ts), as a drizzle selection. */
const listItemColumns = Object.fromEntries(PROJECT_LIST_ITEM_COLUMNS.map((k) => [k, projects[k]])) as {
  [K in (typeof PROJECT_LIST_ITEM_COLUMNS)[number]]: (typeof projects)[K];
};

/** What a list item needs of its host: whether it is online (a left join: null when unplaced). */
const listHostColumns = { id: hosts.id, lastSeenAt: hosts.lastSeenAt, removedAt: hosts.removedAt };

/** Make `%`, `_` and the escape character itself match literally in an (I)LIKE pattern. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (m) => `\\${m}`);
}

function filters(ctx: AuthedContext, input: ListProjectsInput): SQL[] {
  // REMOVED projects are gone for every caller, whatever statuses were asked for.
  const conds: SQL[] = [ne(projects.status, "REMOVED")];
  // Filter on the status readers see (UNKNOWN on an offline host), not the stored one.
  if (input.statuses.length > 0) conds.push(inArray(effectiveStatusSql(ctx), input.statuses));
  if (input.search) {
    const pattern = `%${escapeLike(input.search)}%`;
    const match = or(ilike(projects.name, pattern), ilike(projects.ref, pattern));
    if (match) conds.push(match);
  }
  return conds;
}

/** Ties broken by id so that pages never overlap or skip a row. */
function ordering(sort: ProjectSort): SQL[] {
  const lowerName = sql`lower(${projects.name})`;
  switch (sort) {
    case "name_asc":
      return [asc(lowerName), asc(projects.id)];
    case "name_desc":
      return [desc(lowerName), desc(projects.id)];
    case "created_asc":
      return [asc(projects.createdAt), asc(projects.id)];
    case "created_desc":
      return [desc(projects.createdAt), desc(projects.id)];
  }
}

/** The exact count of the filter, beside each row of the page (computed before LIMIT/OFFSET). */
const total = sql<string>`count(*) over ()`;

/**
 * One organization's projects, for any member of it (non-member → 404). ONE statement in the
 * common case (ADR 0033): the page joined with the caller's membership, with the exact count of
 * the filter as a window beside each row. An empty page says nothing about membership or the
 * count, so then the membership check and the count run on their own.
 */
export async function listOrgProjects(
  ctx: AuthedContext,
  slug: string,
  input: ListProjectsInput,
): Promise<ProjectPage<ProjectListItem>> {
  const hostJoin = eq(hosts.id, projects.hostId);
  // Studio's page (no search, no status filter) is one statement per sort order, built once
  // (ADR 0042); a filtered page is built per request.
  const plain = !input.search && input.statuses.length === 0;
  const build = (db: Executor, where: SQL | undefined, userId: string | ReturnType<typeof sql.placeholder>) =>
    db
      .select({ project: listItemColumns, host: listHostColumns, role: orgMembers.role, total })
      .from(projects)
      .innerJoin(organizations, eq(organizations.id, projects.orgId))
      .innerJoin(orgMembers, and(eq(orgMembers.orgId, projects.orgId), eq(orgMembers.userId, userId)))
      .leftJoin(hosts, hostJoin)
      .where(where)
      .orderBy(...ordering(input.sort));
  const rows = plain
    ? await prepared(ctx.db, `sm_org_project_items_${input.sort}`, (db, name) =>
        build(
          db,
          and(eq(organizations.slug, sql.placeholder("slug")), ne(projects.status, "REMOVED")),
          sql.placeholder("userId"),
        )
          .limit(sql.placeholder("limit"))
          .offset(sql.placeholder("offset"))
          .prepare(name),
      ).execute({ slug, userId: ctx.actor.userId, limit: input.limit, offset: input.offset })
    : await build(ctx.db, and(eq(organizations.slug, slug), ...filters(ctx, input)), ctx.actor.userId)
        .limit(input.limit)
        .offset(input.offset);
  const first = rows[0];
  if (!first) {
    const { org } = await orgForMember(ctx, slug, "projects.read");
    const counted =
      input.offset === 0
        ? 0
        : ((
            await ctx.db
              .select({ n: count() })
              .from(projects)
              .leftJoin(hosts, hostJoin)
              .where(and(eq(projects.orgId, org.id), ...filters(ctx, input)))
          )[0]?.n ?? 0);
    return { count: counted, limit: input.limit, offset: input.offset, projects: [] };
  }
  assertCan(first.role, "projects.read");
  return {
    count: Number(first.total),
    limit: input.limit,
    offset: input.offset,
    projects: rows.map((r) =>
      toListItem(
        r.project,
        r.host === null ? undefined : r.host.removedAt === null && isOnline(r.host.lastSeenAt, ctx.deps),
      ),
    ),
  };
}

/** Projects of every organization the caller belongs to: one statement (page + window count) unless the page is empty. */
export async function listMemberProjects(ctx: AuthedContext, input: ListProjectsInput): Promise<ProjectPage> {
  const member = and(eq(orgMembers.orgId, projects.orgId), eq(orgMembers.userId, ctx.actor.userId));
  const where = and(...filters(ctx, input));
  const hostJoin = eq(hosts.id, projects.hostId);
  const rows = await ctx.db
    .select({ project: projects, slug: organizations.slug, host: hostColumns, total })
    .from(projects)
    .innerJoin(orgMembers, member)
    .leftJoin(hosts, hostJoin)
    .innerJoin(organizations, eq(organizations.id, projects.orgId))
    .where(where)
    .orderBy(...ordering(input.sort))
    .limit(input.limit)
    .offset(input.offset);
  let counted = rows[0] ? Number(rows[0].total) : 0;
  if (!rows[0] && input.offset > 0) {
    const [c] = await ctx.db
      .select({ n: count() })
      .from(projects)
      .innerJoin(orgMembers, member)
      .leftJoin(hosts, hostJoin)
      .where(where);
    counted = c?.n ?? 0;
  }
  return {
    count: counted,
    limit: input.limit,
    offset: input.offset,
    projects: rows.map((r) => toView(r.project, r.slug, listHostFacts(ctx, r.project.ref, r.host))),
  };
}
