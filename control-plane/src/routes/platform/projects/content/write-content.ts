import type { Context } from "hono";
import type { AppEnv } from "../../../../deps.js";
import { authed } from "../../../../lib/context.js";
import { jsonBody } from "../../../../lib/validate.js";
import { deleteContents, upsertContent } from "../../../../services/content/content.js";
import { accessOf, idsQuery, UpsertContentBody } from "./schemas.js";

/**
 * PUT /platform/projects/:ref/content (UpsertContentBody) — create, or update the item `id`
 * names. Answers 200 with the saved item either way.
 */
export async function upsertContentRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "write");
  const { owner_id: _ignored, ...body } = await jsonBody(c, UpsertContentBody);
  const { item } = await upsertContent(authed(c), access, body);
  return c.json(item);
}

/** DELETE /platform/projects/:ref/content?ids=… → `[{id}]` (all or nothing). */
export async function deleteContentRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  return c.json(await deleteContents(authed(c), access, idsQuery(c)));
}
