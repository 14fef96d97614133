import type { z } from "zod";
import type { ReleaseManifest } from "./manifest.js";
import { interpolate } from "./render.js";

/**
 * The `local` release: images built on the machine by `npm run images:test` (no registry is
 * reachable), see docs/test-images.md. Their tags are recipe hashes, so the release reads them
 * from images/manifest.local.json when SUPAMANAGER_LOCAL_IMAGES_FILE points at it (`imageKey`);
 * the `:local` tags here are the fallback names.
 *
 * - db: a real PostgreSQL 15 (the image's entrypoint initialises $PGDATA on first start);
 * - meta: the real postgres-meta server from npm, talking to db;
 * - gateway: an nginx stand-in for Kong, proxying /pg/ to meta.
 */
export const LOCAL_RELEASE: z.input<typeof ReleaseManifest> = {
  name: "local",
  description: "Locally built test images: PostgreSQL 15, postgres-meta, an nginx gateway",
  services: {
    db: {
      image: "supamanager/postgres:local",
      imageKey: "postgres",
      environment: {
        POSTGRES_USER: "postgres",
        POSTGRES_DB: "postgres",
        POSTGRES_PASSWORD: interpolate("POSTGRES_PASSWORD"),
      },
      ports: [{ name: "db", container: 5432 }],
      volumes: [{ name: "db-data", target: "/var/lib/postgresql/data" }],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 5 },
      required: true,
      memoryShare: 0.5,
    },
    meta: {
      image: "supamanager/postgres-meta:local",
      imageKey: "postgres-meta",
      environment: {
        PG_META_PORT: "8080",
        PG_META_DB_HOST: "db",
        PG_META_DB_PORT: "5432",
        PG_META_DB_USER: "postgres",
        PG_META_DB_NAME: "postgres",
        PG_META_DB_PASSWORD: interpolate("POSTGRES_PASSWORD"),
      },
      dependsOn: ["db"],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 5 },
      required: true,
      memoryShare: 0.3,
    },
    gateway: {
      image: "supamanager/gateway:local",
      imageKey: "gateway",
      environment: { GATEWAY_PORT: "8000", PG_META_URL: "http://meta:8080" },
      ports: [{ name: "gateway", container: 8000 }],
      health: { test: ["CMD", "supamanager-healthcheck"], intervalSeconds: 2, retries: 30, startPeriodSeconds: 2 },
      required: true,
      memoryShare: 0.2,
    },
  },
};
