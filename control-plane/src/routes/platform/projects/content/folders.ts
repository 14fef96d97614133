import type { Context } from "hono";
import type { AppEnv } from "../../../../deps.js";
import { authed } from "../../../../lib/context.js";
import { jsonBody, query } from "../../../../lib/validate.js";
import { createFolder, deleteFolders, listFolder, updateFolder } from "../../../../services/content/folders.js";
import { accessOf, CreateFolderBody, idParam, idsQuery, ListContentQuery, UpdateFolderBody } from "./schemas.js";

/** GET /platform/projects/:ref/content/folders → GetUserContentFolderResponse for the root. */
export async function listRootFolderRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  return c.json(await listFolder(authed(c), access, null, query(c, ListContentQuery)));
}

/** GET /platform/projects/:ref/content/folders/:id → the folder's sub-folders and items. */
export async function getFolderRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  return c.json(await listFolder(authed(c), access, idParam(c, "Folder"), query(c, ListContentQuery)));
}

/** POST /platform/projects/:ref/content/folders {name, parent_id?} → 201 the folder. */
export async function createFolderRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "write");
  return c.json(await createFolder(authed(c), access, await jsonBody(c, CreateFolderBody)), 201);
}

/** PATCH /platform/projects/:ref/content/folders/:id {name?, parent_id?} → the folder. */
export async function updateFolderRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  const id = idParam(c, "Folder");
  return c.json(await updateFolder(authed(c), access, id, await jsonBody(c, UpdateFolderBody)));
}

/** DELETE /platform/projects/:ref/content/folders?ids=… → `[{id}]`; sub-folders and their items go too. */
export async function deleteFoldersRoute(c: Context<AppEnv>): Promise<Response> {
  const access = await accessOf(c, "read");
  return c.json(await deleteFolders(authed(c), access, idsQuery(c)));
}
