import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { forbidden } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param } from "../../../lib/validate.js";
import { actorOf } from "../../../middleware/auth.js";
import { isPatSession } from "../../../services/access-tokens/authenticate.js";
import { createAccessToken, listAccessTokens, revokeAccessToken } from "../../../services/access-tokens/tokens.js";

/**
 * Studio's account page sends `{name, expires_at?}`; other fields it may add (e.g. `scope`) are
 * accepted and ignored, so a newer Studio does not break token creation.
 */
export const CreateAccessTokenBody = z.object({
  name: z.string().trim().min(1, "must not be empty").max(100),
  expires_at: z.iso.datetime({ offset: true }).nullish(),
});

const TokenId = z.string().regex(/^pat_[a-z0-9]{1,64}$/);

/**
 * `/platform/profile/access-tokens`: the caller's personal access tokens. Managing them takes a
 * dashboard session: a personal access token can neither mint more tokens (so revoking a leaked
 * one ends its access) nor list or revoke the others; it may only revoke itself.
 */
export function accessTokenRoutes() {
  const app = new Hono<AppEnv>();
  app.use("*", async (c, next) => {
    const { sessionId } = actorOf(c);
    // A token may revoke itself (a CLI's logout): that ends access, it never extends it.
    const revokesItself = c.req.method === "DELETE" && sessionId === `pat:${c.req.path.split("/").pop() ?? ""}`;
    if (isPatSession(sessionId) && !revokesItself) {
      throw forbidden(
        "Managing access tokens needs a dashboard session: sign in to the dashboard; an access token cannot create, list or revoke tokens",
      );
    }
    await next();
  });
  app.get("/", async (c) => c.json(await listAccessTokens(authed(c))));
  app.post("/", async (c) => {
    const body = await jsonBody(c, CreateAccessTokenBody);
    const created = await createAccessToken(authed(c), {
      name: body.name,
      expiresAt: body.expires_at ? new Date(body.expires_at) : null,
    });
    return c.json(created, 201);
  });
  app.delete("/:id", async (c) => {
    const id = param(c, "id", TokenId, "Access token");
    return c.json(await revokeAccessToken(authed(c), id));
  });
  return app;
}
