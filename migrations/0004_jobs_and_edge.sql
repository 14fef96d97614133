CREATE TABLE "agent_rpcs" (
	"id" text PRIMARY KEY NOT NULL,
	"host_id" text NOT NULL,
	"request" jsonb,
	"result" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"claimed_at" timestamp with time zone,
	"answered_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "backup_restores" (
	"id" serial PRIMARY KEY NOT NULL,
	"backup_id" integer NOT NULL,
	"project_id" integer NOT NULL,
	"project_ref" text NOT NULL,
	"org_id" integer NOT NULL,
	"status" text NOT NULL,
	"job_id" text,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "backup_schedules" (
	"project_id" integer PRIMARY KEY NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"interval_hours" integer NOT NULL,
	"retention_count" integer,
	"retention_days" integer,
	"next_run_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "backup_targets" (
	"id" text PRIMARY KEY NOT NULL,
	"org_id" integer,
	"endpoint" text,
	"bucket" text NOT NULL,
	"prefix" text DEFAULT '' NOT NULL,
	"region" text NOT NULL,
	"force_path_style" boolean DEFAULT false NOT NULL,
	"access_key_id" text NOT NULL,
	"secret_access_key_encrypted" text NOT NULL,
	"encryption_enabled" boolean DEFAULT false NOT NULL,
	"encryption_key_encrypted" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "backups" (
	"id" serial PRIMARY KEY NOT NULL,
	"project_id" integer NOT NULL,
	"project_ref" text NOT NULL,
	"org_id" integer NOT NULL,
	"target_id" text,
	"status" text NOT NULL,
	"trigger" text NOT NULL,
	"key_prefix" text DEFAULT '' NOT NULL,
	"artifacts" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"size_bytes" bigint,
	"encrypted" boolean DEFAULT false NOT NULL,
	"job_id" text,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "boot_id" text;--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "connection_id" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "lease_ms" integer DEFAULT 21600000 NOT NULL;--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "restore_job_id" text;--> statement-breakpoint
ALTER TABLE "agent_rpcs" ADD CONSTRAINT "agent_rpcs_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_restores" ADD CONSTRAINT "backup_restores_backup_id_backups_id_fk" FOREIGN KEY ("backup_id") REFERENCES "public"."backups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_restores" ADD CONSTRAINT "backup_restores_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_restores" ADD CONSTRAINT "backup_restores_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_schedules" ADD CONSTRAINT "backup_schedules_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backup_targets" ADD CONSTRAINT "backup_targets_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backups" ADD CONSTRAINT "backups_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backups" ADD CONSTRAINT "backups_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "backups" ADD CONSTRAINT "backups_target_id_backup_targets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."backup_targets"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "agent_rpcs_created_idx" ON "agent_rpcs" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "backup_restores_status_idx" ON "backup_restores" USING btree ("status");--> statement-breakpoint
CREATE UNIQUE INDEX "backup_restores_job_key" ON "backup_restores" USING btree ("job_id");--> statement-breakpoint
CREATE UNIQUE INDEX "backup_targets_owner_key" ON "backup_targets" USING btree (coalesce("org_id", 0));--> statement-breakpoint
CREATE INDEX "backups_project_created_idx" ON "backups" USING btree ("project_id","created_at");--> statement-breakpoint
CREATE INDEX "backups_status_idx" ON "backups" USING btree ("status");--> statement-breakpoint
CREATE UNIQUE INDEX "backups_job_key" ON "backups" USING btree ("job_id");--> statement-breakpoint
CREATE UNIQUE INDEX "hosts_connection_id_key" ON "hosts" USING btree ("connection_id");