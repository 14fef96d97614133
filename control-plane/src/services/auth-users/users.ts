import { z } from "zod";
import type { AuthedContext } from "../../deps.js";
import { ApiError } from "../../errors.js";
import { auditAuthUser, gotrueAdmin } from "./gotrue-admin.js";

/**
 * The Users page's actions, each translated to GoTrue's admin API (paths and bodies as GoTrue
 * publishes them; see users.test.ts for the source). Audit rows name the user by id and never
 * hold a password.
 */

/** GoTrue's user object: passed on as GoTrue sent it, but it must be an object. */
const GotrueUser = z.looseObject({ id: z.string() });

function asUser(body: unknown) {
  const parsed = GotrueUser.safeParse(body);
  if (!parsed.success)
    throw new ApiError("bad_gateway", "The project's Auth service answered with something that is not a user");
  return parsed.data;
}

export interface CreateUserInput {
  email?: string | undefined;
  phone?: string | undefined;
  password?: string | undefined;
  email_confirm?: boolean | undefined;
  phone_confirm?: boolean | undefined;
  user_metadata?: Record<string, unknown> | undefined;
}

/** POST /platform/auth/{ref}/users → GoTrue `POST /admin/users`. */
export async function createUser(ctx: AuthedContext, ref: string, input: CreateUserInput) {
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (v !== undefined) body[k] = v;
  const user = asUser(await gotrueAdmin(ctx, ref, { method: "POST", path: "/admin/users", body }));
  await auditAuthUser(ctx, ref, "project.auth_user.create", user.id, { confirmed: input.email_confirm === true });
  return user;
}

/** POST /platform/auth/{ref}/invite → GoTrue `POST /invite` (GoTrue sends the invitation e-mail). */
export async function inviteUser(ctx: AuthedContext, ref: string, email: string) {
  const user = asUser(await gotrueAdmin(ctx, ref, { method: "POST", path: "/invite", body: { email } }));
  await auditAuthUser(ctx, ref, "project.auth_user.invite", user.id);
  return user;
}

/** DELETE /platform/auth/{ref}/users/{id} → GoTrue `DELETE /admin/users/{id}`. */
export async function deleteUser(ctx: AuthedContext, ref: string, id: string) {
  await gotrueAdmin(ctx, ref, { method: "DELETE", path: `/admin/users/${id}` });
  await auditAuthUser(ctx, ref, "project.auth_user.delete", id);
  return {};
}

/**
 * PATCH /platform/auth/{ref}/users/{id} `{ban_duration}` → GoTrue `PUT /admin/users/{id}`
 * (`"none"` lifts a ban; otherwise a Go duration such as `"24h"`).
 */
export async function updateUser(ctx: AuthedContext, ref: string, id: string, banDuration: string) {
  const user = asUser(
    await gotrueAdmin(ctx, ref, { method: "PUT", path: `/admin/users/${id}`, body: { ban_duration: banDuration } }),
  );
  await auditAuthUser(ctx, ref, banDuration === "none" ? "project.auth_user.unban" : "project.auth_user.ban", id, {
    ban_duration: banDuration,
  });
  return user;
}

/** DELETE /platform/auth/{ref}/users/{id}/factors → every factor of the user, one by one. */
export async function deleteFactors(ctx: AuthedContext, ref: string, id: string) {
  const factors = z
    .array(z.looseObject({ id: z.string().regex(/^[0-9a-f-]{36}$/i) }))
    .safeParse(await gotrueAdmin(ctx, ref, { method: "GET", path: `/admin/users/${id}/factors` }));
  if (!factors.success)
    throw new ApiError("bad_gateway", "The project's Auth service listed MFA factors in an unexpected shape");
  for (const f of factors.data) {
    await gotrueAdmin(ctx, ref, { method: "DELETE", path: `/admin/users/${id}/factors/${f.id}` });
  }
  await auditAuthUser(ctx, ref, "project.auth_user.mfa_factors_delete", id, { factors: factors.data.length });
  return {};
}

/** POST /platform/auth/{ref}/{recover|magiclink|otp} → GoTrue's endpoint of the same name (it sends the message). */
export async function sendToUser(
  ctx: AuthedContext,
  ref: string,
  kind: "recover" | "magiclink" | "otp",
  to: { email?: string | undefined; phone?: string | undefined },
) {
  const body: Record<string, unknown> = {};
  if (to.email !== undefined) body.email = to.email;
  if (to.phone !== undefined) body.phone = to.phone;
  await gotrueAdmin(ctx, ref, { method: "POST", path: `/${kind}`, body });
  await auditAuthUser(ctx, ref, `project.auth_user.send_${kind}`, to.email ?? to.phone ?? "");
  return {};
}
