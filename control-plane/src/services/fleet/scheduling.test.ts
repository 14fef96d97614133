import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { portReservations, projects } from "../../db/schema.js";
import { LOCAL_RELEASE } from "../../releases/local.js";
import { ReleaseManifest } from "../../releases/manifest.js";
import { releasePorts } from "../../releases/render.js";
import { signUpAndLogin, type TestUser } from "../../test-support/factories.js";
import { enrollHost, GiB, joinHost } from "../../test-support/fleet-factory.js";
import { createTestApp, type TestApp } from "../../test-support/harness.js";
import { createOrg, TEST_DB_PASS, type TestOrg } from "../../test-support/projects-factory.js";

/** Ports one project of the default (local) release reserves; the test range holds five projects. */
const PORTS_PER_PROJECT = releasePorts(ReleaseManifest.parse(LOCAL_RELEASE)).length;
const RANGE_SIZE = 5 * PORTS_PER_PROJECT;

let t: TestApp;
let admin: TestUser;
let org: TestOrg;

beforeEach(async () => {
  t = await createTestApp({ SUPAMANAGER_PORT_RANGE: `40000-${40000 + RANGE_SIZE - 1}` });
  admin = await signUpAndLogin(t);
  org = await createOrg(t, admin);
});
afterEach(async () => {
  await t.close();
});

const create = (json: Record<string, unknown> = {}) =>
  t.request("/platform/projects", {
    method: "POST",
    token: admin.token,
    json: { name: "P", organization_slug: org.slug, db_pass: TEST_DB_PASS, ...json },
  });

async function hostOf(res: Response): Promise<string | null> {
  expect(res.status, await res.clone().text()).toBe(201);
  const { ref } = (await res.json()) as { ref: string };
  const [row] = await t.deps.database.db.select().from(projects).where(eq(projects.ref, ref));
  return row?.hostId ?? null;
}

describe("placement", () => {
  it("picks the host with the most free capacity after its projects' compute sizes and the host reserve", async () => {
    // Free capacity = total − promised − 1 GiB reserve: 4 and 3 GiB. The current free memory does not count.
    const big = await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 5 * GiB, memFreeBytes: 1 * GiB });
    const small = await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 4 * GiB, memFreeBytes: 4 * GiB });
    expect(await hostOf(await create({ db_region: "eu-1", desired_instance_size: "small" }))).toBe(big.hostId); // big: 4-2=2 GiB left
    expect(await hostOf(await create({ db_region: "eu-1" }))).toBe(small.hostId); // small 3 > big 2
    expect(await hostOf(await create({ db_region: "eu-1" }))).toBe(small.hostId); // small 2.5 > 2
    // Both now have 2 GiB left; a 1 GiB project on either makes the other the better choice.
    const fourth = await hostOf(await create({ db_region: "eu-1", desired_instance_size: "micro" }));
    const other = fourth === big.hostId ? small.hostId : big.hostId;
    expect(await hostOf(await create({ db_region: "eu-1" }))).toBe(other);
  });

  it("refuses to overcommit a host: 409 naming the region's best free capacity, nothing created", async () => {
    const host = await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 24 * GiB, memFreeBytes: 20 * GiB });
    expect(await hostOf(await create({ db_region: "eu-1", desired_instance_size: "xlarge" }))).toBe(host.hostId);
    // 24 − 16 − 1 (reserve) = 7 GiB left: a second xlarge (16 GiB) does not fit.
    const refused = await create({ db_region: "eu-1", desired_instance_size: "xlarge" });
    expect(refused.status).toBe(409);
    const { message } = (await refused.json()) as { message: string };
    expect(message).toMatch(/No host in region eu-1 has 16384 MiB free for a xlarge project/);
    expect(message).toContain("the most free capacity in region eu-1 is 7168 MiB");
    expect(message).toContain(host.hostId);
    expect(await t.deps.database.db.select().from(projects)).toHaveLength(1);
    // What fits still goes there: a large (8 GiB) does not, a medium (4 GiB) does.
    expect((await create({ db_region: "eu-1", desired_instance_size: "large" })).status).toBe(409);
    expect(await hostOf(await create({ db_region: "eu-1", desired_instance_size: "medium" }))).toBe(host.hostId);
    // Without a region, the message speaks of every region.
    const anywhere = await create({ desired_instance_size: "xlarge" });
    expect(anywhere.status).toBe(409);
    expect(((await anywhere.json()) as { message: string }).message).toMatch(
      /most free capacity in any region is 3072 MiB/,
    );
  });

  it("skips cordoned, draining and offline hosts, and other regions", async () => {
    const best = await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 12 * GiB });
    const cordoned = await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 11 * GiB });
    const draining = await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 10 * GiB });
    await enrollHost(t, admin, { region: "us-1", memTotalBytes: 64 * GiB });
    const fallback = await enrollHost(t, admin, { region: "eu-1", memTotalBytes: 2 * GiB });
    await t.request(`/platform/fleet/hosts/${cordoned.hostId}/cordon`, { method: "POST", token: admin.token });
    await t.request(`/platform/fleet/hosts/${draining.hostId}/drain`, { method: "POST", token: admin.token });
    expect(await hostOf(await create({ db_region: "eu-1" }))).toBe(best.hostId);
    // Time passes; only `fallback` keeps sending heartbeats.
    t.clock.advance(40);
    await fallback.conn.send({
      type: "heartbeat",
      capacity: { cpus: 2, memTotalBytes: 4 * GiB, memFreeBytes: 2 * GiB, load1: 0 },
    });
    t.clock.advance(10);
    expect(await hostOf(await create({ db_region: "eu-1" }))).toBe(fallback.hostId);
  });

  it("answers 409 naming the region when no host can take the project, and 400 for unknown regions", async () => {
    const res = await create({ db_region: "eu-1" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/no host is enrolled yet/);
    await joinHost(t, admin, "eu-1"); // enrolled, never connected: offline
    const none = await create({ db_region: "eu-1" });
    expect(none.status).toBe(409);
    expect(((await none.json()) as { message: string }).message).toMatch(/No online host in region eu-1/);
    const unknown = await create({ db_region: "mars-1" });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { message: string }).message).toMatch(/valid regions: eu-1/);
    expect(await t.deps.database.db.select().from(projects)).toHaveLength(0);
  });
});

describe("ports", () => {
  it("reserves distinct ports per host from the range, and answers 409 when it runs out", async () => {
    const h = await enrollHost(t, admin, { memFreeBytes: 64 * GiB });
    for (let i = 0; i < 5; i++) expect(await hostOf(await create())).toBe(h.hostId); // 5 projects fill the range
    const rows = await t.deps.database.db.select().from(portReservations).where(eq(portReservations.hostId, h.hostId));
    expect(rows).toHaveLength(RANGE_SIZE);
    expect(new Set(rows.map((r) => r.port)).size).toBe(RANGE_SIZE);
    for (const r of rows) expect(r.port).toBeGreaterThanOrEqual(40000);
    const full = await create();
    expect(full.status).toBe(409);
    expect(((await full.json()) as { message: string }).message).toMatch(/No free port/);
  });

  it("stays unique under concurrent creates", async () => {
    await enrollHost(t, admin, { memFreeBytes: 64 * GiB });
    const results = await Promise.all(Array.from({ length: 4 }, () => create()));
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    const rows = await t.deps.database.db.select().from(portReservations);
    expect(new Set(rows.map((r) => r.port)).size).toBe(rows.length);
  });
});
