import { eq, inArray } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { hosts } from "../../db/schema.js";
import { signUpAndLogin } from "../../test-support/factories.js";
import { capacity, enrollHost, GiB } from "../../test-support/fleet-factory.js";
import { createReplicaTestApps, type TestApp } from "../../test-support/harness.js";
import { countStatements } from "../../test-support/statements.js";
import { LivenessWrites } from "./liveness-writes.js";

/**
 * ADR 0048: heartbeats' row writes gathered into one statement per interval on Node. Liveness on
 * several replicas still holds (ADR 0034), a removed host is still disconnected by its next
 * write, and a row never moves back in time.
 */

let apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps) await a.close();
  apps = [];
});

async function twoReplicasBatched() {
  apps = await createReplicaTestApps(2, { SUPAMANAGER_ALLOW_SIGNUP: "true" });
  const [a, b] = apps;
  if (!a || !b) throw new Error("two replicas");
  // A long interval: the test decides when a batch is written (flush()).
  const batch = new LivenessWrites(a.deps, { flushMs: 60_000 });
  a.hub.livenessWrites = batch;
  const admin = await signUpAndLogin(a);
  const statusOnB = async (hostId: string) => {
    const res = await b.request("/platform/fleet/hosts", { token: admin.token });
    expect(res.status).toBe(200);
    return ((await res.json()) as { id: string; status: string }[]).find((h) => h.id === hostId)?.status;
  };
  const advance = (seconds: number) => {
    a.clock.advance(seconds);
    b.clock.advance(seconds);
  };
  return { a, b, admin, batch, statusOnB, advance };
}

const lastSeen = async (t: TestApp, ids: string[]) =>
  new Map(
    (
      await t.deps.database.db
        .select({ id: hosts.id, at: hosts.lastSeenAt, free: hosts.memFreeBytes })
        .from(hosts)
        .where(inArray(hosts.id, ids))
    ).map((r) => [r.id, r]),
  );

describe("liveness writes in batches", () => {
  it("many hosts' heartbeats are one statement; a removed host is not written and is disconnected", async () => {
    const { a, admin, batch, advance } = await twoReplicasBatched();
    const fleet = [];
    for (let i = 0; i < 3; i++) fleet.push(await enrollHost(a, admin, { hostname: `h${i}`, memTotalBytes: 16 * GiB }));
    const [kept, other, removed] = fleet;
    if (!kept || !other || !removed) throw new Error("three hosts");
    await a.deps.database.db
      .update(hosts)
      .set({ removedAt: new Date(a.clock.now()) })
      .where(eq(hosts.id, removed.hostId));
    advance(30); // past the write interval: every beat writes
    for (const h of fleet) {
      await h.conn.send({ type: "heartbeat", capacity: capacity(4 * GiB, { memTotalBytes: 16 * GiB }) });
    }
    // The frames were handled without a statement of their own: the rows wait for the batch.
    expect(batch.pending).toBe(3);
    const { statements } = await countStatements(() => batch.flush());
    expect(statements.filter((s) => s.trim().startsWith("update hosts"))).toHaveLength(1);
    expect(statements).toHaveLength(1);
    const rows = await lastSeen(a, [kept.hostId, other.hostId, removed.hostId]);
    expect(rows.get(kept.hostId)?.at?.getTime()).toBe(a.clock.now());
    expect(rows.get(kept.hostId)?.free).toBe(4 * GiB);
    expect(rows.get(other.hostId)?.at?.getTime()).toBe(a.clock.now());
    expect(rows.get(removed.hostId)?.at?.getTime()).toBeLessThan(a.clock.now());
    await new Promise((r) => setImmediate(r));
    expect(removed.conn.closedWith?.code).toBe(4001);
    expect(kept.conn.closedWith).toBeUndefined();
  });

  it("a row never moves back: an older batched beat does not overwrite a newer last_seen_at", async () => {
    const { a, admin, batch } = await twoReplicasBatched();
    const h = await enrollHost(a, admin);
    const [row] = [...(await lastSeen(a, [h.hostId])).values()];
    const newer = row?.at?.getTime() ?? 0;
    expect(await Promise.all([batch.write(h.hostId, capacity(), newer - 10_000), batch.flush()])).toEqual([
      true,
      undefined,
    ]);
    expect((await lastSeen(a, [h.hostId])).get(h.hostId)?.at?.getTime()).toBe(newer);
  });

  it("a host heartbeating every 15 s never reads offline on another replica, batch written a second late", async () => {
    const { a, admin, batch, statusOnB, advance } = await twoReplicasBatched();
    const h = await enrollHost(a, admin, { memTotalBytes: 16 * GiB });
    let written = 0;
    for (let i = 0; i < 20; i++) {
      advance(15);
      expect(await statusOnB(h.hostId)).toBe("online"); // the worst moment: just before the beat
      await h.conn.send({ type: "heartbeat", capacity: capacity(8 * GiB, { memTotalBytes: 16 * GiB }) });
      written += batch.pending;
      advance(1); // the flush interval, then the batch is written
      await batch.flush();
      expect(await statusOnB(h.hostId)).toBe("online");
    }
    expect(written).toBe(10); // every other beat, as without the batch (ADR 0034)
    // It stops: offline within the grace.
    advance(45);
    expect(await statusOnB(h.hostId)).toBe("offline");
  });
});
