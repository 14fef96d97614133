CREATE TABLE "edge_function_secrets" (
	"project_ref" text NOT NULL,
	"name" text NOT NULL,
	"value_encrypted" text NOT NULL,
	"digest" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "edge_function_secrets_project_ref_name_pk" PRIMARY KEY("project_ref","name")
);
--> statement-breakpoint
CREATE TABLE "edge_functions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"project_ref" text NOT NULL,
	"slug" text NOT NULL,
	"name" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"verify_jwt" boolean DEFAULT true NOT NULL,
	"entrypoint_path" text NOT NULL,
	"import_map_path" text,
	"files" jsonb NOT NULL,
	"sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "edge_function_secrets" ADD CONSTRAINT "edge_function_secrets_project_ref_projects_ref_fk" FOREIGN KEY ("project_ref") REFERENCES "public"."projects"("ref") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "edge_functions" ADD CONSTRAINT "edge_functions_project_ref_projects_ref_fk" FOREIGN KEY ("project_ref") REFERENCES "public"."projects"("ref") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "edge_functions_project_slug_idx" ON "edge_functions" USING btree ("project_ref","slug");