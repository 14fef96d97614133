import { scryptAsync } from "@noble/hashes/scrypt.js";
import { fromBase64Url, randomBytes, timingSafeEqual, toBase64Url, utf8 } from "./encoding.js";

/**
 * Password hashing with scrypt, a memory-hard KDF (see docs/adr/0003-password-hashing.md).
 * Stored as a PHC-style string: `$scrypt$ln=15,r=8,p=3$<salt>$<hash>` (base64url).
 * The parameters travel with the hash, so they can be raised later without breaking old ones.
 *
 * The KDF function is injectable: Node passes its native `crypto.scrypt` (fast), other runtimes
 * fall back to @noble/hashes' pure-JS scrypt. Both compute the same function.
 */

export interface ScryptParams {
  ln: number; // log2(N)
  r: number;
  p: number;
}

export type ScryptFn = (
  password: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
  dkLen: number,
) => Promise<Uint8Array>;

/** OWASP's scrypt recommendation N=2^15, r=8, p=3: 32 MiB of memory per hash. */
export const DEFAULT_SCRYPT: ScryptParams = { ln: 15, r: 8, p: 3 };
const DK_LEN = 32;
const MAX_PASSWORD_BYTES = 1024;

export const portableScrypt: ScryptFn = (password, salt, { ln, r, p }, dkLen) =>
  scryptAsync(password, salt, { N: 2 ** ln, r, p, dkLen, maxmem: 2 ** (ln + 8) * r + 1024 });

export class PasswordHasher {
  constructor(
    private readonly kdf: ScryptFn = portableScrypt,
    private readonly params: ScryptParams = DEFAULT_SCRYPT,
  ) {}

  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const dk = await this.kdf(encodePassword(password), salt, this.params, DK_LEN);
    const { ln, r, p } = this.params;
    return `$scrypt$ln=${ln},r=${r},p=${p}$${toBase64Url(salt)}$${toBase64Url(dk)}`;
  }

  /** Constant-time check of `password` against a stored hash. Malformed hashes never match. */
  async verify(password: string, stored: string): Promise<boolean> {
    const parsed = parseHash(stored);
    if (!parsed) return false;
    const dk = await this.kdf(encodePassword(password), parsed.salt, parsed.params, parsed.hash.length);
    return timingSafeEqual(dk, parsed.hash);
  }

  /**
   * Spend the same time as a real verification when there is no account, so response time
   * does not tell which emails exist.
   */
  async burn(password: string): Promise<void> {
    await this.kdf(encodePassword(password), randomBytes(16), this.params, DK_LEN);
  }
}

function encodePassword(password: string): Uint8Array {
  const bytes = utf8.encode(password.normalize("NFKC"));
  // Bounded so a megabyte "password" cannot be used to burn CPU.
  return bytes.length > MAX_PASSWORD_BYTES ? bytes.slice(0, MAX_PASSWORD_BYTES) : bytes;
}

function parseHash(stored: string): { params: ScryptParams; salt: Uint8Array; hash: Uint8Array } | null {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return null;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  // Refuse parameters that would let a tampered row exhaust memory.
  if (params.ln < 10 || params.ln > 20 || params.r < 1 || params.r > 16 || params.p < 1 || params.p > 16) return null;
  return { params, salt: fromBase64Url(m[4] as string), hash: fromBase64Url(m[5] as string) };
}
