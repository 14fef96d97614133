import type { Executor } from "../../db/index.js";
import type { AppDeps } from "../../deps.js";
import type { ProjectVariable } from "../../releases/variables.js";
import { authVariables } from "../auth-settings/settings.js";
import { loadAuthSettings } from "../auth-settings/store.js";
import { dbPassAad } from "../projects/model.js";
import { projectUrl, type Reachability } from "../projects/urls.js";
import { STORED_SECRET_NAMES } from "./generate.js";
import { loadProjectSecrets } from "./store.js";

interface ProjectFacts {
  ref: string;
  dbPassEncrypted: string;
}

/**
 * Every variable a release may refer to, for one project: its stored secrets (decrypted here,
 * only to be sent to the project's own host; missing ones are generated on first need) and
 * facts derived from its host and ports. POSTGRES_PASSWORD is the project's db_pass. The API's
 * external URL is the project's public URL (services/projects/urls.ts).
 */
export async function projectVariables(
  deps: AppDeps,
  db: Executor,
  project: ProjectFacts,
  host: { bindAddress: string; reachability?: Reachability },
  ports: Record<string, number>,
): Promise<Partial<Record<ProjectVariable, string>>> {
  const apiUrl = projectUrl(deps.config, project.ref, host, ports.gateway) ?? "";
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
