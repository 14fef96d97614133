import type { AppDeps } from "../../deps.js";

/** A host is online when it sent a frame within the offline grace (SUPAMANAGER_HOST_OFFLINE_SECONDS). */
export function isOnline(lastSeenAt: Date | null, deps: Pick<AppDeps, "clock" | "config">): boolean {
  if (lastSeenAt === null) return false;
  return deps.clock.now() - lastSeenAt.getTime() <= deps.config.fleet.hostOfflineSeconds * 1000;
}

/** The oldest last_seen_at that still counts as online. */
export function onlineCutoff(deps: Pick<AppDeps, "clock" | "config">): Date {
  return new Date(deps.clock.now() - deps.config.fleet.hostOfflineSeconds * 1000);
}
