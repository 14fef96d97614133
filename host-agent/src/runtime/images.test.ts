import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryLogger } from "../log.js";
import { ensureBusyboxImage } from "../test-support/busybox-image.js";
import {
  ensureImages,
  ImageUnavailableError,
  imagesOf,
  localImageMissingMessage,
  pullFailureMessage,
} from "./images.js";

const compose = (services: Record<string, { image: string; pull_policy?: string }>) => JSON.stringify({ services });

describe("imagesOf", () => {
  it("lists each image once with its services and whether it is local-only", () => {
    const text = compose({
      db: { image: "supamanager/postgres:local", pull_policy: "never" },
      meta: { image: "supabase/postgres-meta:v0.99.0" },
      meta2: { image: "supabase/postgres-meta:v0.99.0" },
    });
    expect(imagesOf(text)).toEqual([
      { image: "supamanager/postgres:local", localOnly: true, services: ["db"] },
      { image: "supabase/postgres-meta:v0.99.0", localOnly: false, services: ["meta", "meta2"] },
    ]);
  });

  it("reads nothing from a file that is not a compose JSON document", () => {
    expect(imagesOf("services: {}")).toEqual([]);
    expect(imagesOf("null")).toEqual([]);
  });
});

describe("messages", () => {
  const need = { image: "supabase/gotrue:v2.180.0", localOnly: false, services: ["auth"] };

  it("names the image, the cause and the offline alternative when the registry is unreachable", () => {
    const err = new Error(
      '(HTTP code 500) server error - Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.0.0.2:53: no such host',
    );
    const msg = pullFailureMessage(need, err);
    expect(msg).toContain("cannot pull image supabase/gotrue:v2.180.0 (service auth)");
    expect(msg).toContain("cannot reach the image's registry");
    expect(msg).toContain("lookup registry-1.docker.io");
    expect(msg).toContain("SUPAMANAGER_RELEASE=local");
    expect(msg).not.toContain("HTTP code 500");
  });

  it("passes any other pull failure on without the offline advice", () => {
    const msg = pullFailureMessage(need, new Error("(HTTP code 404) unexpected - manifest unknown"));
    expect(msg).toBe("cannot pull image supabase/gotrue:v2.180.0 (service auth): manifest unknown");
  });

  it("tells how to build a missing local image", () => {
    const msg = localImageMissingMessage({
      image: "supamanager/gateway:local",
      localOnly: true,
      services: ["gateway"],
    });
    expect(msg).toContain("supamanager/gateway:local");
    expect(msg).toContain("npm run images:test");
  });
});

const dockerUp = spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
const inCi = process.env.CI === "true";

describe.skipIf(!dockerUp && !inCi)("ensureImages on a real engine", () => {
  const docker = new Docker();
  let dir: string;
  let busybox: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "agent-images-"));
    busybox = await ensureBusyboxImage();
  }, 300_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function ensure(services: Record<string, { image: string; pull_policy?: string }>) {
    const file = join(dir, `compose-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, compose(services));
    return ensureImages(docker, file, memoryLogger());
  }

  it("accepts images that are on the host, local-only or not", async () => {
    await expect(ensure({ a: { image: busybox, pull_policy: "never" }, b: { image: busybox } })).resolves.toBe(
      undefined,
    );
  });

  it("never pulls a missing local-only image and says how to build it", async () => {
    const err = await ensure({ db: { image: "supamanager/does-not-exist:local", pull_policy: "never" } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImageUnavailableError);
    expect((err as Error).message).toContain("npm run images:test");
  });

  it("fails a pull from an unreachable registry with the cause and the offline alternative", {
    timeout: 60_000,
  }, async () => {
    // .invalid never resolves (RFC 2606): the daemon's DNS lookup fails, as for any registry here.
    const err = await ensure({ auth: { image: "registry.invalid/supabase/gotrue:v2" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageUnavailableError);
    const msg = (err as Error).message;
    expect(msg).toContain("cannot pull image registry.invalid/supabase/gotrue:v2 (service auth)");
    expect(msg).toContain("SUPAMANAGER_RELEASE=local");
  });
});
