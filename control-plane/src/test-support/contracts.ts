import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import formatsModule from "ajv-formats";
import { expect } from "vitest";

/**
 * Contract checks against Studio's platform object schemas, which live beside the repository
 * in `../shared/contracts/` (never copied in). Where that folder is absent the check is
 * skipped with a loud warning instead of failing, so the suite still runs elsewhere.
 */
const SCHEMAS_URL = new URL("../../../../shared/contracts/platform-schemas.json", import.meta.url);

// ajv-formats is CommonJS; under NodeNext its default import may arrive wrapped in `{ default }`.
type FormatsPlugin = (ajv: Ajv) => Ajv;
const addFormats: FormatsPlugin =
  (formatsModule as unknown as { default?: FormatsPlugin }).default ?? (formatsModule as unknown as FormatsPlugin);

let loaded: { ajv: Ajv; schemas: Record<string, object> } | null | undefined;
const compiled = new Map<string, ValidateFunction>();

function load(): { ajv: Ajv; schemas: Record<string, object> } | null {
  if (loaded !== undefined) return loaded;
  const path = fileURLToPath(SCHEMAS_URL);
  if (!existsSync(path)) {
    loaded = null;
    return loaded;
  }
  const schemas = JSON.parse(readFileSync(path, "utf8")) as Record<string, object>;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  loaded = { ajv, schemas };
  return loaded;
}

/**
 * Fail the current test unless `value` matches the named schema of
 * `platform-schemas.json` (e.g. "OrganizationResponse"), reporting every ajv error.
 */
export function expectMatchesSchema(name: string, value: unknown): void {
  const contracts = load();
  if (contracts === null) {
    console.warn(`SKIPPED contract check: ../shared/contracts not found (schema ${name})`);
    return;
  }
  let validate = compiled.get(name);
  if (!validate) {
    const schema = contracts.schemas[name];
    if (!schema) throw new Error(`No schema named ${name} in platform-schemas.json`);
    // Each schema is self-contained (draft-07); compile it once per name.
    validate = contracts.ajv.compile(schema);
    compiled.set(name, validate);
  }
  if (validate(value)) return;
  const errors = (validate.errors ?? []).map(
    (e) => `${e.instancePath || "(root)"} ${e.message ?? "is invalid"} ${JSON.stringify(e.params)}`,
  );
  expect.fail(`value does not match contract schema ${name}:\n  ${errors.join("\n  ")}`);
}
