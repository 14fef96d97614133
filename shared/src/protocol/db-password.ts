import { z } from "zod";

/**
 * The `db-password` job: give a project's database roles a new password. The control plane sends
 * only the password's SCRAM-SHA-256 verifier (never the password itself), so neither the job
 * frame, the agent, psql nor a Postgres statement log ever holds the plaintext; Postgres stores a
 * pre-hashed verifier as is. The agent runs one psql session as the release's superuser inside
 * the project's database container, over the local socket, and alters each listed role that
 * exists. The control plane then stores the new password and re-applies the stack, so every
 * service that logs in with it gets the new value (docs/agent.md).
 */
export const DB_PASSWORD_JOB_KIND = "db-password";

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts), as Postgres stores it. */
export const SCRAM_VERIFIER =
  /^SCRAM-SHA-256\$[1-9][0-9]{3,6}:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/;

const RoleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "a role name is a lowercase SQL identifier");

export const DbPasswordJobParams = z.object({
  /** The Compose service of the project's Postgres, and the superuser and database psql uses. */
  service: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
  user: RoleName,
  database: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/),
  /** The roles that log in with the project's database password; those missing are skipped. */
  roles: z.array(RoleName).min(1).max(32),
  verifier: z.string().max(512).regex(SCRAM_VERIFIER, "verifier must be a SCRAM-SHA-256 verifier"),
});
export type DbPasswordJobParams = z.infer<typeof DbPasswordJobParams>;

/** What the agent answers: the roles it changed (a subset of `roles`, in name order). */
export const DbPasswordJobResult = z.object({ roles: z.array(RoleName) });
export type DbPasswordJobResult = z.infer<typeof DbPasswordJobResult>;
