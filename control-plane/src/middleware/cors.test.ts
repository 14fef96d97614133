import { Hono } from "hono";
import { cors } from "hono/cors";
import { describe, expect, it } from "vitest";
import { corsHeaders } from "./cors.js";

/** corsHeaders must answer with exactly the headers hono's cors() gives with the same options. */
const options = {
  origins: ["http://studio.test"],
  allowHeaders: ["Authorization", "Content-Type", "X-Request-Id"],
  allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  exposeHeaders: ["X-Request-Id", "Retry-After", "X-Total-Count"],
  maxAge: 600,
};

function build(kind: "hono" | "ours") {
  const app = new Hono();
  // As requestContext does: a header set before the CORS middleware, re-added for own Responses.
  app.use("*", async (c, next) => {
    c.header("X-Request-Id", "req-1");
    await next();
    if (!c.res.headers.has("x-request-id")) c.header("X-Request-Id", "req-1");
  });
  app.use(
    "*",
    kind === "hono"
      ? cors({
          origin: (o) => (options.origins.includes(o) ? o : null),
          credentials: true,
          allowHeaders: options.allowHeaders,
          allowMethods: options.allowMethods,
          exposeHeaders: options.exposeHeaders,
          maxAge: options.maxAge,
        })
      : corsHeaders(options),
  );
  app.get("/json", (c) => c.json({ ok: true }));
  app.get("/counted", (c) => {
    c.header("X-Total-Count", "3");
    return c.body(null, 200);
  });
  app.get("/own", () => new Response("proxied", { headers: { "content-type": "text/plain", "x-upstream": "1" } }));
  app.get("/fails", () => {
    throw new Error("boom");
  });
  app.onError((_err, c) => c.json({ message: "Internal server error" }, 500));
  app.notFound((c) => c.json({ message: "not found" }, 404));
  return app;
}

const headersOf = (res: Response) =>
  Object.fromEntries([...res.headers.entries()].sort(([a], [b]) => a.localeCompare(b)));

describe("corsHeaders", () => {
  const cases: [string, string, Record<string, string>][] = [];
  for (const path of ["/json", "/counted", "/own", "/fails", "/missing"]) {
    for (const origin of ["http://studio.test", "http://evil.test", undefined]) {
      cases.push(["GET", path, origin ? { origin } : {}]);
    }
  }
  cases.push([
    "OPTIONS",
    "/json",
    {
      origin: "http://studio.test",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization",
    },
  ]);
  cases.push(["OPTIONS", "/json", { origin: "http://evil.test", "access-control-request-method": "GET" }]);

  it.each(cases)("%s %s %j: the same status, headers and body as hono's cors()", async (method, path, headers) => {
    const [theirs, ours] = await Promise.all(
      (["hono", "ours"] as const).map((k) => build(k).request(path, { method, headers })),
    );
    if (!theirs || !ours) throw new Error("two responses");
    expect(ours.status).toBe(theirs.status);
    expect(headersOf(ours)).toEqual(headersOf(theirs));
    expect(await ours.text()).toBe(await theirs.text());
    expect(ours.headers.get("x-request-id")).toBe("req-1");
  });
});
