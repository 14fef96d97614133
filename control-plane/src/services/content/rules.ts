import type { OrgRole } from "@supamanager/shared";

/**
 * Who may see and change saved content (SQL snippets, reports, log queries). Pure functions, so
 * the whole matrix is tested table-driven in rules.test.ts and documented in docs/api.md.
 *
 * - `user` visibility: the row exists only for its owner. Anyone else is told "not found".
 * - `project` visibility: every member of the project's organization reads it. Its owner
 *   (unless read-only) and organization Owners/Administrators may change or delete it.
 * - Read-only members keep private SQL snippets only (Supabase's role matrix; Studio's permission
 *   rows in services/permissions/permissions.ts grant them `user_content` writes for type `sql`).
 */

export const CONTENT_TYPES = ["sql", "report", "log_sql"] as const;
export type ContentType = (typeof CONTENT_TYPES)[number];
/** What we store. Studio's types also name `org` and `public`, which SupaManager does not offer. */
export const STORED_VISIBILITIES = ["user", "project"] as const;
export type Visibility = (typeof STORED_VISIBILITIES)[number];

/** The caller as the rules see them: their role in the project's organization and their profile id. */
export interface ContentViewer {
  role: OrgRole;
  /** Studio's numeric profile id; -1 for an account that has no profile yet (it owns nothing). */
  profileId: number;
}

export interface ContentFacts {
  ownerId: number;
  visibility: Visibility;
  type: ContentType;
}

const MANAGES_SHARED: ReadonlySet<OrgRole> = new Set(["owner", "administrator"]);

export function canRead(row: Pick<ContentFacts, "ownerId" | "visibility">, viewer: ContentViewer): boolean {
  return row.visibility === "project" || row.ownerId === viewer.profileId;
}

/**
 * Why `viewer` may not hold content in this state (create, or the state an update leads to),
 * or null when they may. Applies to the owner's own rows.
 */
export function holdDenial(next: Pick<ContentFacts, "visibility" | "type">, viewer: ContentViewer): string | null {
  if (viewer.role !== "read_only") return null;
  if (next.type !== "sql") return "Read-only members can only save SQL snippets";
  if (next.visibility !== "user") return "Read-only members can only keep private snippets; they cannot share them";
  return null;
}

/**
 * Why `viewer` may not change or delete an existing row they can read, or null when they may.
 * A row they cannot read is "not found" before this is asked.
 */
export function modifyDenial(row: ContentFacts, viewer: ContentViewer): string | null {
  const own = row.ownerId === viewer.profileId;
  // Anyone may change or delete their own private rows; what an update leads to is holdDenial's call.
  if (row.visibility === "user") return own ? null : "Only the owner may change a private snippet";
  if (MANAGES_SHARED.has(viewer.role)) return null;
  if (!own) return "Only its owner or an organization Owner or Administrator may change a shared snippet";
  if (viewer.role === "read_only") return "Read-only members cannot change shared snippets";
  return null;
}
