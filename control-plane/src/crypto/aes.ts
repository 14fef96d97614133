import { fromBase64Url, fromHex, randomBytes, toBase64Url, toHex, utf8 } from "./encoding.js";

/**
 * Secrets at rest: AES-256-GCM with a fresh 96-bit nonce per value and a key id, so keys can be
 * rotated (new values use the current key; old values decrypt with any configured key).
 * Stored format: `v1.<kid>.<nonce b64url>.<ciphertext+tag b64url>`.
 */

export class SecretBoxError extends Error {
  override name = "SecretBoxError";
}

type CryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

interface Key {
  id: string;
  key: CryptoKey;
}

/** Parse a 32-byte key given as 64 hex characters or base64/base64url. */
export function parseKeyMaterial(text: string): Uint8Array {
  const t = text.trim();
  let bytes: Uint8Array;
  try {
    bytes = /^[0-9a-fA-F]{64}$/.test(t) ? fromHex(t) : fromBase64Url(t.replace(/=+$/, ""));
  } catch {
    bytes = new Uint8Array(0);
  }
  if (bytes.length !== 32) throw new SecretBoxError("an encryption key must be 32 bytes (64 hex characters or base64)");
  return bytes;
}

async function importKey(material: Uint8Array): Promise<Key> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", material));
  const key = await crypto.subtle.importKey("raw", material, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { id: toHex(digest.slice(0, 4)), key };
}

export class SecretBox {
  private constructor(
    private readonly current: Key,
    private readonly all: Map<string, Key>,
  ) {}

  static async create(currentKey: string, oldKeys: string[] = []): Promise<SecretBox> {
    const current = await importKey(parseKeyMaterial(currentKey));
    const all = new Map<string, Key>([[current.id, current]]);
    for (const k of oldKeys) {
      const imported = await importKey(parseKeyMaterial(k));
      all.set(imported.id, imported);
    }
    return new SecretBox(current, all);
  }

  get keyId(): string {
    return this.current.id;
  }

  /** `aad` binds the ciphertext to its owner (e.g. a project ref) so values cannot be swapped between rows. */
  async encrypt(plaintext: string, aad: string): Promise<string> {
    const nonce = randomBytes(12);
    const ct = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonce, additionalData: utf8.encode(aad) },
        this.current.key,
        utf8.encode(plaintext),
      ),
    );
    return `v1.${this.current.id}.${toBase64Url(nonce)}.${toBase64Url(ct)}`;
  }

  async decrypt(stored: string, aad: string): Promise<string> {
    const parts = stored.split(".");
    if (parts.length !== 4 || parts[0] !== "v1") throw new SecretBoxError("unrecognised ciphertext format");
    const key = this.all.get(parts[1] as string);
    if (!key) throw new SecretBoxError(`no configured encryption key has id ${parts[1]}`);
    try {
      const pt = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: fromBase64Url(parts[2] as string), additionalData: utf8.encode(aad) },
        key.key,
        fromBase64Url(parts[3] as string),
      );
      return utf8.decode(new Uint8Array(pt));
    } catch {
      throw new SecretBoxError("ciphertext failed authentication");
    }
  }
}
