import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jobs } from "../../db/schema.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { capacity, FakeConnection, type JoinedHost, joinHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { enqueueJob, type JobKindHandler, type JobRow, loseExpiredJobs, registerJobKind } from "./jobs.js";

/** Durable jobs delivered through a real HostSession (in-memory transport) on real PostgreSQL. */

let t: TestApp;
let admin: TestUser;
let host: JoinedHost;
const seen: { event: "result" | "lost"; job: JobRow; detail: unknown }[] = [];

const handler: JobKindHandler = {
  async onResult(_deps, job, result) {
    seen.push({ event: "result", job, detail: result });
  },
  async onLost(_deps, job, reason) {
    seen.push({ event: "lost", job, detail: reason });
  },
};
registerJobKind("test-kind", handler);

beforeEach(async () => {
  seen.length = 0;
  t = await createTestApp({ SUPAMANAGER_ALLOW_SIGNUP: "true" });
  admin = await signUpAndLogin(t);
  host = await joinHost(t, admin);
});
afterEach(() => t.close());

async function connect(bootId: string | undefined): Promise<FakeConnection> {
  const conn = new FakeConnection(t, host.hostId);
  await conn.send({
    type: "hello",
    agentVersion: "test",
    hostname: "fake",
    compose: "v1",
    capacity: capacity(),
    inventory: [],
    ...(bootId ? { bootId } : {}),
  });
  return conn;
}

async function enqueue(key?: string): Promise<JobRow> {
  return enqueueJob(t.deps.database.db, new Date(t.clock.now()), {
    hostId: host.hostId,
    kind: "test-kind",
    params: { n: 1 },
    idempotencyKey: key,
  });
}

async function row(id: string): Promise<JobRow> {
  const [r] = await t.deps.database.db.select().from(jobs).where(eq(jobs.id, id));
  if (!r) throw new Error("job row missing");
  return r;
}

describe("jobs over the agent channel", () => {
  it("sends a queued job on kick, marks it running with a lease, and records the agent's result", async () => {
    const conn = await connect("boot_a");
    const job = await enqueue();
    expect(job.status).toBe("queued");
    await t.deps.hub.kick(host.hostId);
    await conn.settle();
    const frames = conn.ofType("job");
    expect(frames.map((f) => [f.jobId, f.kind, f.params])).toEqual([[job.id, "test-kind", { n: 1 }]]);
    const running = await row(job.id);
    expect(running.status).toBe("running");
    expect(running.attempts).toBe(1);
    expect(running.leaseUntil?.getTime()).toBe(t.clock.now() + running.leaseMs);

    await conn.send({ type: "job_result", jobId: job.id, ok: true, result: { bytes: 42 } });
    const done = await row(job.id);
    expect(done.status).toBe("succeeded");
    expect(done.result).toEqual({ bytes: 42 });
    expect(seen.map((s) => [s.event, s.job.id])).toEqual([["result", job.id]]);

    // A duplicate answer (at-least-once delivery) changes nothing and calls nobody.
    await conn.send({ type: "job_result", jobId: job.id, ok: false, error: "late" });
    expect((await row(job.id)).status).toBe("succeeded");
    expect(seen).toHaveLength(1);
  });

  it("records a failure with the agent's message", async () => {
    const conn = await connect("boot_a");
    const job = await enqueue();
    await t.deps.hub.kick(host.hostId);
    await conn.settle();
    await conn.send({ type: "job_result", jobId: job.id, ok: false, error: "pg_dump: no such database" });
    const failed = await row(job.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toBe("pg_dump: no such database");
  });

  it("re-sends a running job to the same agent process after a reconnect, and fails it for a new process", async () => {
    const first = await connect("boot_a");
    const job = await enqueue();
    await t.deps.hub.kick(host.hostId);
    await first.settle();
    expect(first.ofType("job")).toHaveLength(1);

    const again = await connect("boot_a");
    expect(again.ofType("job").map((f) => f.jobId)).toEqual([job.id]);
    expect((await row(job.id)).status).toBe("running");

    const restarted = await connect("boot_b");
    expect(restarted.ofType("job")).toHaveLength(0);
    const lost = await row(job.id);
    expect(lost.status).toBe("failed");
    expect(lost.error).toMatch(/agent restarted/);
    expect(seen.map((s) => [s.event, s.job.id])).toEqual([["lost", job.id]]);
  });

  it("waits in the queue while the host is offline and goes out on connect", async () => {
    const job = await enqueue();
    await t.deps.hub.kick(host.hostId); // nobody holds the host: nothing happens, nothing is lost
    expect((await row(job.id)).status).toBe("queued");
    const conn = await connect("boot_a");
    expect(conn.ofType("job").map((f) => f.jobId)).toEqual([job.id]);
  });

  it("refuses a result for another host's job", async () => {
    const conn = await connect("boot_a");
    const job = await enqueue();
    const other = await joinHost(t, admin);
    const stranger = new FakeConnection(t, other.hostId);
    await stranger.hello();
    await stranger.send({ type: "job_result", jobId: job.id, ok: true, result: {} });
    expect(stranger.ofType("error").at(-1)?.code).toBe("unauthorized");
    expect((await row(job.id)).status).toBe("queued");
    expect(conn.ofType("job")).toHaveLength(0);
  });

  it("de-duplicates by idempotency key", async () => {
    const a = await enqueue("backup:x:1");
    const b = await enqueue("backup:x:1");
    expect(b.id).toBe(a.id);
  });

  it("fails running jobs whose lease ran out", async () => {
    const conn = await connect("boot_a");
    const job = await enqueue();
    await t.deps.hub.kick(host.hostId);
    await conn.settle();
    expect(await loseExpiredJobs(t.deps, t.deps.logger)).toBe(0);
    t.clock.advance((await row(job.id)).leaseMs / 1000 + 1);
    expect(await loseExpiredJobs(t.deps, t.deps.logger)).toBe(1);
    expect((await row(job.id)).error).toMatch(/lease/);
    expect(seen.map((s) => s.event)).toEqual(["lost"]);
  });
});
