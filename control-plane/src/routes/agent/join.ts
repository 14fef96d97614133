import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../deps.js";
import { serviceContext } from "../../lib/context.js";
import { jsonBody, shape } from "../../lib/validate.js";
import { joinHost } from "../../services/fleet/hosts.js";
import { REACHABILITY_MODES } from "../../services/projects/urls.js";

export const JoinBody = z.strictObject({
  token: z.string({ error: "token is required" }).min(1).max(200),
  hostname: z
    .string({ error: "hostname is required" })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, "hostname must be letters, digits, dots, dashes or underscores"),
  /** The interface this host publishes project ports on; loopback unless the operator says otherwise. */
  bind_address: z.union([z.ipv4(), z.ipv6()], { error: "bind_address must be an IP address" }).optional(),
  /** How apps reach this host's projects (ADR 0035): `tunnel` for a host behind NAT. Default `direct`. */
  reachability: z
    .enum(REACHABILITY_MODES, { error: `reachability must be one of ${REACHABILITY_MODES.join(", ")}` })
    .optional(),
});

const JoinResponse = z.object({ host_id: z.string(), credential: z.string(), region: z.string() });

/**
 * POST /agent/v1/join — no session: the join token is the authentication. Answers the host id and
 * its credential (shown once; the control plane keeps only a hash).
 */
export async function joinRoute(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, JoinBody);
  const joined = await joinHost(serviceContext(c), {
    token: body.token,
    hostname: body.hostname,
    bindAddress: body.bind_address,
    reachability: body.reachability,
  });
  return c.json(
    shape(JoinResponse, { host_id: joined.hostId, credential: joined.credential, region: joined.region }),
    201,
  );
}
