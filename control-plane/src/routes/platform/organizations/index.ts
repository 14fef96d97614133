import { Hono } from "hono";
import type { AppEnv } from "../../../deps.js";
import { createOrgTarget, deleteOrgTarget, listOrgTargets, testOrgTarget, updateOrgTarget } from "../backup-targets.js";
import { getAudit } from "./audit.js";
import { availableVersions } from "./available-versions.js";
import { customer, dailyUsage, entitlements, invoices, paymentMethods, subscription, taxId, usage } from "./billing.js";
import { createOrg } from "./create-organization.js";
import { deleteOrg } from "./delete-organization.js";
import { getOrg } from "./get-organization.js";
import { listOrgs } from "./list-organizations.js";
import { listOrgProjects } from "./list-projects.js";
import {
  acceptInvitationRoute,
  deleteMember,
  deleteMemberRole,
  getInvitationByToken,
  getMembers,
  getRoles,
  inviteMembers,
  listInvitations,
  mfaEnforcement,
  patchMember,
  putMemberRole,
  reachedFreeProjectLimit,
  revokeInvitation,
} from "./members.js";
import { listOAuthApps } from "./oauth-apps.js";
import { updateOrg } from "./update-organization.js";

/** /platform/organizations — organizations, members and roles, audit, billing answers. */
export function organizationRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/", listOrgs);
  app.post("/", createOrg);
  app.get("/:slug", getOrg);
  app.patch("/:slug", updateOrg);
  app.delete("/:slug", deleteOrg);

  app.get("/:slug/projects", listOrgProjects);
  app.post("/:slug/available-versions", availableVersions);

  app.get("/:slug/roles", getRoles);
  app.get("/:slug/members", getMembers);
  app.get("/:slug/members/reached-free-project-limit", reachedFreeProjectLimit);
  app.get("/:slug/members/mfa/enforcement", mfaEnforcement);
  app.get("/:slug/members/invitations", listInvitations);
  app.post("/:slug/members/invitations", inviteMembers);
  app.delete("/:slug/members/invitations/:id", revokeInvitation);
  // The invitee's calls (Studio's /join page): any signed-in account, the token decides.
  app.get("/:slug/members/invitations/:token", getInvitationByToken);
  app.post("/:slug/members/invitations/:token", acceptInvitationRoute);
  app.patch("/:slug/members/:gotrue_id", patchMember);
  app.delete("/:slug/members/:gotrue_id", deleteMember);
  app.put("/:slug/members/:gotrue_id/roles/:role_id", putMemberRole);
  app.delete("/:slug/members/:gotrue_id/roles/:role_id", deleteMemberRole);

  app.get("/:slug/audit", getAudit);
  app.get("/:slug/oauth/apps", listOAuthApps);

  app.get("/:slug/backup-targets", listOrgTargets);
  app.post("/:slug/backup-targets", createOrgTarget);
  app.patch("/:slug/backup-targets/:id", updateOrgTarget);
  app.delete("/:slug/backup-targets/:id", deleteOrgTarget);
  app.post("/:slug/backup-targets/:id/test", testOrgTarget);

  app.get("/:slug/billing/subscription", subscription);
  app.get("/:slug/entitlements", entitlements);
  app.get("/:slug/usage", usage);
  app.get("/:slug/usage/daily", dailyUsage);
  app.get("/:slug/customer", customer);
  app.get("/:slug/payments", paymentMethods);
  app.get("/:slug/billing/invoices", invoices);
  app.on("HEAD", "/:slug/billing/invoices", invoices);
  app.get("/:slug/tax-ids", taxId);
  return app;
}
