import { ApiError } from "../../errors.js";
import type { ReleaseManifest } from "../../releases/manifest.js";

/**
 * The Supabase services Studio's pages need, with the Compose service names a release may give
 * them (the official bundle's names first, then older or stand-in ones).
 */
export const STACK_SERVICES = {
  db: { label: "Database (PostgreSQL)", names: ["db"] },
  gateway: { label: "API gateway", names: ["kong", "api-gw", "gateway"] },
  auth: { label: "Auth (GoTrue)", names: ["auth"] },
  rest: { label: "Data API (PostgREST)", names: ["rest"] },
  storage: { label: "Storage", names: ["storage"] },
  realtime: { label: "Realtime", names: ["realtime"] },
  functions: { label: "Edge Functions (edge-runtime)", names: ["functions"] },
  pooler: { label: "connection pooler (Supavisor)", names: ["supavisor"] },
} as const;

export type StackService = keyof typeof STACK_SERVICES;

/** The Compose service of the release that plays `service`, if it runs one. */
export function releaseService(release: ReleaseManifest, service: StackService): string | undefined {
  return STACK_SERVICES[service].names.find((n) => release.services[n] !== undefined);
}

/**
 * The Compose service of the release that plays `service`, or a 409 that says which release lacks
 * which service and what the page cannot do without it (ADR 0028): Studio shows a 4xx's `message`
 * and does not retry it, where a 5xx would be retried and read as an outage.
 */
export function requireReleaseService(release: ReleaseManifest, service: StackService, needFor: string): string {
  const name = releaseService(release, service);
  if (name !== undefined) return name;
  throw new ApiError(
    "conflict",
    `This project's release (${release.name}) does not run the ${STACK_SERVICES[service].label} service, so ${needFor} is not available. Projects on a release with that service have it.`,
  );
}
