import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { notFound } from "../../../errors.js";
import { notSupported } from "./not-supported.js";

/**
 * Quiet answers for what Studio polls on every page but SupaManager has no feature for
 * (billing, notifications, integrations, telemetry). Each one is listed, with why it is safe,
 * in docs/studio-stubs.md. Request bodies and queries are ignored on purpose: nothing is stored.
 * Mounted last under /platform, after requireAuth, so every answer needs a session.
 */
export function stubRoutes() {
  const app = new Hono<AppEnv>();

  // STUB: no notifications are ever produced; Studio needs an array, never null.
  app.get("/notifications", (c) => c.json([]));
  // STUB: counts for the bell icon; Studio reads exactly these three keys.
  app.get("/notifications/summary", (c) => c.json({ has_critical: false, has_warning: false, unread_count: 0 }));
  // STUB: "mark as seen" on an empty list updates nothing.
  app.patch("/notifications", (c) => c.json([]));
  // STUB: "archive all" on an empty list archives nothing.
  app.patch("/notifications/archive-all", (c) => c.json({}));

  // STUB: there is no Stripe billing, so no invoice is ever overdue.
  app.get("/stripe/invoices/overdue", (c) => c.json([]));
  // STUB: no resource exhaustion warnings (disk, CPU, auth rate limits) are computed yet.
  app.get("/projects-resource-warnings", (c) => c.json([]));
  // STUB: the hosted platform's health banner; SupaManager reports itself healthy while it answers.
  app.get("/status", (c) => c.json({ is_healthy: true }));

  // STUB: no marketplace integrations (GitHub, Vercel) are installed.
  app.get("/integrations", (c) => c.json([]));
  // STUB: GitHub is never connected; Studio reads `connections`.
  app.get("/integrations/github/connections", (c) => c.json({ connections: [] }));
  // STUB: Studio treats any error here as "not authorized", which is the truth.
  app.get("/integrations/github/authorization", () => {
    throw notFound("GitHub is not connected: SupaManager has no GitHub integration");
  });
  // STUB: no GitHub repositories without an authorization.
  app.get("/integrations/github/repositories", (c) => c.json({ repositories: [] }));
  // STUB: no Vercel connection exists for any project.
  app.get("/integrations/vercel/connections/project/:ref", (c) => c.json([]));
  // STUB: an organization's installed integrations: none (registered after the fixed paths above).
  app.get("/integrations/:slug", (c) => c.json([]));

  // (GET /telemetry/feature-flags is answered before sign-in, in ../index.ts.)
  // STUB: telemetry events (event, identify, page, page-leave, groups/*, feature-flags/track) are dropped.
  app.post("/telemetry/*", (c) => c.json({}));

  // STUB: `_` is Studio's placeholder ref before a project is chosen; there is no config to show.
  app.get("/auth/_/config", () => {
    throw notFound("No project is selected (the project ref is the placeholder `_`)");
  });
  // STUB: as above, for the storage settings Studio reads on the first page.
  app.get("/projects/_/config/storage", () => {
    throw notFound("No project is selected (the project ref is the placeholder `_`)");
  });

  // Everything else under /platform: a JSON 404 that steps aside for routes registered later.
  app.all("*", notSupported);
  return app;
}
