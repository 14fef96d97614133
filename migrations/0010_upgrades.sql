CREATE TABLE "project_upgrades" (
	"id" serial PRIMARY KEY NOT NULL,
	"project_id" integer NOT NULL,
	"project_ref" text NOT NULL,
	"org_id" integer NOT NULL,
	"from_release" text NOT NULL,
	"to_release" text NOT NULL,
	"status" text NOT NULL,
	"step" text NOT NULL,
	"backup_id" integer,
	"job_id" text,
	"error" text,
	"report" jsonb,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "upgrade_id" integer;--> statement-breakpoint
ALTER TABLE "project_upgrades" ADD CONSTRAINT "project_upgrades_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "project_upgrades" ADD CONSTRAINT "project_upgrades_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "project_upgrades" ADD CONSTRAINT "project_upgrades_backup_id_backups_id_fk" FOREIGN KEY ("backup_id") REFERENCES "public"."backups"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "project_upgrades_project_idx" ON "project_upgrades" USING btree ("project_id","created_at");--> statement-breakpoint
CREATE INDEX "project_upgrades_status_idx" ON "project_upgrades" USING btree ("status");--> statement-breakpoint
CREATE UNIQUE INDEX "project_upgrades_job_key" ON "project_upgrades" USING btree ("job_id");