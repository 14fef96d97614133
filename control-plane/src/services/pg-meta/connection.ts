import { createCipheriv, createHash, randomBytes } from "node:crypto";

/**
 * postgres-meta takes a per-request connection string in the `x-connection-encrypted` header,
 * encrypted the way CryptoJS.AES.encrypt(text, passphrase) does it with its CRYPTO_KEY: OpenSSL's
 * "Salted__" format, AES-256-CBC, key and IV from EVP_BytesToKey (MD5, one round) over the
 * passphrase and an 8-byte random salt, base64. Implemented on node:crypto so the control plane
 * needs no CryptoJS; the format is what postgres-meta's `CryptoJS.AES.decrypt` reads.
 */
export function encryptForPgMeta(plaintext: string, passphrase: string): string {
  const salt = randomBytes(8);
  const pass = Buffer.from(passphrase, "utf8");
  const blocks: Buffer[] = [];
  let prev = Buffer.alloc(0);
  while (Buffer.concat(blocks).length < 48) {
    prev = createHash("md5")
      .update(Buffer.concat([prev, pass, salt]))
      .digest();
    blocks.push(prev);
  }
  const material = Buffer.concat(blocks);
  const cipher = createCipheriv("aes-256-cbc", material.subarray(0, 32), material.subarray(32, 48));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([Buffer.from("Salted__", "ascii"), salt, body]).toString("base64");
}

export interface DbAddress {
  host: string;
  port: string;
  database: string;
  sslmode: string;
  /** Server settings sent as startup options (`-c name=value`), which outrank the role's own settings. */
  settings?: Record<string, string>;
}

/** A postgres:// URL for `user`/`password` at `addr` (as postgres-meta, inside the project's network, sees the db). */
export function connectionUrl(user: string, password: string, addr: DbAddress): string {
  const u = new URL("postgresql://");
  u.hostname = addr.host;
  u.port = addr.port;
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  u.pathname = `/${encodeURIComponent(addr.database)}`;
  u.searchParams.set("sslmode", addr.sslmode);
  const settings = Object.entries(addr.settings ?? {});
  if (settings.length > 0) {
    for (const [name, value] of settings) {
      if (!/^[a-z_]+$/.test(name) || !/^[A-Za-z0-9_.-]+$/.test(value)) {
        throw new Error(`setting ${name} cannot be sent as a startup option`);
      }
    }
    u.searchParams.set("options", settings.map(([name, value]) => `-c ${name}=${value}`).join(" "));
  }
  return u.toString();
}
