import { JobProgress, UPGRADE_JOB_KIND, type UpgradeStep } from "@supamanager/shared";
import type { Jobs } from "../jobs/jobs.js";
import type { Logger } from "../log.js";
import { Journals } from "./journal.js";
import { type UpgradeDeps, Upgrades } from "./procedure.js";

export { dockerMajorVersion } from "./docker-major.js";
export { Journals } from "./journal.js";
export { type MajorVersion, type MajorVersionStep, type UpgradeDeps, Upgrades, waitHealthy } from "./procedure.js";

/**
 * `POST <control plane>/agent/v1/jobs/{jobId}/progress` with the host credential: the step an
 * upgrade has reached, for the control plane to show. Best effort (5 s, never retried): the job's
 * answer is what counts.
 */
export function progressReporter(controlPlaneUrl: string, credential: string, log: Logger) {
  return async (jobId: string, step: UpgradeStep): Promise<void> => {
    const url = new URL(controlPlaneUrl);
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/agent/v1/jobs/${encodeURIComponent(jobId)}/progress`;
    url.search = "";
    url.hash = "";
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
        body: JSON.stringify(JobProgress.parse({ step })),
        signal: AbortSignal.timeout(5000),
      });
      await res.body?.cancel().catch(() => undefined);
      if (!res.ok) log.debug("upgrade progress not recorded", { jobId, step, status: res.status });
    } catch (err) {
      log.debug("upgrade progress not sent", { jobId, step, error: (err as Error).message });
    }
  };
}

/** Registers the `upgrade` job kind; returns the Upgrades whose recover() the agent runs at start. */
export function registerUpgradeJobs(jobs: Jobs, deps: Omit<UpgradeDeps, "journals"> & { dataDir: string }): Upgrades {
  const upgrades = new Upgrades({ ...deps, journals: new Journals(deps.dataDir) });
  jobs.register(UPGRADE_JOB_KIND, (job) => upgrades.handle(job));
  return upgrades;
}
