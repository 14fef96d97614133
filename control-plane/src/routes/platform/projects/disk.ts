import type { Context } from "hono";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { param, shape } from "../../../lib/validate.js";
import { DiskUtilResponse, diskUtilization, provisionedDisk } from "../../../services/disk/utilization.js";
import { RefParam } from "./schemas.js";

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");

/**
 * GET /platform/projects/:ref/disk/util (Studio's Compute and Disk page) and
 * GET /v1/projects/:ref/config/disk/util: the space the project's databases and WAL occupy
 * (services/disk/utilization.ts); the filesystem's size and free space are not measured (0).
 */
export async function diskUtilRoute(c: Context<AppEnv>): Promise<Response> {
  return c.json(shape(DiskUtilResponse, await diskUtilization(authed(c), refOf(c))));
}

/**
 * GET /platform/projects/:ref/disk and /disk/custom-config: there is no provisioned disk (nor
 * autoscaling) per project, so members get a 404 whose message says so (Studio shows it on the
 * page and keeps the disk inputs disabled); non-members the usual 404.
 */
export async function provisionedDiskRoute(c: Context<AppEnv>): Promise<Response> {
  return provisionedDisk(authed(c), refOf(c));
}
