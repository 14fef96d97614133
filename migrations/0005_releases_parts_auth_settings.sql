CREATE TABLE "project_auth_settings" (
	"project_ref" text PRIMARY KEY NOT NULL,
	"settings" jsonb NOT NULL,
	"smtp_pass_encrypted" text,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "projects" ADD COLUMN "parts" jsonb;--> statement-breakpoint
ALTER TABLE "project_auth_settings" ADD CONSTRAINT "project_auth_settings_project_ref_projects_ref_fk" FOREIGN KEY ("project_ref") REFERENCES "public"."projects"("ref") ON DELETE cascade ON UPDATE no action;