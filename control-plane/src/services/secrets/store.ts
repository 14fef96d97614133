import { eq, sql } from "drizzle-orm";
import type { Executor } from "../../db/index.js";
import { projectSecrets } from "../../db/schema.js";
import type { AppDeps } from "../../deps.js";
import { generateProjectSecrets, type ProjectSecrets, STORED_SECRET_NAMES, type StoredSecretName } from "./generate.js";

/** AAD binding one encrypted secret to its project and name, so values cannot be swapped between rows. */
export const secretAad = (ref: string, name: string) => `project:${ref}:secret:${name}`;

type SecretDeps = Pick<AppDeps, "secretBox" | "clock">;

const STORED = new Set<string>(STORED_SECRET_NAMES);

/**
 * Encrypt and insert a project's secrets (AES-256-GCM, fresh nonce each, current key id).
 * Existing rows win (ON CONFLICT DO NOTHING): a concurrent writer never overwrites a secret.
 */
export async function insertProjectSecrets(
  db: Executor,
  deps: Pick<AppDeps, "secretBox">,
  ref: string,
  secrets: Partial<ProjectSecrets>,
  now: Date,
): Promise<void> {
  const rows = [];
  for (const name of STORED_SECRET_NAMES) {
    const value = secrets[name];
    if (value === undefined) continue;
    rows.push({
      projectRef: ref,
      name,
      valueEncrypted: await deps.secretBox.encrypt(value, secretAad(ref, name)),
      createdAt: now,
    });
  }
  if (rows.length === 0) return;
  await db.insert(projectSecrets).values(rows).onConflictDoNothing();
}

async function readSecrets(db: Executor, deps: SecretDeps, ref: string): Promise<Partial<ProjectSecrets>> {
  const rows = await db
    .select({ name: projectSecrets.name, valueEncrypted: projectSecrets.valueEncrypted })
    .from(projectSecrets)
    .where(eq(projectSecrets.projectRef, ref));
  const out: Partial<ProjectSecrets> = {};
  for (const row of rows) {
    if (!STORED.has(row.name)) continue;
    out[row.name as StoredSecretName] = await deps.secretBox.decrypt(row.valueEncrypted, secretAad(ref, row.name));
  }
  return out;
}

const isComplete = (s: Partial<ProjectSecrets>): s is ProjectSecrets => STORED_SECRET_NAMES.every((n) => n in s);

/**
 * A project's stored secrets, decrypted. Projects created before a secret existed (or before
 * secrets were stored at all) get the missing ones generated here, once: under a per-project
 * advisory lock in a transaction, inserted with ON CONFLICT DO NOTHING and read back, so
 * concurrent callers all end up with the same values. Callers must never log the result.
 */
export async function loadProjectSecrets(db: Executor, deps: SecretDeps, ref: string): Promise<ProjectSecrets> {
  const found = await readSecrets(db, deps, ref);
  if (isComplete(found)) return found;
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`project_secrets:${ref}`}))`);
    const current = await readSecrets(tx, deps, ref);
    if (isComplete(current)) return current;
    const generated = await generateProjectSecrets(ref, deps.clock.now(), current);
    const missing: Partial<ProjectSecrets> = {};
    for (const name of STORED_SECRET_NAMES) if (!(name in current)) missing[name] = generated[name];
    await insertProjectSecrets(tx, deps, ref, missing, new Date(deps.clock.now()));
    const stored = await readSecrets(tx, deps, ref);
    if (!isComplete(stored)) throw new Error(`project ${ref}: secrets are still missing after generation`);
    return stored;
  });
}
