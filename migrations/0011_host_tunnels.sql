CREATE TABLE "host_tunnels" (
	"host_id" text PRIMARY KEY NOT NULL,
	"replica_url" text NOT NULL,
	"connected_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "host_tunnels" ADD CONSTRAINT "host_tunnels_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE cascade ON UPDATE no action;