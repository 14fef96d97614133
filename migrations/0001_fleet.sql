CREATE TABLE "hosts" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"region" text NOT NULL,
	"credential_hash" text,
	"bind_address" text DEFAULT '127.0.0.1' NOT NULL,
	"agent_version" text,
	"compose" text,
	"cpus" integer,
	"mem_total_bytes" bigint,
	"mem_free_bytes" bigint,
	"mem_reserved_bytes" bigint,
	"load1" text,
	"last_seen_at" timestamp with time zone,
	"cordoned" boolean DEFAULT false NOT NULL,
	"draining" boolean DEFAULT false NOT NULL,
	"removed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"project_ref" text,
	"host_id" text,
	"kind" text NOT NULL,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"lease_until" timestamp with time zone,
	"idempotency_key" text,
	"result" jsonb,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "join_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"region" text NOT NULL,
	"uses_remaining" integer NOT NULL,
	"created_by" uuid,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "port_reservations" (
	"host_id" text NOT NULL,
	"port" integer NOT NULL,
	"project_ref" text NOT NULL,
	"service" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "port_reservations_host_id_port_pk" PRIMARY KEY("host_id","port")
);
--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "host_id" text;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "release" text DEFAULT 'local' NOT NULL;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "applied_version" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "restart_nonce" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "health" jsonb;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "health_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "paused_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "join_tokens" ADD CONSTRAINT "join_tokens_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "port_reservations" ADD CONSTRAINT "port_reservations_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "hosts_credential_hash_key" ON "hosts" USING btree ("credential_hash");--> statement-breakpoint
CREATE INDEX "hosts_region_idx" ON "hosts" USING btree ("region");--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_idempotency_key" ON "jobs" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "jobs_host_status_idx" ON "jobs" USING btree ("host_id","status");--> statement-breakpoint
CREATE UNIQUE INDEX "join_tokens_token_hash_key" ON "join_tokens" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "port_reservations_project_idx" ON "port_reservations" USING btree ("project_ref");--> statement-breakpoint
ALTER TABLE "projects" ADD CONSTRAINT "projects_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "projects_host_idx" ON "projects" USING btree ("host_id");