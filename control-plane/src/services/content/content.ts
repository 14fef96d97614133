import { and, asc, desc, eq, gt, ilike, inArray, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { Executor } from "../../db/index.js";
import { profiles, userContent, userContentFolders } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest, conflict, forbidden, notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import {
  type ContentAccess,
  type ContentItem,
  type ContentRow,
  type ContentRowWithPeople,
  cursorAfter,
  decodeCursor,
  type ListOptions,
  likePattern,
  toItem,
} from "./model.js";
import { type ContentType, canRead, holdDenial, modifyDenial, type Visibility } from "./rules.js";

const updater = alias(profiles, "content_updater");

function selectWithPeople(db: Executor) {
  return db
    .select({ row: userContent, ownerName: profiles.username, updaterName: updater.username })
    .from(userContent)
    .innerJoin(profiles, eq(profiles.id, userContent.ownerId))
    .leftJoin(updater, eq(updater.id, userContent.updatedBy));
}

/** Rows of the project the viewer may read: every shared row, and their own private ones. */
export function visibleIn(access: ContentAccess): SQL {
  return and(
    eq(userContent.projectId, access.project.id),
    or(eq(userContent.visibility, "project"), eq(userContent.ownerId, access.viewer.profileId)),
  ) as SQL;
}

/** The filters Studio's list and count queries send. */
export function filtersOf(opts: Pick<ListOptions, "name" | "type" | "visibility" | "favorite">): SQL[] {
  const where: SQL[] = [];
  if (opts.type) where.push(eq(userContent.type, opts.type));
  if (opts.name) where.push(ilike(userContent.name, likePattern(opts.name)));
  if (opts.visibility) where.push(inArray(userContent.visibility, opts.visibility as Visibility[]));
  if (opts.favorite !== undefined) where.push(eq(userContent.favorite, opts.favorite));
  return where;
}

/**
 * One page of visible content, in a stable order (sort key, then id), continuing after `cursor`.
 * Reads one row more than asked to know whether a next page exists.
 */
export async function pageOfContent(
  db: Executor,
  access: ContentAccess,
  opts: ListOptions,
  extra: SQL[] = [],
): Promise<{ rows: ContentRowWithPeople[]; cursor?: string }> {
  const where = [visibleIn(access), ...filtersOf(opts), ...extra];
  const column = opts.sortBy === "name" ? userContent.name : userContent.createdAt;
  const after = opts.sortOrder === "asc" ? gt : lt;
  if (opts.cursor) {
    const c = decodeCursor(opts.cursor, opts.sortBy, opts.sortOrder);
    const value = opts.sortBy === "name" ? c.v : new Date(c.v);
    where.push(or(after(column, value), and(eq(column, value), after(userContent.id, c.id))) as SQL);
  }
  const dir = opts.sortOrder === "asc" ? asc : desc;
  const rows = await selectWithPeople(db)
    .where(and(...where))
    .orderBy(dir(column), dir(userContent.id))
    .limit(opts.limit + 1);
  const more = rows.length > opts.limit;
  const page = more ? rows.slice(0, opts.limit) : rows;
  const last = page.at(-1);
  return more && last ? { rows: page, cursor: cursorAfter(last.row, opts.sortBy, opts.sortOrder) } : { rows: page };
}

/** GET /content: the caller's visible content, one page at a time. */
export async function listContent(
  ctx: AuthedContext,
  access: ContentAccess,
  opts: ListOptions,
): Promise<{ data: ContentItem[]; cursor?: string }> {
  const { rows, cursor } = await pageOfContent(ctx.db, access, opts);
  return { data: rows.map(toItem), ...(cursor ? { cursor } : {}) };
}

export interface ContentCounts {
  count: number;
  favorites: number;
  private: number;
  shared: number;
}

/** GET /content/count: totals of visible content (Studio's V2 counts, plus the older `count`). */
export async function countContent(
  ctx: AuthedContext,
  access: ContentAccess,
  filters: Pick<ListOptions, "name" | "type" | "visibility" | "favorite">,
): Promise<ContentCounts> {
  const [row] = await ctx.db
    .select({
      count: sql<number>`count(*)::int`,
      favorites: sql<number>`(count(*) filter (where ${userContent.favorite}))::int`,
      private: sql<number>`(count(*) filter (where ${userContent.visibility} = 'user'))::int`,
      shared: sql<number>`(count(*) filter (where ${userContent.visibility} = 'project'))::int`,
    })
    .from(userContent)
    .where(and(visibleIn(access), ...filtersOf(filters)));
  return row ?? { count: 0, favorites: 0, private: 0, shared: 0 };
}

/** GET /content/item/:id — a row the caller cannot read is "not found", like one that does not exist. */
export async function getContentItem(ctx: AuthedContext, access: ContentAccess, id: string): Promise<ContentItem> {
  const [row] = await selectWithPeople(ctx.db)
    .where(and(visibleIn(access), eq(userContent.id, id)))
    .limit(1);
  if (!row) throw notFound(`Content ${id} not found`);
  return toItem(row);
}

export interface UpsertContentInput {
  id?: string;
  name: string;
  type: ContentType;
  visibility: Visibility;
  description?: string;
  content?: Record<string, unknown>;
  /** Missing: unchanged on update, false on insert. */
  favorite?: boolean;
  /** Missing: unchanged on update, root on insert. */
  folder_id?: string | null;
  /** When sent, must be this project's id. */
  project_id?: number;
}

/**
 * PUT /content: create the item, or update it when `id` names one the caller can read. The owner
 * is always the creator (a body's `owner_id` is not trusted). Shared items never sit in a folder
 * (folders are private), so sharing moves an item to the root.
 */
export async function upsertContent(
  ctx: AuthedContext,
  access: ContentAccess,
  input: UpsertContentInput,
): Promise<{ item: ContentItem; created: boolean }> {
  const { project, org, viewer } = access;
  if (input.project_id !== undefined && input.project_id !== project.id) {
    throw badRequest(
      `body.project_id: ${input.project_id} is not the id of project ${access.project.ref} (${project.id})`,
    );
  }
  const now = new Date(ctx.deps.clock.now());
  return ctx.db.transaction(async (tx) => {
    const [existing] = input.id
      ? await tx.select().from(userContent).where(eq(userContent.id, input.id)).for("update").limit(1)
      : [];
    let saved: ContentRow;
    let created: boolean;
    if (existing) {
      if (existing.projectId !== project.id || !canRead(existing, viewer))
        throw notFound(`Content ${input.id} not found`);
      if (existing.type !== input.type) {
        throw badRequest(`body.type: an item's type cannot change (it is ${existing.type})`);
      }
      const denial = modifyDenial(existing, viewer) ?? holdDenial(input, viewer);
      if (denial) throw forbidden(denial);
      const folderId =
        input.visibility === "project" ? null : input.folder_id === undefined ? existing.folderId : input.folder_id;
      if (folderId !== null && folderId !== existing.folderId) {
        await assertOwnFolder(tx, project.id, existing.ownerId, folderId);
      }
      const [row] = await tx
        .update(userContent)
        .set({
          name: input.name,
          visibility: input.visibility,
          ...(input.description !== undefined ? { description: input.description } : {}),
          ...(input.content !== undefined ? { content: input.content } : {}),
          ...(input.favorite !== undefined ? { favorite: input.favorite } : {}),
          folderId,
          updatedBy: viewer.profileId,
          updatedAt: now,
        })
        .where(eq(userContent.id, existing.id))
        .returning();
      if (!row) throw notFound(`Content ${input.id} not found`);
      saved = row;
      created = false;
    } else {
      const denial = holdDenial(input, viewer);
      if (denial) throw forbidden(denial);
      const folderId = input.visibility === "project" ? null : (input.folder_id ?? null);
      if (folderId !== null) await assertOwnFolder(tx, project.id, viewer.profileId, folderId);
      const [row] = await tx
        .insert(userContent)
        .values({
          ...(input.id ? { id: input.id } : {}),
          projectId: project.id,
          ownerId: viewer.profileId,
          updatedBy: viewer.profileId,
          folderId,
          type: input.type,
          visibility: input.visibility,
          name: input.name,
          description: input.description ?? "",
          content: input.content ?? {},
          favorite: input.favorite ?? false,
          createdAt: now,
          updatedAt: now,
        })
        .onConflictDoNothing({ target: userContent.id })
        .returning();
      // Only a concurrent insert of the same id gets here (ids are client-generated uuids).
      if (!row) throw conflict(`Content ${input.id} was created concurrently; retry`);
      saved = row;
      created = true;
    }
    await recordAudit(tx, ctx.meta, {
      action: created ? "content.create" : "content.update",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: access.project.ref,
      target: saved.id,
      // Never the content itself: a snippet may hold anything.
      details: { type: saved.type, visibility: saved.visibility, name: saved.name },
    });
    const [withPeople] = await selectWithPeople(tx).where(eq(userContent.id, saved.id)).limit(1);
    if (!withPeople) throw new Error("saved content vanished inside its transaction");
    return { item: toItem(withPeople), created };
  });
}

/** A folder of this project owned by `ownerId`, or a 404 naming it. */
export async function assertOwnFolder(db: Executor, projectId: number, ownerId: number, folderId: string) {
  const [folder] = await db
    .select({ id: userContentFolders.id })
    .from(userContentFolders)
    .where(
      and(
        eq(userContentFolders.id, folderId),
        eq(userContentFolders.projectId, projectId),
        eq(userContentFolders.ownerId, ownerId),
      ),
    )
    .limit(1);
  if (!folder) throw notFound(`Folder ${folderId} not found`);
}

/**
 * DELETE /content?ids=…: all or nothing. An id the caller cannot read is "not found"; one they
 * can read but not change is 403, and nothing is deleted.
 */
export async function deleteContents(
  ctx: AuthedContext,
  access: ContentAccess,
  ids: string[],
): Promise<{ id: string }[]> {
  const { project, org, viewer } = access;
  return ctx.db.transaction(async (tx) => {
    const rows = await tx
      .select()
      .from(userContent)
      .where(and(eq(userContent.projectId, project.id), inArray(userContent.id, ids)))
      .for("update");
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of ids) {
      const row = byId.get(id);
      if (!row || !canRead(row, viewer)) throw notFound(`Content ${id} not found`);
      const denial = modifyDenial(row, viewer);
      if (denial) throw forbidden(denial);
    }
    await tx.delete(userContent).where(and(eq(userContent.projectId, project.id), inArray(userContent.id, ids)));
    await recordAudit(tx, ctx.meta, {
      action: "content.delete",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: access.project.ref,
      target: ids.join(","),
      details: { items: rows.map((r) => ({ id: r.id, type: r.type, visibility: r.visibility, name: r.name })) },
    });
    return ids.map((id) => ({ id }));
  });
}

/** Content directly in a folder (null: the root). */
export function inFolder(folderId: string | null): SQL {
  return folderId === null ? isNull(userContent.folderId) : eq(userContent.folderId, folderId);
}
