import { chmod, mkdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./reconcile/store.js";

export const CREDENTIALS_FILE = "credentials.json";

export const BindAddress = z.union([z.ipv4(), z.ipv6()], { error: "bind address must be an IPv4 or IPv6 address" });

/** What `join` writes and `run` reads: who this host is and how it reaches the control plane. */
export const Credentials = z.object({
  url: z.url({ protocol: /^https?$/, error: "url must be an http(s) URL" }),
  host_id: z.string().min(1).max(128),
  credential: z.string().min(16).max(1024),
  region: z.string().min(1).max(64),
  bind_address: BindAddress,
  hostname: z.string().min(1).max(255),
});
export type Credentials = z.infer<typeof Credentials>;

export function credentialsPath(dataDir: string): string {
  return join(resolve(dataDir), CREDENTIALS_FILE);
}

/** The data directory is 0700 and the credential file 0600: the credential is the host's identity. */
export async function writeCredentials(dataDir: string, creds: Credentials): Promise<string> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const path = credentialsPath(dir);
  await writeFileAtomic(path, `${JSON.stringify(Credentials.parse(creds), null, 2)}\n`, 0o600);
  return path;
}

export class CredentialsError extends Error {
  override readonly name = "CredentialsError";
}

export async function readCredentials(dataDir: string): Promise<{ creds: Credentials; looseMode: boolean }> {
  const path = credentialsPath(dataDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new CredentialsError(`${path} does not exist; run \`supamanager-agent join\` first`);
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CredentialsError(`${path} is not valid JSON`);
  }
  const parsed = Credentials.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CredentialsError(`${path} is invalid: ${issue?.path.join(".") || "(file)"}: ${issue?.message ?? "?"}`);
  }
  const { mode } = await stat(path);
  return { creds: parsed.data, looseMode: (mode & 0o077) !== 0 };
}
