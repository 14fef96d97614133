import { UPGRADE_JOB_KIND } from "@supamanager/shared";
import { onBackupSettled } from "../backups/backups.js";
import { registerJobKind } from "../jobs/jobs.js";
import { advanceUpgradeOfBackup, upgradeJobHandler } from "./upgrade.js";

/**
 * Project upgrades (ADR 0037, docs/upgrades.md). Importing this module registers what happens
 * when `upgrade` jobs answer and when an upgrade's backup settles; the maintenance tick imports
 * it, so every runtime has the handlers.
 */
registerJobKind(UPGRADE_JOB_KIND, upgradeJobHandler);
onBackupSettled(advanceUpgradeOfBackup);

export {
  advanceUpgrades,
  beginUpgrade,
  latestUpgrade,
  recordUpgradeProgress,
  startUpgrade,
  type UpgradeRequest,
  type UpgradeStart,
  type UpgradeStatus,
  type UpgradeView,
  upgradeView,
} from "./upgrade.js";
