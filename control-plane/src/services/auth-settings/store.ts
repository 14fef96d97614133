import { eq, sql } from "drizzle-orm";
import { sha256Hex } from "../../crypto/encoding.js";
import type { Executor } from "../../db/index.js";
import { projectAuthSettings, projects } from "../../db/schema.js";
import type { AppDeps, AuthedContext } from "../../deps.js";
import { badRequest } from "../../errors.js";
import { recordAudit } from "../audit/record.js";
import { projectForMember } from "../organizations/access.js";
import { type AuthSettings, DEFAULT_AUTH_SETTINGS } from "./settings.js";

/**
 * Storage and changes of a project's auth settings (ADR 0022). The non-secret fields are a JSON
 * row, the SMTP password is encrypted with the SecretBox under `project:<ref>:auth:smtp_pass`. A
 * change bumps the project's spec version, so its host re-renders the stack: only GoTrue refers
 * to these values, so Compose recreates the auth container alone. Routes (Studio's
 * /platform/auth/{ref}/config, /v1/projects/{ref}/config/auth) only translate shapes.
 */

const aad = (ref: string) => `project:${ref}:auth:smtp_pass`;

type Stored = Omit<AuthSettings, "smtpPass">;
const FIELDS = Object.keys(DEFAULT_AUTH_SETTINGS).filter((k) => k !== "smtpPass") as (keyof Stored)[];

/** A project's settings with the SMTP password decrypted: only for rendering its stack. */
export async function loadAuthSettings(
  db: Executor,
  deps: Pick<AppDeps, "secretBox">,
  ref: string,
): Promise<AuthSettings> {
  const [row] = await db.select().from(projectAuthSettings).where(eq(projectAuthSettings.projectRef, ref)).limit(1);
  if (!row) return { ...DEFAULT_AUTH_SETTINGS };
  const stored = row.settings as Partial<Stored>;
  const out: AuthSettings = { ...DEFAULT_AUTH_SETTINGS };
  for (const k of FIELDS) if (stored[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = stored[k];
  out.smtpPass = row.smtpPassEncrypted ? await deps.secretBox.decrypt(row.smtpPassEncrypted, aad(ref)) : "";
  return out;
}

/** What the API may show: every field but the password, which is only said to be set (and its hash). */
export interface AuthSettingsView extends Stored {
  smtpPassSet: boolean;
  /** SHA-256 hex of the password (as the Management API returns auth secrets: hashed), or null. */
  smtpPassHash: string | null;
}

async function view(s: AuthSettings): Promise<AuthSettingsView> {
  const { smtpPass, ...rest } = s;
  return { ...rest, smtpPassSet: smtpPass !== "", smtpPassHash: smtpPass ? await sha256Hex(smtpPass) : null };
}

/** GET: any member of the project's organization. */
export async function getAuthSettings(ctx: AuthedContext, ref: string): Promise<AuthSettingsView> {
  const { project } = await projectForMember(ctx, ref, "projects.read");
  return view(await loadAuthSettings(ctx.db, ctx.deps, project.ref));
}

/** The caller may change the settings (checked before a body is read: outsiders get 404, others 403). */
export async function assertMayUpdateAuthSettings(ctx: AuthedContext, ref: string): Promise<void> {
  await projectForMember(ctx, ref, "projects.update");
}

/** Values an env var of the stack may hold (the agent refuses `'` and line breaks, ADR 0009). */
function checkEnvSafe(patch: Partial<AuthSettings>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (typeof v === "string" && /['\r\n\0]/.test(v)) throw badRequest(`${k} may not contain quotes or line breaks`);
    if (Array.isArray(v))
      for (const u of v) if (/['\r\n\0,]/.test(u)) throw badRequest(`${k}: invalid URL ${JSON.stringify(u)}`);
  }
}

/**
 * PATCH: change some settings (`smtpPass: ""` clears the password). Audited (field names only,
 * never values) in the same transaction; the project's host is kicked to apply the new stack.
 */
export async function updateAuthSettings(
  ctx: AuthedContext,
  ref: string,
  patch: Partial<AuthSettings>,
): Promise<AuthSettingsView> {
  const { project, org } = await projectForMember(ctx, ref, "projects.update");
  checkEnvSafe(patch);
  const changed = Object.keys(patch).sort();
  const now = new Date(ctx.deps.clock.now());
  const { settings, hostId } = await ctx.db.transaction(async (tx) => {
    // One change at a time per project: read-modify-write under the row lock.
    const [p] = await tx.select().from(projects).where(eq(projects.ref, project.ref)).for("update").limit(1);
    if (!p) throw new Error(`project ${project.ref} vanished`);
    const current = await loadAuthSettings(tx, ctx.deps, project.ref);
    const next: AuthSettings = { ...current, ...patch };
    const { smtpPass, ...stored } = next;
    const smtpPassEncrypted = smtpPass ? await ctx.deps.secretBox.encrypt(smtpPass, aad(project.ref)) : null;
    await tx
      .insert(projectAuthSettings)
      .values({ projectRef: project.ref, settings: stored, smtpPassEncrypted, updatedAt: now })
      .onConflictDoUpdate({
        target: projectAuthSettings.projectRef,
        set: { settings: stored, smtpPassEncrypted, updatedAt: now },
      });
    const [updated] = await tx
      .update(projects)
      .set({ specVersion: sql`${projects.specVersion} + 1`, updatedAt: now })
      .where(eq(projects.id, p.id))
      .returning({ specVersion: projects.specVersion, hostId: projects.hostId });
    await recordAudit(tx, ctx.meta, {
      action: "project.auth_config.update",
      outcome: "success",
      actor: ctx.actor,
      orgId: org.id,
      projectRef: project.ref,
      target: project.ref,
      details: { fields: changed, spec_version: updated?.specVersion ?? null },
    });
    return { settings: next, hostId: updated?.hostId ?? null };
  });
  if (hostId && project.desiredState !== "deleted") await ctx.deps.hub.kick(hostId);
  return view(settings);
}
