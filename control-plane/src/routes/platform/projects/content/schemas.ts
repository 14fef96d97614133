import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../../deps.js";
import { ApiError, zodMessage } from "../../../../errors.js";
import { authed } from "../../../../lib/context.js";
import { param } from "../../../../lib/validate.js";
import {
  type ContentAccess,
  contentAccess,
  type ListOptions,
  SORT_FIELDS,
} from "../../../../services/content/model.js";
import { CONTENT_TYPES } from "../../../../services/content/rules.js";
import { RefParam } from "../schemas.js";

/** A snippet's `content` object, serialized, may be at most this large (the request body limit applies too). */
export const MAX_CONTENT_BYTES = 1024 * 1024;
/** At most this many ids in one bulk delete. */
export const MAX_IDS = 200;

/**
 * The project and the caller's standing in it, resolved BEFORE any input is validated, so a
 * non-member learns nothing (not even which inputs are wrong): another tenant's project is a 404.
 */
export function accessOf(c: Context<AppEnv>, mode: "read" | "write"): Promise<ContentAccess> {
  return contentAccess(authed(c), param(c, "ref", RefParam, "Project"), mode);
}

/** `:id` of an item or folder; anything but a UUID is simply not found. */
export const idParam = (c: Context<AppEnv>, what: "Content" | "Folder"): string => param(c, "id", z.uuid(), what);

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, `${what} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`));

const optionalText = (what: string, max: number) =>
  z
    .string()
    .max(max, `${what} must be at most ${max} characters`)
    .optional()
    .transform((s) => (s === undefined || s.trim() === "" ? undefined : s.trim()));

const VISIBILITY_FILTERS = ["user", "project", "org", "public"] as const;

/**
 * Query of the list, folder and count calls (Studio's `cursor, limit, name, sort_by, sort_order,
 * type, visibility, favorite`). `visibility` may be a comma-separated list. Unknown keys are ignored.
 */
export const ListContentQuery = z
  .object({
    cursor: z.string().max(4096, "cursor is too long").optional(),
    limit: wholeNumber("limit", 1, 1000).default(100),
    name: optionalText("name", 256),
    sort_by: z.enum(SORT_FIELDS, { error: "sort_by must be name or inserted_at" }).optional(),
    sort_order: z.enum(["asc", "desc"], { error: "sort_order must be asc or desc" }).optional(),
    type: z.enum(CONTENT_TYPES, { error: "type must be sql, report or log_sql" }).optional(),
    visibility: z
      .string()
      .optional()
      .transform((s) =>
        s === undefined
          ? undefined
          : s
              .split(",")
              .map((x) => x.trim())
              .filter((x) => x.length > 0),
      )
      .pipe(
        z
          .array(z.enum(VISIBILITY_FILTERS, { error: "visibility must be user or project" }))
          .max(4)
          .optional(),
      ),
    favorite: z
      .enum(["true", "false"], { error: "favorite must be true or false" })
      .optional()
      .transform((s) => (s === undefined ? undefined : s === "true")),
  })
  .transform((q): ListOptions => {
    const sortBy = q.sort_by ?? "inserted_at";
    return {
      limit: q.limit,
      sortBy,
      // Studio's own pairing: names A→Z, newest first.
      sortOrder: q.sort_order ?? (sortBy === "name" ? "asc" : "desc"),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      ...(q.name !== undefined ? { name: q.name } : {}),
      ...(q.type !== undefined ? { type: q.type } : {}),
      ...(q.visibility !== undefined && q.visibility.length > 0 ? { visibility: q.visibility } : {}),
      ...(q.favorite !== undefined ? { favorite: q.favorite } : {}),
    };
  });

const Name = (what: string) =>
  z
    .string({ error: `${what} is required` })
    .trim()
    .min(1, `${what} must not be empty`)
    .max(256, `${what} must be at most 256 characters`);

/** Studio's UpsertContentBody. `owner_id` is accepted and ignored: the owner is whoever created the item. */
export const UpsertContentBody = z
  .object({
    id: z.uuid("id must be a UUID").optional(),
    name: Name("name"),
    type: z.enum(CONTENT_TYPES, { error: "type must be sql, report or log_sql" }),
    visibility: z.enum(["user", "project"], {
      error: "visibility must be user or project (SupaManager has no org-wide or public content)",
    }),
    description: z
      .string()
      .max(10_000, "description must be at most 10000 characters")
      .nullish()
      .transform((s) => s ?? undefined),
    content: z.record(z.string(), z.unknown(), { error: "content must be an object" }).optional(),
    favorite: z.boolean({ error: "favorite must be a boolean" }).optional(),
    folder_id: z.uuid("folder_id must be a UUID or null").nullable().optional(),
    project_id: z.number({ error: "project_id must be a number" }).int().positive().optional(),
    owner_id: z.number({ error: "owner_id must be a number" }).int().optional(),
  })
  .superRefine((body, ctx) => {
    if (body.content === undefined) return;
    const bytes = Buffer.byteLength(JSON.stringify(body.content), "utf8");
    if (bytes > MAX_CONTENT_BYTES) {
      ctx.addIssue({
        code: "custom",
        path: ["content"],
        message: `content is ${bytes} bytes; at most ${MAX_CONTENT_BYTES} bytes are stored per item`,
      });
    }
    if (body.type === "sql" && "sql" in body.content && typeof body.content.sql !== "string") {
      ctx.addIssue({ code: "custom", path: ["content", "sql"], message: "content.sql must be a string" });
    }
  });
export type UpsertContentBody = z.output<typeof UpsertContentBody>;

/** Studio's typed body says `parent_id`; its code sends `parentId`. Both are accepted. */
const ParentId = {
  parent_id: z.uuid("parent_id must be a UUID or null").nullish(),
  parentId: z.uuid("parentId must be a UUID").nullish(),
};

export const CreateFolderBody = z
  .object({ name: Name("name"), ...ParentId })
  .transform((b) => ({ name: b.name, parentId: b.parent_id ?? b.parentId ?? null }));

export const UpdateFolderBody = z
  .object({ name: Name("name").optional(), ...ParentId })
  .transform((b) => {
    const parent = b.parent_id !== undefined ? b.parent_id : b.parentId;
    return {
      ...(b.name !== undefined ? { name: b.name } : {}),
      ...(parent !== undefined ? { parentId: parent } : {}),
    };
  })
  .refine((b) => b.name !== undefined || b.parentId !== undefined, "send name and/or parent_id");

/**
 * `?ids=a&ids=b` (how Studio's fetch client sends arrays) or `?ids=a,b`: 1–200 UUIDs, de-duplicated.
 */
export function idsQuery(c: Context<AppEnv>): string[] {
  const raw = [...(c.req.queries("ids") ?? []), ...(c.req.queries("ids[]") ?? [])]
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
  const result = z
    .array(z.uuid("each id must be a UUID"))
    .min(1, "ids is required: ?ids=<uuid>&ids=<uuid>")
    .max(MAX_IDS, `at most ${MAX_IDS} ids at once`)
    .safeParse(raw);
  if (!result.success) throw new ApiError("validation_failed", zodMessage(result.error, "query.ids"));
  return [...new Set(result.data)];
}
