import { readFile } from "node:fs/promises";
import type Docker from "dockerode";
import type { Logger } from "../log.js";

/** One image a compose file needs, and whether Compose may pull it. */
export interface ImageNeed {
  image: string;
  /** `pull_policy: never`: a locally built image (the `local` release); a registry never has it. */
  localOnly: boolean;
  services: string[];
}

/** The images of a rendered compose file (JSON), with the services that use each. */
export function imagesOf(composeFile: string): ImageNeed[] {
  let doc: unknown;
  try {
    doc = JSON.parse(composeFile);
  } catch {
    return [];
  }
  const services = (doc as { services?: Record<string, unknown> } | null)?.services;
  if (!services || typeof services !== "object") return [];
  const byImage = new Map<string, ImageNeed>();
  for (const [name, svc] of Object.entries(services)) {
    const s = svc as { image?: unknown; pull_policy?: unknown } | null;
    if (typeof s?.image !== "string") continue;
    const need = byImage.get(s.image) ?? { image: s.image, localOnly: false, services: [] };
    need.localOnly ||= s.pull_policy === "never";
    need.services.push(name);
    byImage.set(s.image, need);
  }
  return [...byImage.values()];
}

/** An image a project needs cannot be had on this host; the message says why and what to do. */
export class ImageUnavailableError extends Error {
  override readonly name = "ImageUnavailableError";
}

/** What to tell the operator about a locally built image that is not on this host. */
export function localImageMissingMessage(need: ImageNeed): string {
  return (
    `image ${need.image} (service ${need.services.join(", ")}) is not on this host. It is built locally, ` +
    "never pulled (the `local` release): build it on this host with `npm run images:test` in a " +
    "SupaManager checkout (docs/test-images.md), then restore or re-create the project"
  );
}

const UNREACHABLE =
  /no such host|dial tcp|i\/o timeout|connection refused|network is unreachable|TLS handshake timeout|Client\.Timeout|temporary failure in name resolution|EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ETIMEDOUT/i;

/**
 * What to tell the operator when pulling `image` failed: the cause (Docker's words, shortened),
 * and, when the registry could not be reached at all, the offline alternative.
 */
export function pullFailureMessage(need: ImageNeed, err: unknown): string {
  const raw = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").trim();
  // dockerode prefixes "(HTTP code 500) server error - "; the daemon's own words follow.
  const cause = raw.replace(/^\(HTTP code \d+\)[^-]*- /, "").slice(0, 300);
  const head = `cannot pull image ${need.image} (service ${need.services.join(", ")})`;
  if (UNREACHABLE.test(raw)) {
    return (
      `${head}: this host cannot reach the image's registry (${cause}). ` +
      "Hosts without registry access can run the `local` release instead: start the control plane with " +
      "SUPAMANAGER_RELEASE=local (or pick release `local` for the project) and build its images on the host " +
      "with `npm run images:test`"
    );
  }
  return `${head}: ${cause}`;
}

/**
 * Make sure every image of a compose file is on this host before `compose up`, so a failure
 * names the image and its cause instead of Compose's pull output: local-only images are never
 * pulled (a clear error when missing), any other missing image is pulled here.
 */
export async function ensureImages(docker: Docker, composeFile: string, logger: Logger): Promise<void> {
  const text = await readFile(composeFile, "utf8");
  for (const need of imagesOf(text)) {
    if (await present(docker, need.image)) continue;
    if (need.localOnly) throw new ImageUnavailableError(localImageMissingMessage(need));
    const started = Date.now();
    logger.info("pulling image", { image: need.image });
    try {
      await pull(docker, need.image);
    } catch (err) {
      throw new ImageUnavailableError(pullFailureMessage(need, err));
    }
    logger.info("pulled image", { image: need.image, ms: Date.now() - started });
  }
}

async function present(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

function pull(docker: Docker, image: string): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.pull(image, {}, (err: Error | null, stream?: NodeJS.ReadableStream) => {
      if (err || !stream) return reject(err ?? new Error("no pull stream"));
      // The stream reports a failure as a line with `error`, not as a stream error.
      docker.modem.followProgress(stream, (done: Error | null, events: Array<{ error?: string }>) => {
        const failed = events?.find((e) => e.error);
        if (done) reject(done);
        else if (failed?.error) reject(new Error(failed.error));
        else resolve();
      });
    });
  });
}
