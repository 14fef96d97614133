import {
  type Capacity,
  decodeServerFrame,
  type InventoryItem,
  PROTOCOL_VERSION,
  prefixedId,
  type Rpc,
  type ServerFrame,
} from "@supamanager/shared";
import { and, eq, gte, isNull } from "drizzle-orm";
import { expect } from "vitest";
import { hosts } from "../db/schema.js";
import { HostSession } from "../services/fleet/session.js";
import type { TestUser } from "./factories.js";
import type { TestApp } from "./harness.js";

/** Fleet fixtures: hosts enrolled through the real join endpoint, or inserted for unrelated tests. */

export const GiB = 1024 * 1024 * 1024;

export function capacity(memFreeBytes = 8 * GiB, extra: Partial<Capacity> = {}): Capacity {
  return { cpus: 4, memTotalBytes: 16 * GiB, memFreeBytes, memReservedBytes: 0, load1: 0.1, ...extra };
}

export interface JoinedHost {
  hostId: string;
  credential: string;
  region: string;
}

/** Create a join token as `admin` (must be the instance admin). */
export async function createJoinToken(
  t: TestApp,
  admin: TestUser,
  body: Record<string, unknown> = { region: "local" },
): Promise<string> {
  const res = await t.request("/platform/fleet/join-tokens", { method: "POST", token: admin.token, json: body });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

/** Enroll a host through POST /platform/fleet/join-tokens + POST /agent/v1/join. */
export async function joinHost(
  t: TestApp,
  admin: TestUser,
  region = "local",
  hostname = `host-${Math.random().toString(36).slice(2, 8)}`,
): Promise<JoinedHost> {
  const token = await createJoinToken(t, admin, { region });
  const res = await t.request("/agent/v1/join", { method: "POST", json: { token, hostname } });
  expect(res.status, await res.clone().text()).toBe(201);
  const body = (await res.json()) as { host_id: string; credential: string; region: string };
  return { hostId: body.host_id, credential: body.credential, region: body.region };
}

/** A HostSession over an in-memory transport: what the control plane sent, decoded. */
export class FakeConnection {
  readonly sent: ServerFrame[] = [];
  closedWith: { code: number; reason: string } | undefined;
  readonly session: HostSession;
  /**
   * When set, every `rpc` frame the control plane sends is answered (on the next tick) with an
   * `rpc_result` carrying what this returns; null leaves the rpc unanswered.
   */
  answerRpc: ((rpc: Rpc) => Record<string, unknown> | null) | undefined;

  constructor(t: TestApp, hostId: string) {
    this.session = new HostSession(
      t.deps,
      hostId,
      {
        send: (text) => {
          const d = decodeServerFrame(text);
          if (!d.ok) throw new Error(`control plane sent an invalid frame: ${d.error.message}`);
          const frame = d.frame;
          this.sent.push(frame);
          const answer = frame.type === "rpc" ? this.answerRpc?.(frame) : null;
          if (frame.type === "rpc" && answer) {
            setImmediate(() => void this.send({ type: "rpc_result", id: frame.id, ...answer }));
          }
        },
        close: (code, reason) => {
          this.closedWith = { code, reason };
          this.session.closed();
        },
      },
      t.hub,
    );
  }

  send(frame: Record<string, unknown>): Promise<void> {
    return this.session.receive(JSON.stringify({ v: PROTOCOL_VERSION, ...frame }));
  }

  hello(memFreeBytes = 8 * GiB, inventory: InventoryItem[] = [], extra: Partial<Capacity> = {}): Promise<void> {
    return this.send({
      type: "hello",
      agentVersion: "test-0.1.0",
      hostname: "fake",
      compose: "v1",
      capacity: capacity(memFreeBytes, extra),
      inventory,
    });
  }

  /** Wait until queued work (kicks) has run. */
  async settle(): Promise<void> {
    await this.session.idle();
  }

  ofType<T extends ServerFrame["type"]>(type: T): Extract<ServerFrame, { type: T }>[] {
    return this.sent.filter((f): f is Extract<ServerFrame, { type: T }> => f.type === type);
  }
}

/** Enroll through the API and say hello through a real HostSession (so capacity and last_seen_at are real). */
export async function enrollHost(
  t: TestApp,
  admin: TestUser,
  opts: { region?: string; memFreeBytes?: number; memTotalBytes?: number; hostname?: string } = {},
): Promise<JoinedHost & { conn: FakeConnection }> {
  const joined = await joinHost(t, admin, opts.region ?? "local", opts.hostname);
  const conn = new FakeConnection(t, joined.hostId);
  await conn.hello(
    opts.memFreeBytes ?? 8 * GiB,
    [],
    opts.memTotalBytes === undefined ? {} : { memTotalBytes: opts.memTotalBytes },
  );
  return { ...joined, conn };
}

/**
 * An online host row in `region`, inserted directly (for tests about something else that just
 * need somewhere to place projects). Does nothing when one is already online there.
 */
export async function ensureHost(t: TestApp, region = "local"): Promise<string> {
  const db = t.deps.database.db;
  const cutoff = new Date(t.clock.now() - t.deps.config.fleet.hostOfflineSeconds * 1000);
  const [existing] = await db
    .select({ id: hosts.id })
    .from(hosts)
    .where(
      and(
        eq(hosts.region, region),
        isNull(hosts.removedAt),
        eq(hosts.cordoned, false),
        eq(hosts.draining, false),
        gte(hosts.lastSeenAt, cutoff),
      ),
    )
    .limit(1);
  if (existing) return existing.id;
  const id = prefixedId("host");
  await db.insert(hosts).values({
    id,
    name: `test-${region}`,
    region,
    credentialHash: `test-${id}`,
    cpus: 4,
    memTotalBytes: 16 * GiB,
    memFreeBytes: 8 * GiB,
    memReservedBytes: 0,
    load1: "0",
    lastSeenAt: new Date(t.clock.now()),
    createdAt: new Date(t.clock.now()),
  });
  return id;
}
