import { prefixedId, randomString } from "@supamanager/shared";
import { sha256Hex } from "../../crypto/encoding.js";

const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A join token, shown once: `smj_` + 40 random characters (~238 bits). */
export const newJoinToken = () => `smj_${randomString(40, ALNUM)}`;

/** A host's credential, shown once to the agent: `smh_` + 40 random characters. */
export const newHostCredential = () => `smh_${randomString(40, ALNUM)}`;

export const newHostId = () => prefixedId("host");
export const newJoinTokenId = () => prefixedId("jt");

/**
 * Secrets are stored as SHA-256 hashes and looked up by hash through a unique index, so the
 * secret is never compared character by character (no timing oracle) and a database leak gives
 * nothing usable: the tokens carry far too much entropy to brute-force.
 */
export const secretHash = (secret: string) => sha256Hex(secret);

/** Cheap shape check before touching the database. */
export const looksLikeHostCredential = (s: string) => /^smh_[A-Za-z0-9]{40}$/.test(s);
export const looksLikeJoinToken = (s: string) => /^smj_[A-Za-z0-9]{40}$/.test(s);
