import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import formatsModule from "ajv-formats";
import { expect } from "vitest";

/**
 * Contract checks against Supabase's Management API document (OpenAPI 3.0), which lives beside
 * the repository in `../shared/contracts/api_v1_openapi.json` (never copied in). Where that
 * folder is absent the check is skipped with a loud warning instead of failing.
 */
const DOC_URL = new URL("../../../../shared/contracts/api_v1_openapi.json", import.meta.url);
const COMPONENTS_ID = "api-v1-openapi";

type FormatsPlugin = (ajv: Ajv) => Ajv;
const addFormats: FormatsPlugin =
  (formatsModule as unknown as { default?: FormatsPlugin }).default ?? (formatsModule as unknown as FormatsPlugin);

interface OpenApiDoc {
  paths: Record<
    string,
    Record<string, { responses?: Record<string, { content?: Record<string, { schema?: object }> }> }>
  >;
  components: { schemas: Record<string, object> };
}

let loaded: { ajv: Ajv; doc: OpenApiDoc } | null | undefined;
const compiled = new Map<string, ValidateFunction>();

/** `#/components/...` → `<components id>#/components/...`, so refs resolve against the document. */
function rebase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rebase);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/") ? `${COMPONENTS_ID}${v}` : rebase(v);
  }
  return out;
}

/**
 * OpenAPI 3.0 lets `nullable: true` stand without a `type` (the value may then be anything, null
 * included); ajv refuses that combination, so such a `nullable` is dropped (it restricts nothing).
 */
function dropUntypedNullable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropUntypedNullable);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  const untyped = !("type" in value);
  for (const [k, v] of Object.entries(value)) {
    if (k === "nullable" && untyped) continue;
    out[k] = dropUntypedNullable(v);
  }
  return out;
}

function load(): { ajv: Ajv; doc: OpenApiDoc } | null {
  if (loaded !== undefined) return loaded;
  const path = fileURLToPath(DOC_URL);
  if (!existsSync(path)) {
    loaded = null;
    return loaded;
  }
  const doc = JSON.parse(readFileSync(path, "utf8")) as OpenApiDoc;
  // OpenAPI 3.0 schemas: `nullable` is a keyword there; unknown keywords (x-…, example) are ignored.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: COMPONENTS_ID, components: dropUntypedNullable(doc.components) });
  loaded = { ajv, doc };
  return loaded;
}

/**
 * Fail the current test unless `body` matches the response schema the OpenAPI document gives
 * for `method path` (the document's templated path, e.g. "/v1/projects/{ref}/api-keys") and
 * `status`, with every `$ref` resolved into the document's components.
 */
export function expectMatchesOperation(
  method: string,
  path: string,
  status: number,
  body: unknown,
  opts: { fieldsOnly?: boolean } = {},
): void {
  const contracts = load();
  if (contracts === null) {
    console.warn(`SKIPPED OpenAPI contract check: ../shared/contracts not found (${method} ${path})`);
    return;
  }
  const key = `${method.toLowerCase()} ${path} ${status}`;
  let validate = compiled.get(key);
  if (!validate) {
    const op = contracts.doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`No operation ${method} ${path} in api_v1_openapi.json`);
    const schema = op.responses?.[String(status)]?.content?.["application/json"]?.schema;
    if (!schema) throw new Error(`${method} ${path} declares no JSON response for status ${status}`);
    validate = contracts.ajv.compile(rebase(dropUntypedNullable(schema)) as object);
    compiled.set(key, validate);
  }
  if (validate(body)) return;
  // fieldsOnly: every field present must match the document; absent required ones are allowed
  // (an answer that manages only some fields of a very wide shape, such as AuthConfigResponse).
  const relevant = (validate.errors ?? []).filter((e) => !(opts.fieldsOnly && e.keyword === "required"));
  if (relevant.length === 0) return;
  const errors = relevant.map(
    (e) => `${e.instancePath || "(root)"} ${e.message ?? "is invalid"} ${JSON.stringify(e.params)}`,
  );
  expect.fail(`body does not match ${method} ${path} → ${status}:\n  ${errors.join("\n  ")}`);
}
