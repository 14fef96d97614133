import type { Context } from "hono";
import type { AppDeps, AppEnv } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { serviceContext } from "../../lib/context.js";
import { bearerToken } from "../../middleware/auth.js";
import { authenticateHost } from "../../services/fleet/authenticate.js";

/**
 * The host credential (`Authorization: Bearer smh_…`) is checked BEFORE upgrading: an unknown or
 * revoked credential gets a plain 401 and never a socket. The upgrade itself belongs to the
 * runtime (deps.agentUpgrade / deps.tunnelUpgrade).
 */
async function hostUpgrade(
  c: Context<AppEnv>,
  which: "agentUpgrade" | "tunnelUpgrade",
  unsupported: string,
): Promise<Response> {
  const host = await authenticateHost(serviceContext(c), bearerToken(c.req.header("authorization")));
  const upgrade: AppDeps[typeof which] = c.get("deps")[which];
  if (!upgrade) throw new ApiError("not_implemented", unsupported);
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("bad_request", "Expected a WebSocket upgrade (Upgrade: websocket)");
  }
  return upgrade(c, host.id);
}

/** GET /agent/v1/connect — the agent's control WebSocket (ADR 0007). */
export function connectRoute(c: Context<AppEnv>): Promise<Response> {
  return hostUpgrade(c, "agentUpgrade", "This runtime does not accept agent connections");
}

/**
 * GET /agent/v1/tunnel — the host's tunnel data connection (ADR 0035), a second WebSocket that
 * carries its projects' HTTP traffic, authenticated like /agent/v1/connect.
 */
export function tunnelRoute(c: Context<AppEnv>): Promise<Response> {
  return hostUpgrade(c, "tunnelUpgrade", "This runtime does not relay project traffic");
}
