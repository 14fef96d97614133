import type { Context } from "hono";
import type { AppEnv } from "../../../../deps.js";
import { authed } from "../../../../lib/context.js";
import { query } from "../../../../lib/validate.js";
import { countContent, getContentItem, listContent } from "../../../../services/content/content.js";
import { accessOf, idParam, ListContentQuery } from "./schemas.js";

/** GET /platform/projects/:ref/content → GetUserContentResponse `{data, cursor?}`. */
export async function listContentRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  return c.json(await listContent(authed(c), access, query(c, ListContentQuery)));
}

/** GET /platform/projects/:ref/content/count → `{count, favorites, private, shared}`. */
export async function countContentRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  const { name, type, visibility, favorite } = query(c, ListContentQuery);
  return c.json(await countContent(authed(c), access, { name, type, visibility, favorite }));
}

/** GET /platform/projects/:ref/content/item/:id → the item, with its `content`. */
export async function getContentItemRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  return c.json(await getContentItem(authed(c), access, idParam(c, "Content")));
}
