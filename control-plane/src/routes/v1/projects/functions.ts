import { FUNCTION_SECRET_NAME, FUNCTION_SLUG } from "@supamanager/shared";
import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../../deps.js";
import { ApiError, badRequest } from "../../../errors.js";
import { authed } from "../../../lib/context.js";
import { jsonBody, param, query } from "../../../lib/validate.js";
import {
  type DeployFile,
  deleteFunction,
  deployFunction,
  type FunctionRow,
  functionFiles,
  getFunction,
  listFunctions,
  updateFunction,
} from "../../../services/edge-functions/functions.js";
import { functionsProject } from "../../../services/edge-functions/runtime.js";
import { deleteSecrets, listSecrets, setSecrets } from "../../../services/edge-functions/secrets.js";
import { RefParam } from "../../platform/projects/schemas.js";

/**
 * Edge Functions and function secrets in the Management API's shapes (api_v1_openapi.json:
 * v1-list-all-functions, v1-deploy-a-function, v1-get-a-function, v1-get-a-function-body,
 * v1-update-a-function, v1-delete-a-function, v1-bulk-update-functions, v1-*-secrets), used by
 * Studio's Edge Functions pages and by the official CLI (`supabase functions deploy --use-api`,
 * `supabase secrets set|list|unset`). Services in services/edge-functions (ADR 0032).
 */

const refOf = (c: Context<AppEnv>) => param(c, "ref", RefParam, "Project");
const slugOf = (c: Context<AppEnv>) => param(c, "slug", z.string().regex(FUNCTION_SLUG), "Function");

/** FunctionResponse / FunctionSlugResponse / DeployFunctionResponse (the same fields). */
const FunctionResponse = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  status: z.literal("ACTIVE"),
  version: z.number().int(),
  created_at: z.number().int(),
  updated_at: z.number().int(),
  verify_jwt: z.boolean(),
  import_map: z.boolean(),
  entrypoint_path: z.string(),
  import_map_path: z.string().optional(),
  ezbr_sha256: z.string(),
});

function functionResponse(r: FunctionRow): z.output<typeof FunctionResponse> {
  return FunctionResponse.parse({
    id: r.id,
    slug: r.slug,
    name: r.name,
    status: "ACTIVE",
    version: r.version,
    created_at: r.createdAt.getTime(),
    updated_at: r.updatedAt.getTime(),
    verify_jwt: r.verifyJwt,
    import_map: r.importMapPath !== null,
    entrypoint_path: r.entrypointPath,
    ...(r.importMapPath !== null ? { import_map_path: r.importMapPath } : {}),
    ezbr_sha256: r.sha256,
  });
}

const BoolString = z.enum(["true", "false"]).transform((v) => v === "true");

const DeployQuery = z.object({
  slug: z.string().regex(FUNCTION_SLUG, "slug must start with a letter: letters, digits, - and _").optional(),
  bundleOnly: BoolString.optional(),
});

/** FunctionDeployBody.metadata (the form field `metadata`, JSON). */
const DeployMetadata = z.object({
  entrypoint_path: z.string().min(1).max(1024),
  import_map_path: z.string().max(1024).optional(),
  static_patterns: z.array(z.string().max(1024)).max(100).optional(),
  verify_jwt: z.boolean().optional(),
  name: z.string().max(100).optional(),
});

async function readDeployForm(
  c: Context<AppEnv>,
): Promise<{ metadata: z.output<typeof DeployMetadata>; files: DeployFile[] }> {
  const type = c.req.header("content-type") ?? "";
  if (!/^multipart\/form-data\b/i.test(type)) {
    throw new ApiError(
      "unsupported_media_type",
      "A deploy is multipart/form-data: a `metadata` field (JSON) and one `file` field per source file. Bundled uploads (eszip) are not supported; with the CLI use `supabase functions deploy --use-api`.",
    );
  }
  let form: FormData;
  try {
    form = await c.req.raw.formData();
  } catch {
    throw badRequest("The request body is not valid multipart/form-data");
  }
  const rawMeta = form.get("metadata");
  const metaText = typeof rawMeta === "string" ? rawMeta : rawMeta ? await rawMeta.text() : undefined;
  if (metaText === undefined) throw badRequest("metadata: required (a form field holding JSON)");
  let metaJson: unknown;
  try {
    metaJson = JSON.parse(metaText);
  } catch {
    throw badRequest("metadata: not valid JSON");
  }
  const meta = DeployMetadata.safeParse(metaJson);
  if (!meta.success) {
    const i = meta.error.issues[0];
    throw badRequest(`metadata.${i?.path.join(".") ?? ""}: ${i?.message ?? "invalid"}`);
  }
  const files: DeployFile[] = [];
  for (const [field, value] of form.entries()) {
    if (field === "metadata") continue;
    if (field !== "file")
      throw badRequest(`unexpected form field ${JSON.stringify(field.slice(0, 64))} (expected metadata and file)`);
    if (typeof value === "string") throw badRequest("file: each file must be sent as a file part with a filename");
    files.push({ name: value.name, content: new Uint8Array(await value.arrayBuffer()) });
  }
  return { metadata: meta.data, files };
}

const UpdateBody = z.object({
  name: z.string().min(1).max(100).optional(),
  verify_jwt: z.boolean().optional(),
  body: z.unknown().optional(),
});

const BulkUpdateBody = z
  .array(
    z
      .object({
        slug: z.string().regex(FUNCTION_SLUG),
        name: z.string().min(1).max(100).optional(),
        verify_jwt: z.boolean().optional(),
      })
      .loose(),
  )
  .max(200);

const CreateSecretsBody = z
  .array(
    z.object({
      name: z
        .string()
        .max(256)
        .regex(FUNCTION_SECRET_NAME, "a secret name is letters, digits and _, not starting with a digit or SUPABASE_"),
      value: z.string().max(24576),
    }),
  )
  .min(1)
  .max(200);
const DeleteSecretsBody = z.array(z.string().min(1).max(256)).min(1).max(200);

export function v1FunctionRoutes() {
  const app = new Hono<AppEnv>();

  app.get("/:ref/functions", async (c) => {
    const rows = await listFunctions(authed(c), refOf(c));
    return c.json(rows.map(functionResponse));
  });

  app.post("/:ref/functions/deploy", async (c) => {
    const ref = refOf(c);
    // Membership and role before the body is read (outsiders 404, read_only 403, local 409).
    await functionsProject(authed(c), ref, "sql.write");
    const q = query(c, DeployQuery);
    const { metadata, files } = await readDeployForm(c);
    const slug = q.slug ?? metadata.name;
    if (!slug || !FUNCTION_SLUG.test(slug)) {
      throw badRequest(
        "slug: required (query `slug`, or metadata.name) and must start with a letter: letters, digits, - and _",
      );
    }
    const row = await deployFunction(authed(c), ref, {
      slug,
      name: metadata.name,
      entrypointPath: metadata.entrypoint_path,
      importMapPath: metadata.import_map_path || undefined,
      verifyJwt: metadata.verify_jwt,
      files,
    });
    return c.json(functionResponse(row), 201);
  });

  app.put("/:ref/functions", async (c) => {
    const ref = refOf(c);
    await functionsProject(authed(c), ref, "sql.write");
    const items = await jsonBody(c, BulkUpdateBody);
    const out: FunctionRow[] = [];
    for (const item of items) {
      out.push(await updateFunction(authed(c), ref, item.slug, { name: item.name, verifyJwt: item.verify_jwt }));
    }
    return c.json({ functions: out.map(functionResponse) });
  });

  // The deprecated create (JSON {slug, name, body} or an eszip bundle): not supported.
  app.post("/:ref/functions", async (c) => {
    await functionsProject(authed(c), refOf(c), "sql.write");
    throw new ApiError(
      "unsupported_media_type",
      "Creating a function from a single body or an eszip bundle is not supported: use POST /v1/projects/{ref}/functions/deploy (multipart), e.g. `supabase functions deploy --use-api`.",
    );
  });

  app.get("/:ref/functions/:slug", async (c) =>
    c.json(functionResponse(await getFunction(authed(c), refOf(c), slugOf(c)))),
  );

  app.get("/:ref/functions/:slug/body", async (c) => {
    const row = await getFunction(authed(c), refOf(c), slugOf(c));
    const form = new FormData();
    form.append(
      "metadata",
      JSON.stringify({ deno2_entrypoint_path: row.entrypointPath, entrypoint_path: row.entrypointPath }),
    );
    for (const f of functionFiles(row)) {
      form.append(
        "file",
        new Blob([f.content as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }),
        f.path,
      );
    }
    const encoded = new Response(form);
    return new Response(encoded.body, {
      status: 200,
      headers: { "content-type": encoded.headers.get("content-type") ?? "multipart/form-data" },
    });
  });

  app.patch("/:ref/functions/:slug", async (c) => {
    const ref = refOf(c);
    await functionsProject(authed(c), ref, "sql.write");
    const slug = slugOf(c);
    const type = c.req.header("content-type") ?? "";
    if (/eszip/i.test(type)) {
      throw new ApiError(
        "unsupported_media_type",
        "eszip bundles are not supported: deploy with POST …/functions/deploy (multipart)",
      );
    }
    const body = await jsonBody(c, UpdateBody);
    if (body.body !== undefined) {
      throw badRequest(
        "body: changing a function's code here is not supported: deploy it with POST …/functions/deploy",
      );
    }
    return c.json(
      functionResponse(await updateFunction(authed(c), ref, slug, { name: body.name, verifyJwt: body.verify_jwt })),
    );
  });

  app.delete("/:ref/functions/:slug", async (c) => {
    const ref = refOf(c);
    await functionsProject(authed(c), ref, "sql.write");
    const slug = slugOf(c);
    await deleteFunction(authed(c), ref, slug);
    return c.json({ message: `Function ${slug} deleted` });
  });

  app.get("/:ref/secrets", async (c) => {
    const rows = await listSecrets(authed(c), refOf(c));
    return c.json(rows.map((r) => ({ name: r.name, value: r.digest, updated_at: r.updatedAt.toISOString() })));
  });

  app.post("/:ref/secrets", async (c) => {
    const ref = refOf(c);
    await functionsProject(authed(c), ref, "sql.write");
    await setSecrets(authed(c), ref, await jsonBody(c, CreateSecretsBody));
    return c.body(null, 201);
  });

  app.delete("/:ref/secrets", async (c) => {
    const ref = refOf(c);
    await functionsProject(authed(c), ref, "sql.write");
    await deleteSecrets(authed(c), ref, await jsonBody(c, DeleteSecretsBody));
    return c.json({});
  });

  return app;
}
