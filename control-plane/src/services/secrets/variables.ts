import type { Executor } from "../../db/index.js";
import type { AppDeps } from "../../deps.js";
import type { ProjectVariable } from "../../releases/variables.js";
import { authVariables } from "../auth-settings/settings.js";
import { loadAuthSettings } from "../auth-settings/store.js";
import { dbPassAad } from "../projects/model.js";
import { STORED_SECRET_NAMES } from "./generate.js";
import { loadProjectSecrets } from "./store.js";

interface ProjectFacts {
  ref: string;
  dbPassEncrypted: string;
}

/**
 * Every variable a release may refer to, for one project: its stored secrets (decrypted here,
 * only to be sent to the project's own host; missing ones are generated on first need) and
 * facts derived from its host and ports. POSTGRES_PASSWORD is the project's db_pass.
 */
export async function projectVariables(
  deps: AppDeps,
  db: Executor,
  project: ProjectFacts,
  host: { bindAddress: string },
  ports: Record<string, number>,
): Promise<Partial<Record<ProjectVariable, string>>> {
  const hostName = host.bindAddress.includes(":") ? `[${host.bindAddress}]` : host.bindAddress;
  const apiUrl = ports.gateway !== undefined ? `http://${hostName}:${ports.gateway}` : "";
  const secrets = await loadProjectSecrets(db, deps, project.ref);
  const out: Partial<Record<ProjectVariable, string>> = {
    POSTGRES_PASSWORD: await deps.secretBox.decrypt(project.dbPassEncrypted, dbPassAad(project.ref)),
    PROJECT_REF: project.ref,
    POOLER_TENANT_ID: project.ref,
    API_EXTERNAL_URL: apiUrl,
    SUPABASE_PUBLIC_URL: apiUrl,
    ...authVariables(await loadAuthSettings(db, deps, project.ref)),
  };
  for (const name of STORED_SECRET_NAMES) out[name] = secrets[name];
  return out;
}
