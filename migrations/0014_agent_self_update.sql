ALTER TABLE "hosts" ADD COLUMN "agent_protocol" integer;--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "agent_update_failure" jsonb;