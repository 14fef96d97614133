import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError, type Env, type ResolvedSecrets } from "../config.js";
import { randomBytes, toBase64Url, toHex } from "../crypto/encoding.js";

const SecretsFile = z.object({ jwtSecret: z.string().min(32), encryptionKey: z.string().min(32) });

/**
 * Secrets come from the environment. Outside production, missing ones are generated once into
 * `<data dir>/secrets.json` (mode 0600) and reused on every start; in production a missing secret
 * stops start-up, naming the variable. There is never a hard-coded default.
 */
export function resolveSecrets(env: Env): { secrets: ResolvedSecrets; generatedFile?: string } {
  const fromEnv = { jwtSecret: env.SUPAMANAGER_JWT_SECRET, encryptionKey: env.SUPAMANAGER_ENCRYPTION_KEY };
  if (fromEnv.jwtSecret && fromEnv.encryptionKey) {
    return { secrets: { jwtSecret: fromEnv.jwtSecret, encryptionKey: fromEnv.encryptionKey } };
  }
  if (env.NODE_ENV === "production") {
    const missing = [
      !fromEnv.jwtSecret && "SUPAMANAGER_JWT_SECRET",
      !fromEnv.encryptionKey && "SUPAMANAGER_ENCRYPTION_KEY",
    ].filter(Boolean);
    throw new ConfigError(
      `${missing.join(" and ")} must be set when NODE_ENV=production (generate one with: openssl rand -hex 32)`,
    );
  }
  const dir = env.SUPAMANAGER_DATA_DIR;
  const file = join(dir, "secrets.json");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let stored: z.infer<typeof SecretsFile>;
  if (existsSync(file)) {
    const parsed = SecretsFile.safeParse(JSON.parse(readFileSync(file, "utf8")));
    if (!parsed.success)
      throw new ConfigError(`${file} is not a valid secrets file; remove it to generate new secrets`);
    stored = parsed.data;
  } else {
    stored = { jwtSecret: toBase64Url(randomBytes(48)), encryptionKey: toHex(randomBytes(32)) };
    writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  }
  chmodSync(file, 0o600);
  return {
    secrets: {
      jwtSecret: fromEnv.jwtSecret ?? stored.jwtSecret,
      encryptionKey: fromEnv.encryptionKey ?? stored.encryptionKey,
    },
    generatedFile: file,
  };
}
