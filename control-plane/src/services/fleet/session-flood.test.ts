import { PROTOCOL_VERSION } from "@supamanager/shared";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { capacity, enrollHost, FakeConnection, GiB } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createOrg, createProjectViaApi } from "../../test-support/projects-factory.js";
import { AGENT_FRAME_BURST, AGENT_FRAME_RATE, FrameBudget } from "./frame-budget.js";
import { CLOSE } from "./hub.js";

/**
 * A frame flood from one host (issue 14, item 11: 30,000 heartbeats slowed every user's requests).
 * What one host's frames may cost is bounded by its frame budget: a connection that runs it dry
 * is closed with 4029, the database writes of the frames before are bounded, reconnecting does not
 * refill the budget, and an agent that behaves as ours does is never limited.
 */

let t: TestApp;
let admin: TestUser;

beforeEach(async () => {
  t = await createTestApp();
  admin = await signUpAndLogin(t);
});
afterEach(async () => {
  vi.restoreAllMocks();
  await t.close();
});

/**
 * Counts the writes to hosts' rows (a trigger in the database, so prepared statements count too)
 * and the transactions run (health, applied).
 */
async function countWrites() {
  const db = t.deps.database.db;
  await db.execute(sql`create table if not exists test_host_updates (n bigint not null)`);
  await db.execute(sql`delete from test_host_updates`);
  await db.execute(sql`insert into test_host_updates values (0)`);
  await db.execute(
    sql.raw(`create or replace function test_count_host_update() returns trigger language plpgsql as
      $$ begin update test_host_updates set n = n + 1; return new; end $$`),
  );
  await db.execute(sql`drop trigger if exists test_count_host_update on hosts`);
  await db.execute(
    sql`create trigger test_count_host_update after update on hosts for each row execute function test_count_host_update()`,
  );
  const counts = {
    transactions: 0,
    async hostUpdates(): Promise<number> {
      const rows = await db.execute<{ n: string }>(sql`select n::text as n from test_host_updates`);
      return Number((rows as unknown as { rows: { n: string }[] }).rows[0]?.n);
    },
  };
  const transaction = db.transaction.bind(db);
  vi.spyOn(db, "transaction").mockImplementation(((...args: Parameters<typeof db.transaction>) => {
    counts.transactions++;
    return transaction(...args);
  }) as typeof db.transaction);
  return counts;
}

const FLOOD = 30_000;

/**
 * Send `count` frames, each once the one before was handled: the worst case for the database,
 * where every frame the budget lets through is processed before the close (frames already queued
 * when the connection closes are dropped unprocessed).
 */
async function flood(conn: FakeConnection, count: number, frame: (i: number) => string): Promise<number> {
  const started = Date.now();
  for (let i = 0; i < count; i++) await conn.session.receive(frame(i));
  return Date.now() - started;
}

describe("a frame flood from one host", () => {
  it("30,000 heartbeats: closed with 4029 after the burst, one log line, no write to the host's row", async () => {
    const host = await enrollHost(t, admin);
    await host.conn.settle();
    const writes = await countWrites();
    const heartbeat = JSON.stringify({ v: PROTOCOL_VERSION, type: "heartbeat", capacity: capacity() });
    const tookMs = await flood(host.conn, FLOOD, () => heartbeat);

    expect(host.conn.closedWith?.code).toBe(CLOSE.rateLimited);
    expect(host.conn.closedWith?.reason).toMatch(/^frame rate limit: more than 50 frames\/s \(burst 1000\)/);
    expect(Buffer.byteLength(host.conn.closedWith?.reason ?? "")).toBeLessThanOrEqual(123);
    expect(await t.deps.hub.isConnected(host.hostId)).toBe(false);
    // The hello's write is fresh and every heartbeat repeated its capacity: none wrote again.
    expect(await writes.hostUpdates()).toBe(0);
    const lines = t.logs.filter((l) => l.includes("agent frames over the rate limit"));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: "warn",
      hostId: host.hostId,
      closeCode: 4029,
      // The hello and 999 heartbeats took the burst; the next frame was refused.
      framesOnConnection: AGENT_FRAME_BURST + 1,
    });
    // Frames after the close are not even decoded: the flood costs about as much as the burst.
    expect(tookMs).toBeLessThan(5_000);
  });

  it("30,000 health frames, each handled before the next: the database sees the burst, then the close", async () => {
    const host = await enrollHost(t, admin);
    const org = await createOrg(t, admin);
    const { ref } = await createProjectViaApi(t, admin, org);
    await host.conn.settle();
    const writes = await countWrites();
    const health = (i: number) =>
      JSON.stringify({
        v: PROTOCOL_VERSION,
        type: "health",
        ref,
        // Every frame differs, so nothing could be skipped as a repeat.
        services: [{ name: "db", state: "running", health: i % 2 ? "healthy" : "starting" }],
      });
    await flood(host.conn, FLOOD, health);
    expect(host.conn.closedWith?.code).toBe(CLOSE.rateLimited);
    // One transaction per health frame the budget let through (the hello took one token).
    expect(writes.transactions).toBe(AGENT_FRAME_BURST - 1);
  });

  it("reconnecting does not refill the budget: cut at the hello until it has refilled", async () => {
    const host = await enrollHost(t, admin);
    await host.conn.settle();
    const heartbeat = JSON.stringify({ v: PROTOCOL_VERSION, type: "heartbeat", capacity: capacity() });
    for (let i = 0; i <= AGENT_FRAME_BURST; i++) void host.conn.session.receive(heartbeat);
    await host.conn.settle();
    expect(host.conn.closedWith?.code).toBe(CLOSE.rateLimited);

    const again = new FakeConnection(t, host.hostId);
    await again.hello();
    expect(again.closedWith?.code).toBe(CLOSE.rateLimited);
    expect(again.ofType("welcome")).toEqual([]);

    t.clock.advance(1); // seconds: AGENT_FRAME_RATE tokens back
    const later = new FakeConnection(t, host.hostId);
    await later.hello();
    expect(later.closedWith).toBeUndefined();
    expect(later.ofType("welcome")).toHaveLength(1);
    expect(await t.deps.hub.isConnected(host.hostId)).toBe(true);
  });

  it("other hosts keep their own budgets", async () => {
    const a = await enrollHost(t, admin);
    const b = await enrollHost(t, admin);
    const heartbeat = JSON.stringify({ v: PROTOCOL_VERSION, type: "heartbeat", capacity: capacity() });
    for (let i = 0; i <= AGENT_FRAME_BURST; i++) void a.conn.session.receive(heartbeat);
    await a.conn.settle();
    expect(a.conn.closedWith?.code).toBe(CLOSE.rateLimited);
    for (let i = 0; i < AGENT_FRAME_BURST - 10; i++) void b.conn.session.receive(heartbeat);
    await b.conn.settle();
    expect(b.conn.closedWith).toBeUndefined();
    expect(await t.deps.hub.isConnected(b.hostId)).toBe(true);
  });
});

describe("an agent that behaves is never limited", () => {
  it("heartbeats, health for its projects, applies and a burst of 1,500 RPC answers over five minutes", async () => {
    const host = await enrollHost(t, admin);
    const org = await createOrg(t, admin);
    const { ref } = await createProjectViaApi(t, admin, org);
    await host.conn.settle();
    const conn = host.conn;
    const apply = conn.ofType("apply").find((a) => a.ref === ref);
    expect(apply).toBeDefined();
    await conn.send({ type: "applied", ref, version: apply?.version, desiredState: "running", ok: true });
    const writes = await countWrites();

    // As many health frames per report as a host with PROJECTS projects sends (for one real
    // project: the budget counts frames, not projects).
    const PROJECTS = 100;
    const heartbeatSeconds = t.deps.config.fleet.heartbeatSeconds;
    const healthy = [{ name: "db", state: "running", health: "healthy" }];
    // A reconnect's resend: health for every project at once.
    for (let i = 0; i < PROJECTS; i++) void conn.send({ type: "health", ref, services: healthy });
    for (let second = 0; second < 300; second++) {
      t.clock.advance(1);
      if (second % heartbeatSeconds === 0) {
        await conn.send({ type: "heartbeat", capacity: capacity(8 * GiB - (second + 1) * 4096) });
      }
      if (second % 30 === 0) {
        for (let i = 0; i < PROJECTS; i++) void conn.send({ type: "health", ref, services: healthy });
      }
      if (second === 150) {
        // Studio opening the SQL editor and table pages for many users at once.
        conn.answerRpc = () => ({ status: 200, body: [] });
        const answers = await Promise.all(
          Array.from({ length: 1_500 }, () =>
            t.deps.hub.rpc(host.hostId, {
              ref,
              service: "gateway",
              method: "GET",
              path: "/x",
              headers: {},
              timeoutMs: 10_000,
            }),
          ),
        );
        expect(answers.every((a) => a.status === 200)).toBe(true);
      }
    }
    await conn.settle();
    expect(conn.closedWith).toBeUndefined();
    expect(await t.deps.hub.isConnected(host.hostId)).toBe(true);
    expect(t.logs.filter((l) => l.includes("over the rate limit"))).toEqual([]);
    // Every heartbeat carried a slightly different capacity (4 KiB of free memory: not a material
    // change), so the row is written once per liveness interval (ADR 0034): every other beat.
    const hostUpdates = await writes.hostUpdates();
    expect(hostUpdates).toBeGreaterThanOrEqual(Math.floor(300 / heartbeatSeconds / 2) - 1);
    expect(hostUpdates).toBeLessThanOrEqual(Math.ceil(300 / heartbeatSeconds / 2));
  }, 60_000);
});

describe("FrameBudget", () => {
  it("a 500-project reconnect at once, then an hour of a 1,200-project host's steady frames: nothing refused", () => {
    let now = 0;
    const budget = new FrameBudget(AGENT_FRAME_BURST, AGENT_FRAME_RATE, () => now);
    const PROJECTS = 1_200;
    let refused = 0;
    // A reconnect of a 500-project host, every frame at once: `applied` and `health` for each.
    for (let i = 0; i < 2 * 500; i++) if (!budget.take()) refused++;
    for (let ms = 0; ms < 3_600_000; ms += 1_000) {
      now += 1_000;
      if (ms % 15_000 === 0 && !budget.take()) refused++;
      // The 30 s report spreads over the 30 s as one frame per 20 ms.
      for (let i = 0; i < PROJECTS / 30; i++) if (!budget.take()) refused++;
    }
    expect(refused).toBe(0);
  });

  it("refills at its rate up to the burst, and a clock going back drains nothing", () => {
    let now = 1_000_000;
    const budget = new FrameBudget(10, 5, () => now);
    for (let i = 0; i < 10; i++) expect(budget.take()).toBe(true);
    expect(budget.take()).toBe(false);
    now += 1_000;
    expect(budget.tokens).toBe(5);
    now -= 10_000;
    expect(budget.tokens).toBe(5);
    now += 60_000;
    expect(budget.tokens).toBe(10);
  });
});
