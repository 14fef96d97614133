import type { AppDeps } from "../deps.js";
import { type MaintenanceReport, runBackupMaintenance } from "./backups/index.js";
import { sweepRpcs } from "./fleet/rpc-mailbox.js";
import { rerenderForDomainChangeOnce } from "./projects/url-domains.js";
import { advanceRollouts, advanceUpgrades } from "./upgrades/index.js";

/** RPC mailbox rows older than this belong to waiters that died without cleaning up. */
const ABANDONED_RPC_MS = 15 * 60_000;

/**
 * The control plane's periodic work, the same on every runtime: the Node entry runs it on a timer
 * (SUPAMANAGER_BACKUP_TICK_SECONDS), Workers from a cron trigger, Lambda from a schedule. Safe
 * to run on several replicas at once (see runBackupMaintenance).
 */
export async function runMaintenance(deps: AppDeps): Promise<MaintenanceReport> {
  await rerenderForDomainChangeOnce(deps);
  const report = await runBackupMaintenance(deps);
  // Upgrades whose backup settled on a replica that did not hear the job's answer.
  await advanceUpgrades(deps).catch((err: unknown) =>
    deps.logger.error("maintenance step failed", { step: "upgrades waiting for their backup", err }),
  );
  // Fleet upgrades: the ones whose upgrades ended where nobody advanced them, and any a dead
  // replica held (ADR 0039).
  await advanceRollouts(deps).catch((err: unknown) =>
    deps.logger.error("maintenance step failed", { step: "fleet upgrades", err }),
  );
  await sweepRpcs(deps.database.db, new Date(deps.clock.now() - ABANDONED_RPC_MS));
  return report;
}
