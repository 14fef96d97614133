import {
  DB_PASSWORD_JOB_KIND,
  DbPasswordJobParams,
  DbPasswordJobResult,
  type JobResult,
  type ProjectStatus,
} from "@supamanager/shared";
import { and, eq, sql } from "drizzle-orm";
import { toBase64Url, utf8 } from "../../crypto/encoding.js";
import type { Executor } from "../../db/index.js";
import { auditLog, jobs, projects } from "../../db/schema.js";
import type { AppDeps, AuthedContext } from "../../deps.js";
import { ApiError, badRequest, conflict } from "../../errors.js";
import { PASSWORD_ROLES } from "../../releases/production/sql.js";
import { recordAudit } from "../audit/record.js";
import { enqueueJob, type JobKindHandler, type JobRow, registerJobKind } from "../jobs/jobs.js";
import { projectForMember } from "../organizations/access.js";
import { dbPassAad } from "./model.js";

/**
 * Resetting a project's database password (Studio's Settings → Database → Reset password). The
 * agent's `db-password` job alters the roles in the running database to the new password's
 * SCRAM verifier; when it answers, one transaction stores the new password (encrypted, as at
 * create), bumps the spec version so the agent re-applies the stack — every service that logs in
 * with the password gets the new value — and writes the audit row. See docs/agent.md.
 */

/** The roles that log in with the project's database password: the superuser, then the services'. */
export const DB_PASSWORD_ROLES = ["postgres", ...PASSWORD_ROLES] as const;
/** Statuses the change may start from: the database must be up to take it. */
const RUNNING: readonly ProjectStatus[] = ["ACTIVE_HEALTHY", "ACTIVE_UNHEALTHY"];
/** How long the request waits for the agent before answering 504 (the change still completes). */
export const DB_PASSWORD_WAIT_MS = 60_000;
const JOB_LEASE_MS = 2 * 60_000;
const SCRAM_ITERATIONS = 4096;

/** What the stored job row keeps (the plaintext only encrypted; never sent to the agent). */
interface StoredParams {
  service: string;
  user: string;
  database: string;
  roles: string[];
  nonce: string;
  passwordEncrypted: string;
  orgId: number;
  actor: { userId: string; email: string };
  requestId: string;
  ip: string | null;
}

const jobAad = (ref: string, nonce: string) => `project:${ref}:db_password_job:${nonce}`;

/**
 * Postgres' SCRAM-SHA-256 verifier of `password` (RFC 5802/7677, as `ALTER ROLE … PASSWORD`
 * stores it): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64. The password is
 * NFKC-normalized first, which is what Postgres' SASLprep does to every password that is valid
 * UTF-8 without prohibited characters (ours have no control characters).
 */
export async function scramVerifier(
  password: string,
  salt = crypto.getRandomValues(new Uint8Array(16)),
): Promise<string> {
  const subtle = crypto.subtle;
  const key = await subtle.importKey("raw", utf8.encode(password.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
  const salted = new Uint8Array(
    await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: SCRAM_ITERATIONS }, key, 256),
  );
  const hmacKey = await subtle.importKey("raw", salted, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const clientKey = new Uint8Array(await subtle.sign("HMAC", hmacKey, utf8.encode("Client Key")));
  const serverKey = new Uint8Array(await subtle.sign("HMAC", hmacKey, utf8.encode("Server Key")));
  const storedKey = new Uint8Array(await subtle.digest("SHA-256", clientKey));
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/**
 * PATCH /platform/projects/{ref}/db-password: change the password and wait for the agent.
 * Owners and administrators (projects.update); the project must be running and placed.
 */
export async function resetDbPassword(ctx: AuthedContext, ref: string, password: string): Promise<{ roles: string[] }> {
  const { project, org } = await projectForMember(ctx, ref, "projects.update");
  if (!RUNNING.includes(project.status as ProjectStatus)) {
    throw conflict(
      `The database password can only be changed while the project is running; its status is ${project.status}`,
    );
  }
  if (!project.hostId) throw conflict("The project is not placed on a host yet");
  const source = ctx.deps.releases
    .get(project.release)
    ?.backup?.artifacts.map((a) => a.source)
    .find((s) => s.kind === "pg_dump");
  if (source?.kind !== "pg_dump") {
    throw badRequest(`Release ${project.release} names no database superuser, so its password cannot be changed here`);
  }
  const nonce = toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
  const stored: StoredParams = {
    service: source.service,
    user: source.user,
    database: source.database,
    roles: [...DB_PASSWORD_ROLES],
    nonce,
    passwordEncrypted: await ctx.deps.secretBox.encrypt(password, jobAad(ref, nonce)),
    orgId: org.id,
    actor: { userId: ctx.actor.userId, email: ctx.actor.email },
    requestId: ctx.meta.requestId,
    ip: ctx.meta.ip ?? null,
  };
  const job = await enqueueJob(ctx.db, new Date(ctx.deps.clock.now()), {
    hostId: project.hostId,
    kind: DB_PASSWORD_JOB_KIND,
    projectRef: ref,
    params: stored as unknown as Record<string, unknown>,
    leaseMs: JOB_LEASE_MS,
  });
  await ctx.deps.hub.kick(project.hostId);
  return waitForReset(ctx, ref, job.id);
}

async function waitForReset(ctx: AuthedContext, ref: string, jobId: string): Promise<{ roles: string[] }> {
  const deadline = ctx.deps.clock.now() + DB_PASSWORD_WAIT_MS;
  for (;;) {
    const [row] = await ctx.db.select().from(jobs).where(eq(jobs.id, jobId)).limit(1);
    if (row?.status === "failed") {
      throw new ApiError("bad_gateway", `The database password was not changed: ${row.error ?? "the job failed"}`);
    }
    if (row?.status === "succeeded") {
      // The result is applied by the job's handler in its own transaction; its audit row says it is done.
      const [done] = await ctx.db
        .select({ id: auditLog.id })
        .from(auditLog)
        .where(
          and(
            eq(auditLog.action, "project.db_password.reset"),
            eq(auditLog.projectRef, ref),
            sql`${auditLog.details}->>'job_id' = ${jobId}`,
          ),
        )
        .limit(1);
      if (done) return { roles: DbPasswordJobResult.parse(row.result).roles };
    }
    if (ctx.deps.clock.now() >= deadline) {
      throw new ApiError(
        "gateway_timeout",
        "The project's host has not confirmed the new password yet; the change completes when it does (see the organization's audit log)",
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function storedOf(job: JobRow): StoredParams {
  return job.params as unknown as StoredParams;
}

/** The encrypted password has done its work once the job is over: drop it from the row. */
async function forgetPassword(db: Executor, jobId: string): Promise<void> {
  await db
    .update(jobs)
    .set({ params: sql`${jobs.params} - 'passwordEncrypted' - 'nonce'` })
    .where(eq(jobs.id, jobId));
}

async function auditFailure(deps: AppDeps, job: JobRow, error: string): Promise<void> {
  const p = storedOf(job);
  await forgetPassword(deps.database.db, job.id);
  await recordAudit(
    deps.database.db,
    { requestId: p.requestId, ip: p.ip ?? undefined, userAgent: undefined },
    {
      action: "project.db_password.reset",
      outcome: "failure",
      actor: p.actor,
      orgId: p.orgId,
      projectRef: job.projectRef,
      target: job.projectRef,
      details: { job_id: job.id, error: error.slice(0, 500) },
    },
  );
}

export const dbPasswordJobHandler: JobKindHandler = {
  /** What the agent gets: the verifier, built now from the encrypted password (never the password). */
  async deliver(deps, job) {
    const p = storedOf(job);
    const password = await deps.secretBox.decrypt(p.passwordEncrypted, jobAad(job.projectRef ?? "", p.nonce));
    return DbPasswordJobParams.parse({
      service: p.service,
      user: p.user,
      database: p.database,
      roles: p.roles,
      verifier: await scramVerifier(password),
    });
  },

  async onResult(deps, job, result: JobResult) {
    const ref = job.projectRef;
    if (!ref) return;
    if (!result.ok) {
      await auditFailure(deps, job, result.error ?? "the agent reported a failure");
      return;
    }
    const p = storedOf(job);
    const roles = DbPasswordJobResult.safeParse(result.result);
    const password = await deps.secretBox.decrypt(p.passwordEncrypted, jobAad(ref, p.nonce));
    const dbPassEncrypted = await deps.secretBox.encrypt(password, dbPassAad(ref));
    const hostId = await deps.database.db.transaction(async (tx) => {
      const [current] = await tx.select().from(projects).where(eq(projects.ref, ref)).limit(1);
      if (!current) return null;
      const running = RUNNING.includes(current.status as ProjectStatus) && current.desiredState === "running";
      const [updated] = await tx
        .update(projects)
        .set({
          dbPassEncrypted,
          // Re-render and re-apply the stack: each service gets the new password in its environment.
          specVersion: sql`${projects.specVersion} + 1`,
          ...(running ? { status: "RESTARTING", statusReason: null, health: null, healthAt: null } : {}),
          updatedAt: new Date(deps.clock.now()),
        })
        .where(eq(projects.ref, ref))
        .returning({ hostId: projects.hostId, specVersion: projects.specVersion });
      await recordAudit(
        tx,
        { requestId: p.requestId, ip: p.ip ?? undefined, userAgent: undefined },
        {
          action: "project.db_password.reset",
          outcome: "success",
          actor: p.actor,
          orgId: p.orgId,
          projectRef: ref,
          target: ref,
          details: {
            job_id: job.id,
            roles: roles.success ? roles.data.roles : [],
            ...(updated ? { spec_version: updated.specVersion } : {}),
          },
        },
      );
      await forgetPassword(tx, job.id);
      return updated?.hostId ?? null;
    });
    if (hostId) await deps.hub.kick(hostId);
  },

  async onLost(deps, job, reason) {
    await auditFailure(deps, job, reason);
  },
};

registerJobKind(DB_PASSWORD_JOB_KIND, dbPasswordJobHandler);
