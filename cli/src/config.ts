import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { CliError, EXIT } from "./errors.js";

/** What `supamanager login` stores. The file is private to the user (mode 0600). */
export const StoredConfig = z.object({
  url: z.string().min(1),
  token: z.string().min(1),
  /** Id of the personal access token, so `logout` can revoke it (absent for a token given with --token). */
  token_id: z.string().optional(),
  email: z.string().optional(),
});
export type StoredConfig = z.output<typeof StoredConfig>;

/** `$SUPAMANAGER_CONFIG`, else `$XDG_CONFIG_HOME/supamanager/config.json`, else `~/.config/supamanager/config.json`. */
export function configPath(env: NodeJS.ProcessEnv): string {
  if (env.SUPAMANAGER_CONFIG) return env.SUPAMANAGER_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "supamanager", "config.json");
}

export function readConfig(path: string): StoredConfig | undefined {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}; run \`supamanager login\` again`, EXIT.usage);
  }
  const parsed = StoredConfig.safeParse(raw);
  if (!parsed.success) {
    throw new CliError(`${path} is not a supamanager configuration; run \`supamanager login\` again`, EXIT.usage);
  }
  return parsed.data;
}

/** Write atomically (temporary file + rename), mode 0600, in a directory created with mode 0700. */
export function writeConfig(path: string, config: StoredConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(StoredConfig.parse(config), null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Remove the stored configuration; false when there was none. */
export function removeConfig(path: string): boolean {
  if (!existsSync(path)) return false;
  rmSync(path, { force: true });
  return true;
}
