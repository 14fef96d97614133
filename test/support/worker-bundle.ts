import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT as ROOT } from "./process.js";

/** What the tests and the benchmark take from wrangler.toml, so workerd runs as deployed. */
export function wranglerSettings(): { compatibilityDate: string; compatibilityFlags: string[] } {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1];
  if (!date || flags === undefined) throw new Error("wrangler.toml lacks compatibility_date/compatibility_flags");
  return {
    compatibilityDate: date,
    compatibilityFlags: [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1] as string),
  };
}

/**
 * Bundle the Worker exactly as `wrangler deploy` would (its esbuild, aliases and nodejs_compat
 * handling from wrangler.toml), without uploading: `wrangler deploy --dry-run --outdir`.
 * Returns the path of the bundled module.
 */
export async function bundleWorker(): Promise<string> {
  const outdir = await mkdtemp(join(tmpdir(), "supamanager-worker-"));
  await promisify(execFile)(join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", outdir], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" },
    timeout: 120_000,
  });
  return join(outdir, "worker.js");
}

/** Delete a bundle made by bundleWorker (after the workerd running it is disposed). */
export async function removeBundle(scriptPath: string): Promise<void> {
  await rm(dirname(scriptPath), { recursive: true, force: true });
}
