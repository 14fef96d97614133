import { parseKeyMaterial } from "../../crypto/aes.js";
import { fromHex, timingSafeEqual, toHex, utf8 } from "../../crypto/encoding.js";
import type { AppDeps, ServiceContext } from "../../deps.js";

/**
 * Studio's `connectionString`: an opaque token it echoes back in `x-connection-encrypted` on
 * pg-meta calls. Ours is `cs1_<ref>_<mac>`, where mac = HMAC-SHA256 over the ref under a key
 * derived (HKDF) from the encryption key. It carries no password and grants nothing by itself:
 * the route that accepts it still checks the caller's membership and role. Tokens made with a
 * rotated-out key keep resolving while that key is listed in SUPAMANAGER_ENCRYPTION_KEYS_OLD.
 */
const PREFIX = "cs1";
const MAC_HEX = 32;
const TOKEN = /^cs1_([a-z]{20})_([0-9a-f]{32})$/;

type TokenDeps = Pick<AppDeps, "config">;

type CryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** Derived keys by key material: deriving costs two WebCrypto calls, and the material rarely changes. */
const macKeys = new Map<string, Promise<CryptoKey>>();

function macKey(material: string): Promise<CryptoKey> {
  let key = macKeys.get(material);
  if (!key) {
    key = deriveMacKey(material);
    key.catch(() => macKeys.delete(material));
    if (macKeys.size >= 16) macKeys.clear(); // a handful of keys (current + old) in practice
    macKeys.set(material, key);
  }
  return key;
}

async function deriveMacKey(material: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", parseKeyMaterial(material), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8.encode("supamanager connection token v1") },
    base,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
}

/**
 * MACs already computed, by key material and ref (ADR 0042): the same project's detail is read
 * every few seconds while Studio polls it, and the MAC of a ref under a key never changes.
 */
const macs = new Map<string, Uint8Array>();
const MACS_MAX = 10_000;

async function mac(material: string, ref: string): Promise<Uint8Array> {
  const memo = `${material}\n${ref}`;
  const known = macs.get(memo);
  if (known) return known;
  const sig = await crypto.subtle.sign("HMAC", await macKey(material), utf8.encode(`connection:${ref}`));
  const out = new Uint8Array(sig).slice(0, MAC_HEX / 2);
  if (macs.size >= MACS_MAX) {
    const oldest = macs.keys().next().value;
    if (oldest !== undefined) macs.delete(oldest);
  }
  macs.set(memo, out);
  return out;
}

/** The connection token of project `ref` (stable while the encryption key is unchanged). */
export async function connectionToken(deps: TokenDeps, ref: string): Promise<string> {
  return `${PREFIX}_${ref}_${toHex(await mac(deps.config.encryptionKey, ref))}`;
}

/**
 * The project ref a connection token stands for, or undefined when the token is malformed or
 * was not made by this control plane. Says nothing about who may use it: check membership.
 */
export async function resolveConnectionToken(
  ctx: Pick<ServiceContext, "deps">,
  token: string,
): Promise<string | undefined> {
  const m = TOKEN.exec(token.trim());
  if (!m) return undefined;
  const ref = m[1] as string;
  const given = fromHex(m[2] as string);
  for (const key of [ctx.deps.config.encryptionKey, ...ctx.deps.config.encryptionKeysOld]) {
    if (timingSafeEqual(await mac(key, ref), given)) return ref;
  }
  return undefined;
}
