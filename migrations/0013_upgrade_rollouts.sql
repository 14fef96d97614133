CREATE TABLE "upgrade_rollout_projects" (
	"id" serial PRIMARY KEY NOT NULL,
	"rollout_id" integer NOT NULL,
	"position" integer NOT NULL,
	"project_id" integer,
	"project_ref" text NOT NULL,
	"org_slug" text,
	"region" text NOT NULL,
	"status" text NOT NULL,
	"upgrade_id" integer,
	"error" text,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "upgrade_rollouts" (
	"id" serial PRIMARY KEY NOT NULL,
	"from_release" text NOT NULL,
	"to_release" text NOT NULL,
	"org_id" integer,
	"org_slug" text,
	"region" text,
	"parallel" integer NOT NULL,
	"allow_without_backup" boolean DEFAULT false NOT NULL,
	"status" text NOT NULL,
	"stop_reason" text,
	"lease_until" timestamp with time zone,
	"created_by" uuid,
	"created_by_email" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "upgrade_rollout_projects" ADD CONSTRAINT "upgrade_rollout_projects_rollout_id_upgrade_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."upgrade_rollouts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "upgrade_rollout_projects" ADD CONSTRAINT "upgrade_rollout_projects_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "upgrade_rollouts" ADD CONSTRAINT "upgrade_rollouts_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "upgrade_rollout_projects_position_key" ON "upgrade_rollout_projects" USING btree ("rollout_id","position");--> statement-breakpoint
CREATE INDEX "upgrade_rollout_projects_upgrade_idx" ON "upgrade_rollout_projects" USING btree ("upgrade_id");--> statement-breakpoint
CREATE INDEX "upgrade_rollouts_status_idx" ON "upgrade_rollouts" USING btree ("status");