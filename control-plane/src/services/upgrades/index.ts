import { UPGRADE_JOB_KIND } from "@supamanager/shared";
import { onBackupSettled } from "../backups/backups.js";
import { registerJobKind } from "../jobs/jobs.js";
import { advanceRolloutOfUpgrade } from "./rollout.js";
import { advanceUpgradeOfBackup, onUpgradeSettled, upgradeJobHandler } from "./upgrade.js";

/**
 * Project upgrades (ADR 0037, docs/upgrades.md). Importing this module registers what happens
 * when `upgrade` jobs answer and when an upgrade's backup settles; the maintenance tick imports
 * it, so every runtime has the handlers.
 */
registerJobKind(UPGRADE_JOB_KIND, upgradeJobHandler);
onBackupSettled(advanceUpgradeOfBackup);
// A fleet rollout moves on as soon as one of its upgrades ends (ADR 0039).
onUpgradeSettled(advanceRolloutOfUpgrade);

export { advanceRollouts } from "./rollout.js";
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
