import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param } from "../../../lib/validate.js";
import { deleteProject } from "../../../services/projects/delete.js";
import { getProject, getProjectStatus } from "../../../services/projects/get.js";
import { dbVersionOf } from "../../../services/projects/model.js";
import { renameProject } from "../../../services/projects/update.js";
import { connectionToken } from "../../../services/secrets/connection-token.js";
import { projectDetailResponse, projectRefResponse, RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/** GET /platform/projects/:ref */
export async function getProjectRoute(c: Context<AppEnv>): Promise<Response> {
  const project = await getProject(authed(c), refOf(c));
  const deps = c.get("deps");
  return c.json(
    projectDetailResponse(
      project,
      await connectionToken(deps, project.ref),
      dbVersionOf(deps.releases.get(project.release)),
    ),
  );
}

/** GET /platform/projects/:ref/status — polled every few seconds while a project changes state. */
export async function getProjectStatusRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json({ status: await getProjectStatus(authed(c), refOf(c)) });
}

export const UpdateProjectBody = z.strictObject({
  name: z
    .string({ error: "name is required" })
    .trim()
    .min(1, "name must not be empty")
    .max(256, "name must be at most 256 characters"),
});

/** PATCH /platform/projects/:ref {name} — rename. */
export async function updateProjectRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = refOf(c);
  const body = await jsonBody(c, UpdateProjectBody);
  return c.json(projectRefResponse(await renameProject(authed(c), ref, body.name)));
}

/** DELETE /platform/projects/:ref — starts the teardown; the project reads GOING_DOWN until REMOVED. */
export async function deleteProjectRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json(projectRefResponse(await deleteProject(authed(c), refOf(c))));
}
