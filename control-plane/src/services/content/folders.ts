import { and, asc, count, eq, inArray } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { userContent, userContentFolders } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest, conflict, notFound } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { assertOwnFolder, inFolder, pageOfContent } from "./content.js";
import {
  type ContentAccess,
  type ContentSummary,
  type Folder,
  type FolderRow,
  type ListOptions,
  toFolder,
  toSummary,
} from "./model.js";

/** Folders are cheap rows, but not free: a generous cap per member and project. */
export const MAX_FOLDERS_PER_OWNER = 1000;

export interface FolderListing {
  data: { folders: Folder[]; contents: ContentSummary[] };
  cursor?: string;
}

/** The caller's folders in this project (folders are private, so these are all they can see). */
async function ownFolders(db: Executor, access: ContentAccess): Promise<FolderRow[]> {
  return db
    .select()
    .from(userContentFolders)
    .where(
      and(eq(userContentFolders.projectId, access.project.id), eq(userContentFolders.ownerId, access.viewer.profileId)),
    )
    .orderBy(asc(userContentFolders.name), asc(userContentFolders.id));
}

/**
 * GET /content/folders (folderId null: the root) and GET /content/folders/:id. Sub-folders come
 * with the first page; `contents` (without their `content`, as Studio's folder type) are paged.
 * At the root, shared items are listed too unless `visibility` narrows it (they are never in a folder).
 */
export async function listFolder(
  ctx: AuthedContext,
  access: ContentAccess,
  folderId: string | null,
  opts: ListOptions,
): Promise<FolderListing> {
  const mine = await ownFolders(ctx.db, access);
  if (folderId !== null && !mine.some((f) => f.id === folderId)) throw notFound(`Folder ${folderId} not found`);
  const wantsPrivate = !opts.visibility || opts.visibility.includes("user");
  const folders =
    opts.cursor || !wantsPrivate ? [] : mine.filter((f) => f.parentId === folderId).map((f) => toFolder(f));
  const { rows, cursor } = await pageOfContent(ctx.db, access, opts, [inFolder(folderId)]);
  return { data: { folders, contents: rows.map((r) => toSummary(r.row)) }, ...(cursor ? { cursor } : {}) };
}

/** POST /content/folders {name, parent_id?} → the new folder. Any member may keep private folders. */
export async function createFolder(
  ctx: AuthedContext,
  access: ContentAccess,
  input: { name: string; parentId: string | null },
): Promise<Folder> {
  const { project, org, viewer } = access;
  return ctx.db.transaction(async (tx) => {
    if (input.parentId !== null) await assertOwnFolder(tx, project.id, viewer.profileId, input.parentId);
    const [held] = await tx
      .select({ n: count() })
      .from(userContentFolders)
      .where(and(eq(userContentFolders.projectId, project.id), eq(userContentFolders.ownerId, viewer.profileId)));
    if ((held?.n ?? 0) >= MAX_FOLDERS_PER_OWNER) {
      throw conflict(`You already have ${MAX_FOLDERS_PER_OWNER} folders in this project; delete some first`);
    }
    const now = new Date(ctx.deps.clock.now());
    const [row] = await tx
      .insert(userContentFolders)
      .values({
        projectId: project.id,
        ownerId: viewer.profileId,
        parentId: input.parentId,
        name: input.name,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    if (!row) throw new Error("folder insert returned nothing");
    await recordAudit(tx, ctx.meta, {
      action: "content.folder.create",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: access.project.ref,
      target: row.id,
      details: { name: row.name, parent_id: row.parentId },
    });
    return toFolder(row);
  });
}

/** PATCH /content/folders/:id {name?, parent_id?} — rename or move; a folder cannot move into itself. */
export async function updateFolder(
  ctx: AuthedContext,
  access: ContentAccess,
  id: string,
  input: { name?: string; parentId?: string | null },
): Promise<Folder> {
  const { org } = access;
  return ctx.db.transaction(async (tx) => {
    const mine = await ownFolders(tx, access);
    const byId = new Map(mine.map((f) => [f.id, f]));
    const folder = byId.get(id);
    if (!folder) throw notFound(`Folder ${id} not found`);
    if (input.parentId !== undefined && input.parentId !== null) {
      if (!byId.has(input.parentId)) throw notFound(`Folder ${input.parentId} not found`);
      // Walk up from the new parent: meeting the folder itself would make a cycle.
      for (let at: string | null = input.parentId; at !== null; at = byId.get(at)?.parentId ?? null) {
        if (at === id)
          throw badRequest("body.parent_id: a folder cannot be moved into itself or one of its sub-folders");
      }
    }
    const [row] = await tx
      .update(userContentFolders)
      .set({
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.parentId !== undefined ? { parentId: input.parentId } : {}),
        updatedAt: new Date(ctx.deps.clock.now()),
      })
      .where(eq(userContentFolders.id, id))
      .returning();
    if (!row) throw notFound(`Folder ${id} not found`);
    await recordAudit(tx, ctx.meta, {
      action: "content.folder.update",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: access.project.ref,
      target: id,
      details: {
        from: { name: folder.name, parent_id: folder.parentId },
        to: { name: row.name, parent_id: row.parentId },
      },
    });
    return toFolder(row);
  });
}

/**
 * DELETE /content/folders?ids=… — all or nothing: each must be the caller's folder. Sub-folders
 * and the (private) items inside all of them are deleted with it.
 */
export async function deleteFolders(
  ctx: AuthedContext,
  access: ContentAccess,
  ids: string[],
): Promise<{ id: string }[]> {
  const { org, project } = access;
  return ctx.db.transaction(async (tx) => {
    const mine = await ownFolders(tx, access);
    const known = new Set(mine.map((f) => f.id));
    for (const id of ids) if (!known.has(id)) throw notFound(`Folder ${id} not found`);
    const doomed = new Set(ids);
    // Sub-folders: keep adding children of doomed folders until nothing changes.
    for (let grew = true; grew; ) {
      grew = false;
      for (const f of mine) {
        if (!doomed.has(f.id) && f.parentId !== null && doomed.has(f.parentId)) {
          doomed.add(f.id);
          grew = true;
        }
      }
    }
    const folderIds = [...doomed];
    const removed = await tx
      .delete(userContent)
      .where(and(eq(userContent.projectId, project.id), inArray(userContent.folderId, folderIds)))
      .returning({ id: userContent.id });
    await tx.delete(userContentFolders).where(inArray(userContentFolders.id, folderIds));
    await recordAudit(tx, ctx.meta, {
      action: "content.folder.delete",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: access.project.ref,
      target: ids.join(","),
      details: { folders: folderIds, content_deleted: removed.map((r) => r.id) },
    });
    return ids.map((id) => ({ id }));
  });
}
