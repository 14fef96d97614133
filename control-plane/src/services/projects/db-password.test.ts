import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { PROTOCOL_VERSION, SCRAM_VERIFIER } from "@supamanager/shared";
import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditLog, jobs, projects } from "../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import {
  addMember,
  createOrg,
  createProjectViaApi,
  TEST_DB_PASS,
  type TestOrg,
} from "../../test-support/projects-factory.js";
import { jobsToSend, recordJobResult } from "../jobs/jobs.js";
import { DB_PASSWORD_ROLES, scramVerifier } from "./db-password.js";
import { dbPassAad } from "./model.js";

const NEW_PASS = "a brand-new Pa$$word 42";

let t: TestApp;
let owner: TestUser;
let org: TestOrg;
let ref: string;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  owner = await signUpAndLogin(t);
  org = await createOrg(t, owner);
  ref = (await createProjectViaApi(t, owner, org)).ref;
});
afterEach(async () => {
  await t.close();
});

const patch = (token: string, json: unknown) =>
  t.request(`/platform/projects/${ref}/db-password`, { method: "PATCH", token, json });
const row = async () => (await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref)))[0];
const setRunning = () =>
  t.deps.database.db.update(projects).set({ status: "ACTIVE_HEALTHY" }).where(eq(projects.ref, ref));

/** The job the PATCH queued, once it is there. */
async function queuedJob() {
  for (let i = 0; i < 200; i++) {
    const [job] = await t.deps.database.db.select().from(jobs).where(eq(jobs.kind, "db-password"));
    if (job) return job;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no db-password job was queued");
}

describe("scramVerifier", () => {
  it("is Postgres' SCRAM-SHA-256 verifier (RFC 5802 keys over PBKDF2-SHA-256, 4096 rounds)", async () => {
    const salt = new Uint8Array(16).map((_, i) => i * 7);
    const verifier = await scramVerifier("pencil", salt);
    const salted = pbkdf2Sync("pencil", salt, 4096, 32, "sha256");
    const stored = createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest();
    const server = createHmac("sha256", salted).update("Server Key").digest();
    expect(verifier).toBe(
      `SCRAM-SHA-256$4096:${Buffer.from(salt).toString("base64")}$${stored.toString("base64")}:${server.toString("base64")}`,
    );
    expect(verifier).toMatch(SCRAM_VERIFIER);
    // A fresh random salt each time.
    expect(await scramVerifier("pencil")).not.toBe(await scramVerifier("pencil"));
  });
});

describe("PATCH /platform/projects/{ref}/db-password", () => {
  it("refuses a bad password (400), a stranger (404), a developer (403) and a project that is not running (409)", async () => {
    await setRunning();
    const short = await patch(owner.token, { password: "short" });
    expect(short.status).toBe(400);
    expect(((await short.json()) as { message: string }).message).toMatch(/at least 8/);
    expect((await patch(owner.token, {})).status).toBe(400);
    const stranger = await signUpAndLogin(t);
    expect((await patch(stranger.token, { password: NEW_PASS })).status).toBe(404);
    const dev = await signUpAndLogin(t);
    await addMember(t, org, dev, "developer");
    expect((await patch(dev.token, { password: NEW_PASS })).status).toBe(403);
    await t.deps.database.db.update(projects).set({ status: "INACTIVE" }).where(eq(projects.ref, ref));
    const paused = await patch(owner.token, { password: NEW_PASS });
    expect(paused.status).toBe(409);
    expect(((await paused.json()) as { message: string }).message).toMatch(/INACTIVE/);
    expect(await t.deps.database.db.select().from(jobs)).toHaveLength(0);
  });

  it("sends the agent only the verifier; on success stores the password, re-applies the stack and audits", async () => {
    await setRunning();
    const before = await row();
    const pending = patch(owner.token, { password: NEW_PASS });
    const job = await queuedJob();
    // Stored encrypted only.
    expect(JSON.stringify(job.params)).not.toContain(NEW_PASS);
    const [frame] = await jobsToSend(t.deps, job.hostId as string, new Set());
    expect(frame?.kind).toBe("db-password");
    expect(Object.keys(frame?.params ?? {}).sort()).toEqual(["database", "roles", "service", "user", "verifier"]);
    expect(frame?.params).toMatchObject({
      service: "db",
      user: "postgres",
      database: "postgres",
      roles: [...DB_PASSWORD_ROLES],
    });
    expect(String(frame?.params.verifier)).toMatch(SCRAM_VERIFIER);
    expect(JSON.stringify(frame)).not.toContain(NEW_PASS);

    await recordJobResult(
      t.deps,
      job.hostId as string,
      { v: PROTOCOL_VERSION, type: "job_result", jobId: job.id, ok: true, result: { roles: ["postgres"] } },
      t.deps.logger,
    );
    const res = await pending;
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ message: "Database password updated" });

    const after = await row();
    if (!after || !before) throw new Error("project row missing");
    expect(await t.deps.secretBox.decrypt(after.dbPassEncrypted, dbPassAad(ref))).toBe(NEW_PASS);
    expect(after.specVersion).toBe(before.specVersion + 1);
    expect(after.status).toBe("RESTARTING");
    const [audit] = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, "project.db_password.reset"), eq(auditLog.projectRef, ref)));
    expect(audit).toMatchObject({ outcome: "success", actorId: owner.userId, orgId: org.id });
    expect(JSON.stringify(audit)).not.toContain(NEW_PASS);
    // The encrypted password leaves the job row once the job is over.
    const [done] = await t.deps.database.db.select().from(jobs).where(eq(jobs.id, job.id));
    expect(done?.params).not.toHaveProperty("passwordEncrypted");
    expect(t.logs.join("\n")).not.toContain(NEW_PASS);
  });

  it("answers 502 with the agent's error when the database refuses, and keeps the old password", async () => {
    await setRunning();
    const pending = patch(owner.token, { password: NEW_PASS });
    const job = await queuedJob();
    await jobsToSend(t.deps, job.hostId as string, new Set());
    await recordJobResult(
      t.deps,
      job.hostId as string,
      {
        v: PROTOCOL_VERSION,
        type: "job_result",
        jobId: job.id,
        ok: false,
        error: "psql exited with 2: connection refused",
      },
      t.deps.logger,
    );
    const res = await pending;
    expect(res.status).toBe(502);
    expect(((await res.json()) as { message: string }).message).toMatch(/not changed: psql exited with 2/);
    const after = await row();
    expect(await t.deps.secretBox.decrypt(after?.dbPassEncrypted as string, dbPassAad(ref))).toBe(TEST_DB_PASS);
    const [audit] = await t.deps.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, "project.db_password.reset"), eq(auditLog.projectRef, ref)));
    expect(audit?.outcome).toBe("failure");
  });
});
