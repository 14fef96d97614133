import { ApiClient, normaliseUrl } from "./client.js";
import type { RunContext } from "./commands.js";
import { readConfig } from "./config.js";
import { usageError } from "./errors.js";

/** The client for the resolved control plane: flags, then environment, then the stored login. */
export function client(ctx: Pick<RunContext, "input" | "env" | "configPath">): ApiClient {
  const stored = readConfig(ctx.configPath);
  const rawUrl = ctx.input.url ?? ctx.env.SUPAMANAGER_URL ?? stored?.url;
  if (!rawUrl) {
    throw usageError(
      "not logged in: run `supamanager login --url <control plane> …`, or set SUPAMANAGER_URL and SUPAMANAGER_TOKEN",
    );
  }
  const url = normaliseUrl(rawUrl);
  let token = ctx.input.token ?? ctx.env.SUPAMANAGER_TOKEN;
  // The stored token only ever goes to the control plane it was issued by.
  if (!token && stored && normaliseUrl(stored.url) === url) token = stored.token;
  if (!token)
    throw usageError(`no token for ${url}: run \`supamanager login --url ${url} …\` or set SUPAMANAGER_TOKEN`);
  return new ApiClient(url, token);
}
