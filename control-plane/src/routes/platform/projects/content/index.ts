import { Hono } from "hono";
import type { AppEnv } from "../../../../deps.js";
import {
  createFolderRoute,
  deleteFoldersRoute,
  getFolderRoute,
  listRootFolderRoute,
  updateFolderRoute,
} from "./folders.js";
import { countContentRoute, getContentItemRoute, listContentRoute } from "./read-content.js";
import { deleteContentRoute, upsertContentRoute } from "./write-content.js";

/**
 * Saved SQL snippets, reports and log queries of a project (Studio's "content"), mounted at
 * /platform/projects/:ref/content. Rules: services/content/rules.ts; docs: docs/api.md.
 */
export function contentRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/", listContentRoute);
  app.put("/", upsertContentRoute);
  app.delete("/", deleteContentRoute);
  app.get("/count", countContentRoute);
  app.get("/item/:id", getContentItemRoute);
  app.get("/folders", listRootFolderRoute);
  app.post("/folders", createFolderRoute);
  app.delete("/folders", deleteFoldersRoute);
  app.get("/folders/:id", getFolderRoute);
  app.patch("/folders/:id", updateFolderRoute);
  return app;
}
