import { z } from "zod";

/**
 * The reserved rpc service `edge-functions` (ADR 0032): the agent itself writes a project's Edge
 * Functions and function secrets into the functions volume, through the project's own functions
 * container (Docker's archive API; nothing is needed inside the image but `rm`), then restarts
 * that container so the edge runtime drops its cached workers and reads the new files.
 *
 *   PUT    /functions/<slug>  EdgeFunctionWrite   → replaces <dir>/<slug>/ (layout below)
 *   DELETE /functions/<slug>  EdgeFunctionTarget  → removes <dir>/<slug>/
 *   PUT    /secrets           EdgeSecretsWrite    → replaces <dir>/.secrets.json
 *
 * Answer: `status: 200`, body `{restarted: true}`; a project whose functions container is not
 * running answers `status: 409` (nothing to write into). Layout under the runtime's functions
 * directory: `<slug>/src/<path>` the uploaded files, `<slug>/index.ts` a one-line module
 * importing the entrypoint (the runtime starts `index.ts` of a function's directory),
 * `<slug>/function.json` {verify_jwt}; `.secrets.json` {NAME: value} (mode 0600), read by the
 * main service and handed to every function as environment variables.
 */
export const EDGE_FUNCTIONS_SERVICE = "edge-functions";

/** Where the edge runtime of every built-in release reads functions (the functions volume). */
export const EDGE_FUNCTIONS_DIR = "/home/deno/functions";

/** A function's slug, as the Management API allows it for deploys. */
export const FUNCTION_SLUG = /^[A-Za-z][A-Za-z0-9_-]{0,99}$/;

/**
 * A file path inside a function: relative, `/`-separated, no `.`/`..` segments, no leading dot
 * segment tricks, printable characters only. Checked on both sides.
 */
export const FUNCTION_FILE_PATH =
  /^(?!\/)(?!.*(?:^|\/)\.{1,2}(?:\/|$))(?!.*\/\/)[A-Za-z0-9 _.@+~()[\]{}!,=-]+(?:\/[A-Za-z0-9 _.@+~()[\]{}!,=-]+)*$/;

/** Secret names: environment variable names, never the runtime's own `SUPABASE_…` ones. */
export const FUNCTION_SECRET_NAME = /^(?!SUPABASE_)[A-Za-z_][A-Za-z0-9_]{0,255}$/;

/** Most files and bytes (decoded) one function may have. */
export const EDGE_FUNCTION_MAX_FILES = 200;
export const EDGE_FUNCTION_MAX_BYTES = 2 * 1024 * 1024;
/** Most function secrets per project and bytes per value (the Management API's own value limit). */
export const EDGE_SECRETS_MAX = 200;
export const EDGE_SECRET_VALUE_MAX = 24576;

const ServiceName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/);

/** Which Compose service of the project runs the edge runtime. */
export const EdgeFunctionTarget = z.object({ service: ServiceName });
export type EdgeFunctionTarget = z.infer<typeof EdgeFunctionTarget>;

export const EdgeFunctionWrite = EdgeFunctionTarget.extend({
  /** The entrypoint among `files`. */
  entrypoint: z.string().max(255).regex(FUNCTION_FILE_PATH),
  verifyJwt: z.boolean(),
  files: z
    .array(
      z.object({
        path: z
          .string()
          .min(1)
          .max(255)
          .regex(FUNCTION_FILE_PATH, "a file path is relative and stays inside the function"),
        /** The file's bytes, base64. */
        content: z
          .string()
          .max(Math.ceil(EDGE_FUNCTION_MAX_BYTES / 3) * 4)
          .regex(/^[A-Za-z0-9+/]*={0,2}$/),
      }),
    )
    .min(1)
    .max(EDGE_FUNCTION_MAX_FILES),
}).refine((w) => w.files.some((f) => f.path === w.entrypoint), {
  message: "the entrypoint must be one of the files",
  path: ["entrypoint"],
});
export type EdgeFunctionWrite = z.infer<typeof EdgeFunctionWrite>;

export const EdgeSecretsWrite = EdgeFunctionTarget.extend({
  secrets: z
    .record(z.string().regex(FUNCTION_SECRET_NAME), z.string().max(EDGE_SECRET_VALUE_MAX))
    .refine((r) => Object.keys(r).length <= EDGE_SECRETS_MAX, `at most ${EDGE_SECRETS_MAX} secrets`),
});
export type EdgeSecretsWrite = z.infer<typeof EdgeSecretsWrite>;

/** The body of a successful edge-functions rpc_result. */
export interface EdgeFunctionsAnswer {
  restarted: boolean;
}
