/**
 * The edge runtime's main service, written by us: `/<name>/…` runs the user function in
 * /home/deno/functions/<name> in a user worker. With VERIFY_JWT=true a request needs a valid
 * HS256 JWT (the project's anon/service_role keys or a user's token) in Authorization, unless
 * the function was deployed with verify_jwt false (its function.json, written by the agent,
 * ADR 0032). The project's function secrets (/home/deno/functions/.secrets.json, written by the
 * agent) are added to every function's environment. The runtime's own JWT secret is not passed
 * on to user functions.
 *
 * Mounted read-only at /home/deno/functions/main/index.ts, over the functions volume.
 * No `${…}` in here: release file templates substitute project variables.
 */
export const FUNCTIONS_MAIN_TEMPLATE = `// SupaManager main service (generated; changes are overwritten on the next apply).
const FUNCTIONS_DIR = "/home/deno/functions";
const VERIFY_JWT = Deno.env.get("VERIFY_JWT") === "true";
const JWT_SECRET = Deno.env.get("JWT_SECRET") ?? "";
const HIDDEN = new Set(["JWT_SECRET", "VERIFY_JWT"]);

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    const value = JSON.parse(await Deno.readTextFile(path));
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) console.error("cannot read " + path + ": " + String(e));
    return null;
  }
}

function reply(status: number, msg: string): Response {
  return new Response(JSON.stringify({ msg }), { status, headers: { "Content-Type": "application/json" } });
}

function base64UrlDecode(part: string): Uint8Array {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function verified(req: Request): Promise<boolean> {
  const match = /^Bearer\\s+(\\S+)$/i.exec(req.headers.get("authorization") ?? "");
  const parts = match ? match[1].split(".") : [];
  if (parts.length !== 3 || JWT_SECRET === "") return false;
  try {
    const header = JSON.parse(new TextDecoder().decode(base64UrlDecode(parts[0])));
    if (header.alg !== "HS256") return false;
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(JWT_SECRET),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const ok = await crypto.subtle.verify(
      "HMAC",
      key,
      base64UrlDecode(parts[2]),
      new TextEncoder().encode(parts[0] + "." + parts[1]),
    );
    if (!ok) return false;
    const claims = JSON.parse(new TextDecoder().decode(base64UrlDecode(parts[1])));
    return typeof claims.exp !== "number" || claims.exp * 1000 > Date.now();
  } catch {
    return false;
  }
}

Deno.serve(async (req: Request) => {
  const name = new URL(req.url).pathname.split("/").filter(Boolean)[0] ?? "";
  if (name === "" || name === "main" || !/^[A-Za-z0-9_-]+$/.test(name)) {
    return reply(400, "missing or invalid function name in the request path");
  }
  const settings = await readJson(FUNCTIONS_DIR + "/" + name + "/function.json");
  const verify = typeof settings?.verify_jwt === "boolean" ? settings.verify_jwt : VERIFY_JWT;
  if (verify && !(await verified(req))) return reply(401, "Invalid JWT");
  try {
    const secrets = Object.entries((await readJson(FUNCTIONS_DIR + "/.secrets.json")) ?? {}).filter(
      ([k, v]) => typeof v === "string" && !HIDDEN.has(k) && !k.startsWith("SUPABASE_"),
    );
    const envVars = [...Object.entries(Deno.env.toObject()).filter(([k]) => !HIDDEN.has(k)), ...secrets];
    // @ts-ignore EdgeRuntime is a global of the edge runtime
    const worker = await EdgeRuntime.userWorkers.create({
      servicePath: FUNCTIONS_DIR + "/" + name,
      memoryLimitMb: 150,
      workerTimeoutMs: 5 * 60 * 1000,
      noModuleCache: false,
      envVars,
      forceCreate: false,
      netAccessDisabled: false,
    });
    return await worker.fetch(req);
  } catch (e) {
    return reply(500, "function " + name + " failed: " + String(e));
  }
});
`;
