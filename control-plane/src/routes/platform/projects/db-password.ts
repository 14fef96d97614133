import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param } from "../../../lib/validate.js";
import { projectForMember } from "../../../services/organizations/access.js";
import { resetDbPassword } from "../../../services/projects/db-password.js";
import { DbPassword } from "./create-project.js";
import { RefParam } from "./schemas.js";

/** Studio's reset form posts `{password}`; the rule is the one db_pass follows at create. */
export const DbPasswordBody = z.object({ password: DbPassword });

/**
 * PATCH /platform/projects/:ref/db-password — change the project's database password: the
 * database's roles, the stored (encrypted) password and every service of the stack, through the
 * host agent; audited. Waits for the agent (up to a minute): 200 once the database took the new
 * password (the services restart with it, status RESTARTING), 502 when it refused, 504 when the
 * agent did not answer in time (the change then completes when it does).
 */
export async function dbPasswordRoute(c: Context<AppEnv>): Promise<Response> {
  const ref = param(c, "ref", RefParam, "Project");
  const ctx = authed(c);
  // Who may (404 for another tenant, 403 for a role that may not) before what was sent.
  await projectForMember(ctx, ref, "projects.update");
  const body = await jsonBody(c, DbPasswordBody);
  await resetDbPassword(ctx, ref, body.password);
  return c.json({ message: "Database password updated" });
}
