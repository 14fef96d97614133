CREATE TABLE "project_secrets" (
	"project_ref" text NOT NULL,
	"name" text NOT NULL,
	"value_encrypted" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "project_secrets_project_ref_name_pk" PRIMARY KEY("project_ref","name")
);
--> statement-breakpoint
CREATE TABLE "user_content" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"project_id" integer NOT NULL,
	"owner_id" integer NOT NULL,
	"updated_by" integer,
	"folder_id" uuid,
	"type" text NOT NULL,
	"visibility" text NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"content" jsonb NOT NULL,
	"favorite" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_content_type_check" CHECK ("user_content"."type" in ('sql', 'report', 'log_sql')),
	CONSTRAINT "user_content_visibility_check" CHECK ("user_content"."visibility" in ('user', 'project'))
);
--> statement-breakpoint
CREATE TABLE "user_content_folders" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"project_id" integer NOT NULL,
	"owner_id" integer NOT NULL,
	"parent_id" uuid,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "project_secrets" ADD CONSTRAINT "project_secrets_project_ref_projects_ref_fk" FOREIGN KEY ("project_ref") REFERENCES "public"."projects"("ref") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_content" ADD CONSTRAINT "user_content_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_content" ADD CONSTRAINT "user_content_owner_id_profiles_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."profiles"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_content" ADD CONSTRAINT "user_content_updated_by_profiles_id_fk" FOREIGN KEY ("updated_by") REFERENCES "public"."profiles"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_content" ADD CONSTRAINT "user_content_folder_id_user_content_folders_id_fk" FOREIGN KEY ("folder_id") REFERENCES "public"."user_content_folders"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_content_folders" ADD CONSTRAINT "user_content_folders_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_content_folders" ADD CONSTRAINT "user_content_folders_owner_id_profiles_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."profiles"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_content_folders" ADD CONSTRAINT "user_content_folders_parent_id_user_content_folders_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."user_content_folders"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "user_content_project_owner_idx" ON "user_content" USING btree ("project_id","owner_id");--> statement-breakpoint
CREATE INDEX "user_content_project_visibility_idx" ON "user_content" USING btree ("project_id","visibility");--> statement-breakpoint
CREATE INDEX "user_content_folder_idx" ON "user_content" USING btree ("folder_id");--> statement-breakpoint
CREATE INDEX "user_content_folders_project_owner_idx" ON "user_content_folders" USING btree ("project_id","owner_id");