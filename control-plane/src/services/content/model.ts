import { eq } from "drizzle-orm";
import { z } from "zod";
import { profiles, type userContent, type userContentFolders } from "../../db/schema.js";
import type { AuthedContext } from "../../deps.js";
import { badRequest } from "../../errors.js";
import { type ProjectMembership, projectForMember } from "../organizations/access.js";
import { getOrCreateProfile } from "../profiles/profile.js";
import type { ContentType, ContentViewer, Visibility } from "./rules.js";

export type ContentRow = typeof userContent.$inferSelect;
export type FolderRow = typeof userContentFolders.$inferSelect;

/** One saved item as Studio reads it (GetUserContentResponse's item; a superset of the by-id answer). */
export interface ContentItem {
  id: string;
  project_id: number;
  owner_id: number;
  type: ContentType;
  visibility: Visibility;
  name: string;
  description: string;
  content: Record<string, unknown>;
  favorite: boolean;
  folder_id: string | null;
  inserted_at: string;
  updated_at: string;
  last_updated_by?: number;
  owner: { id: number; username: string };
  updated_by: { id: number; username: string };
}

/** An item in a folder listing: everything but the (possibly large) `content`, as Studio's folder type. */
export type ContentSummary = Omit<ContentItem, "content" | "owner" | "updated_by">;

export interface Folder {
  id: string;
  name: string;
  owner_id: number;
  parent_id: string | null;
  project_id: number;
}

export interface ContentRowWithPeople {
  row: ContentRow;
  ownerName: string;
  updaterName: string | null;
}

export function toItem({ row, ownerName, updaterName }: ContentRowWithPeople): ContentItem {
  const updater =
    row.updatedBy !== null && updaterName !== null
      ? { id: row.updatedBy, username: updaterName }
      : { id: row.ownerId, username: ownerName };
  return {
    ...toSummary(row),
    content: row.content,
    owner: { id: row.ownerId, username: ownerName },
    updated_by: updater,
  };
}

export function toSummary(row: ContentRow): ContentSummary {
  return {
    id: row.id,
    project_id: row.projectId,
    owner_id: row.ownerId,
    type: row.type,
    visibility: row.visibility,
    name: row.name,
    description: row.description,
    favorite: row.favorite,
    folder_id: row.folderId,
    inserted_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    ...(row.updatedBy !== null ? { last_updated_by: row.updatedBy } : {}),
  };
}

export function toFolder(row: FolderRow): Folder {
  return { id: row.id, name: row.name, owner_id: row.ownerId, parent_id: row.parentId, project_id: row.projectId };
}

export interface ContentAccess extends ProjectMembership {
  viewer: ContentViewer;
}

/**
 * The project as the caller sees it (404 for a non-member, before anything else happens) and
 * the caller's profile id. Writes create the profile when it is missing (owner ids are profile
 * ids, as in Studio); reads never write, and a caller without a profile simply owns nothing.
 */
export async function contentAccess(ctx: AuthedContext, ref: string, mode: "read" | "write"): Promise<ContentAccess> {
  const membership = await projectForMember(ctx, ref, "projects.read");
  let profileId: number;
  if (mode === "write") {
    profileId = (await getOrCreateProfile(ctx)).id;
  } else {
    const [row] = await ctx.db
      .select({ id: profiles.id })
      .from(profiles)
      .where(eq(profiles.userId, ctx.actor.userId))
      .limit(1);
    profileId = row?.id ?? -1;
  }
  return { ...membership, viewer: { role: membership.role, profileId } };
}

// ---- listing: sort and keyset cursor ----

export const SORT_FIELDS = ["name", "inserted_at"] as const;
export type SortField = (typeof SORT_FIELDS)[number];
export type SortOrder = "asc" | "desc";

export interface ListOptions {
  limit: number;
  sortBy: SortField;
  sortOrder: SortOrder;
  cursor?: string;
  name?: string;
  type?: ContentType;
  visibility?: readonly string[];
  favorite?: boolean;
}

const CursorPayload = z.object({
  s: z.enum(SORT_FIELDS),
  o: z.enum(["asc", "desc"]),
  v: z.string().max(2048),
  id: z.uuid(),
});
export type Cursor = z.infer<typeof CursorPayload>;

/** An opaque cursor: the sort key and id of the last item of a page. */
export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString("base64url");
}

export function decodeCursor(raw: string, sortBy: SortField, sortOrder: SortOrder): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
  } catch {
    throw badRequest("query.cursor: not a cursor this server issued");
  }
  const result = CursorPayload.safeParse(parsed);
  if (!result.success) throw badRequest("query.cursor: not a cursor this server issued");
  if (result.data.s !== sortBy || result.data.o !== sortOrder) {
    throw badRequest("query.cursor: the cursor belongs to another sort order; start again without it");
  }
  if (sortBy === "inserted_at" && Number.isNaN(Date.parse(result.data.v))) {
    throw badRequest("query.cursor: not a cursor this server issued");
  }
  return result.data;
}

export function cursorAfter(row: ContentRow, sortBy: SortField, sortOrder: SortOrder): string {
  return encodeCursor({
    s: sortBy,
    o: sortOrder,
    v: sortBy === "name" ? row.name : row.createdAt.toISOString(),
    id: row.id,
  });
}

/** `%`, `_` and `\` are literal in a name search. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}
