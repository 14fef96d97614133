import type { Context } from "hono";
import type { AppEnv } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { serviceContext } from "../../lib/context.js";
import { bearerToken } from "../../middleware/auth.js";
import { authenticateHost } from "../../services/fleet/authenticate.js";

/**
 * GET /agent/v1/connect — the agent's WebSocket. The host credential (`Authorization: Bearer
 * smh_…`) is checked BEFORE upgrading: an unknown or revoked credential gets a plain 401 and
 * never a socket. The upgrade itself belongs to the runtime (deps.agentUpgrade).
 */
export async function connectRoute(c: Context<AppEnv>): Promise<Response> {
  const host = await authenticateHost(serviceContext(c), bearerToken(c.req.header("authorization")));
  const upgrade = c.get("deps").agentUpgrade;
  if (!upgrade) throw new ApiError("not_implemented", "This runtime does not accept agent connections");
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError("bad_request", "Expected a WebSocket upgrade (Upgrade: websocket)");
  }
  return upgrade(c, host.id);
}
