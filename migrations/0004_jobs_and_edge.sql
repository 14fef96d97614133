CREATE TABLE "agent_rpcs" (
	"id" text PRIMARY KEY NOT NULL,
	"host_id" text NOT NULL,
	"request" jsonb,
	"result" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"answered_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "boot_id" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "lease_ms" integer DEFAULT 21600000 NOT NULL;--> statement-breakpoint
ALTER TABLE "agent_rpcs" ADD CONSTRAINT "agent_rpcs_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "agent_rpcs_created_idx" ON "agent_rpcs" USING btree ("created_at");