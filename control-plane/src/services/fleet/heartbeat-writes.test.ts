import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { hosts } from "../../db/schema.js";
import { signUpAndLogin } from "../../test-support/factories.js";
import { capacity, enrollHost, GiB } from "../../test-support/fleet-factory.js";
import { createReplicaTestApps, type TestApp } from "../../test-support/harness.js";
import { countStatements } from "../../test-support/statements.js";
import { capacityMoved, LIVENESS_MARGIN_SECONDS, livenessWriteMs } from "./session.js";

/**
 * ADR 0034: heartbeats write the host's row only when its capacity moved or its last_seen_at is
 * getting old, and "offline after SUPAMANAGER_HOST_OFFLINE_SECONDS" still holds on every replica:
 * a host that keeps heartbeating never reads offline on a replica that does not hold its socket,
 * and one that stops reads offline there within the grace.
 */

let apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps) await a.close();
  apps = [];
});

async function twoReplicas() {
  apps = await createReplicaTestApps(2, { SUPAMANAGER_ALLOW_SIGNUP: "true" });
  const [a, b] = apps;
  if (!a || !b) throw new Error("two replicas");
  const admin = await signUpAndLogin(a);
  const host = await enrollHost(a, admin, { memFreeBytes: 8 * GiB, memTotalBytes: 16 * GiB });
  await host.conn.settle();
  /** What replica b (which does not hold the socket) says about the host. */
  const statusOnB = async () => {
    const res = await b.request("/platform/fleet/hosts", { token: admin.token });
    expect(res.status).toBe(200);
    const list = (await res.json()) as { id: string; status: string }[];
    return list.find((h) => h.id === host.hostId)?.status;
  };
  const advance = (seconds: number) => {
    a.clock.advance(seconds);
    b.clock.advance(seconds);
  };
  const beat = (memFreeBytes = 8 * GiB) =>
    host.conn.send({ type: "heartbeat", capacity: capacity(memFreeBytes, { memTotalBytes: 16 * GiB }) });
  return { a, b, host, statusOnB, advance, beat };
}

const hostWrites = (statements: string[]) => statements.filter((s) => s.startsWith('update "hosts"')).length;

describe("heartbeat writes", () => {
  it("the write interval leaves the margin under the offline grace, and every beat writes when there is no room", () => {
    expect(livenessWriteMs({ hostOfflineSeconds: 45, heartbeatSeconds: 15 })).toBe(25_000);
    expect(livenessWriteMs({ hostOfflineSeconds: 60, heartbeatSeconds: 5 })).toBe(50_000);
    for (const fleet of [
      { hostOfflineSeconds: 45, heartbeatSeconds: 15 },
      { hostOfflineSeconds: 60, heartbeatSeconds: 5 },
      { hostOfflineSeconds: 20, heartbeatSeconds: 15 },
    ]) {
      const w = livenessWriteMs(fleet) / 1000;
      // A live host's row is at most w + H old: under the grace, or every regular beat writes.
      expect(
        w + fleet.heartbeatSeconds + LIVENESS_MARGIN_SECONDS <= fleet.hostOfflineSeconds || w < fleet.heartbeatSeconds,
      ).toBe(true);
    }
  });

  it("a host heartbeating every 15 s is written every other beat and never reads offline on another replica", async () => {
    const { host, statusOnB, advance, beat } = await twoReplicas();
    expect(await statusOnB()).toBe("online");
    const beats = 20; // five minutes
    let writes = 0;
    for (let i = 0; i < beats; i++) {
      advance(15);
      expect(await statusOnB()).toBe("online"); // the worst moment: just before the beat
      writes += hostWrites((await countStatements(() => beat())).statements);
      expect(await statusOnB()).toBe("online");
    }
    expect(writes).toBe(beats / 2);
    expect(host.conn.closedWith).toBeUndefined();
  });

  it("a host that stops heartbeating reads offline on another replica within the grace", async () => {
    const { statusOnB, advance, beat } = await twoReplicas();
    for (let i = 0; i < 3; i++) {
      advance(15);
      await beat();
    }
    // The last beat may not have been written; the row is at most one write interval older.
    advance(45);
    expect(await statusOnB()).toBe("offline");
  });

  it("when the connection ends, its last heartbeat is written: offline exactly a grace after it", async () => {
    const { a, host, statusOnB, advance, beat } = await twoReplicas();
    advance(15);
    await beat(); // 15 s after the hello's write: under the write interval, so not written
    const [before] = await a.deps.database.db
      .select({ at: hosts.lastSeenAt })
      .from(hosts)
      .where(eq(hosts.id, host.hostId));
    expect(before?.at?.getTime()).toBeLessThan(a.clock.now()); // skipped: the row is older
    const lastBeat = a.clock.now();
    host.conn.session.closed();
    await new Promise((r) => setTimeout(r, 200));
    const [after] = await a.deps.database.db
      .select({ at: hosts.lastSeenAt })
      .from(hosts)
      .where(eq(hosts.id, host.hostId));
    expect(after?.at?.getTime()).toBe(lastBeat);
    advance(44);
    expect(await statusOnB()).toBe("online");
    advance(2);
    expect(await statusOnB()).toBe("offline");
  });

  it("a material capacity change is written at once; noise is not", async () => {
    const { advance, beat } = await twoReplicas();
    advance(15);
    expect(hostWrites((await countStatements(() => beat(8 * GiB + 1024))).statements)).toBe(0);
    advance(15);
    expect(hostWrites((await countStatements(() => beat(2 * GiB))).statements)).toBe(1);
    const base = capacity(8 * GiB, { memTotalBytes: 16 * GiB });
    expect(capacityMoved(base, { ...base, cpus: base.cpus + 1 })).toBe(true);
    expect(capacityMoved(base, { ...base, load1: base.load1 + 0.5 })).toBe(false);
    expect(capacityMoved(base, { ...base, load1: base.load1 + 1 })).toBe(true);
  });
});
