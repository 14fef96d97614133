import { z } from "zod";

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A project ref: exactly 20 lowercase letters, the format the official CLI insists on. */
export const ProjectRef = z.string().regex(/^[a-z]{20}$/, "a project ref is exactly 20 lowercase letters");
export type ProjectRef = z.infer<typeof ProjectRef>;

/** An organization slug: lowercase letters, digits and dashes, 3 to 64 characters. */
export const OrgSlug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/, "an organization slug is 3–64 lowercase letters, digits or dashes");

/**
 * Uniformly random string from `alphabet` using rejection sampling over the Web Crypto CSPRNG
 * (available on Node, Workers and Lambda alike), so no character is more likely than another.
 */
export function randomString(length: number, alphabet: string): string {
  if (alphabet.length < 2 || alphabet.length > 256) throw new RangeError("alphabet must have 2..256 characters");
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    const bytes = crypto.getRandomValues(new Uint8Array(length * 2));
    for (const b of bytes) {
      if (b < limit) out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/** A fresh project ref (20 lowercase letters, ~94 bits of entropy). */
export function newProjectRef(): string {
  return randomString(20, LOWER);
}

/** A fresh organization slug (20 lowercase letters and digits), like Supabase's. */
export function newOrgSlug(): string {
  return randomString(20, ALNUM);
}

/** An id of ours with a type prefix, e.g. `host_3k9…`. */
export function prefixedId(prefix: string, length = 20): string {
  return `${prefix}_${randomString(length, ALNUM)}`;
}
