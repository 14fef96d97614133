ALTER TABLE "hosts" ADD COLUMN "boot_id" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "lease_ms" integer DEFAULT 21600000 NOT NULL;