import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { utf8 } from "./encoding.js";

/** Claims of a dashboard access token (GoTrue-compatible where Studio reads them). */
export interface AccessClaims {
  sub: string;
  email: string;
  session_id: string;
  aal: "aal1" | "aal2";
  role: "authenticated";
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class TokenError extends Error {
  override name = "TokenError";
  constructor(
    message: string,
    readonly reason: "expired" | "invalid",
  ) {
    super(message);
  }
}

type CryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

const ISSUER = "supamanager";

/** At most this many verified tokens are remembered per AccessTokens (the oldest goes first). */
export const VERIFIED_TOKENS_MAX = 10_000;
const AUDIENCE = "authenticated";

/** HS256 access tokens signed with SUPAMANAGER_JWT_SECRET (see docs/adr/0004-dashboard-sessions.md). */
export class AccessTokens {
  private readonly secret: Uint8Array;
  /**
   * The HMAC key, imported once (ADR 0033): handed raw bytes, jose imports a WebCrypto key on every
   * sign and verify, which cost as much as the verification itself.
   */
  #key: Promise<CryptoKey> | undefined;
  /**
   * Tokens that passed verification, with their claims and expiry (ADR 0042). A client sends the
   * same access token on every request for its whole lifetime, and verifying it again gives the
   * same answer until it expires: the signature covers every claim, and the key only changes with
   * the process's configuration. Only the exact string that verified is remembered (a token that
   * differs by one character is verified afresh), an entry never outlives the token's `exp`, and
   * revocation was never the token's job: the session check (middleware/auth.ts) still runs.
   */
  readonly #verified = new Map<string, { claims: AccessClaims; expMs: number }>();
  constructor(
    secret: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number,
  ) {
    this.secret = utf8.encode(secret);
  }

  private key(): Promise<CryptoKey> {
    this.#key ??= crypto.subtle.importKey("raw", this.secret, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    return this.#key;
  }

  async sign(claims: AccessClaims): Promise<{ token: string; expiresAt: number; expiresIn: number }> {
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + this.ttlSeconds;
    const token = await new SignJWT({
      email: claims.email,
      session_id: claims.session_id,
      aal: claims.aal,
      amr: [{ method: "password", timestamp: iat }],
      role: claims.role,
    })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(claims.sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(await this.key());
    return { token, expiresAt: exp, expiresIn: this.ttlSeconds };
  }

  async verify(token: string): Promise<AccessClaims> {
    const known = this.#verified.get(token);
    if (known) {
      // jose's rule: expired once now ≥ exp (whole seconds).
      if (Math.floor(this.now() / 1000) * 1000 < known.expMs) return known.claims;
      this.#verified.delete(token);
      throw new TokenError("token has expired", "expired");
    }
    const { claims, exp } = await this.#verifyAfresh(token);
    if (this.#verified.size >= VERIFIED_TOKENS_MAX) {
      const oldest = this.#verified.keys().next().value;
      if (oldest !== undefined) this.#verified.delete(oldest);
    }
    this.#verified.set(token, { claims, expMs: exp * 1000 });
    return claims;
  }

  /** Tokens remembered as verified (for tests). */
  get verifiedSize(): number {
    return this.#verified.size;
  }

  async #verifyAfresh(token: string): Promise<{ claims: AccessClaims; exp: number }> {
    try {
      const { payload } = await jwtVerify(token, await this.key(), {
        algorithms: ["HS256"],
        issuer: ISSUER,
        audience: AUDIENCE,
        currentDate: new Date(this.now()),
        requiredClaims: ["exp", "sub", "iat"],
      });
      const { sub, email, session_id, aal } = payload as Record<string, unknown>;
      if (typeof sub !== "string" || typeof session_id !== "string" || typeof email !== "string") {
        throw new TokenError("token is missing claims", "invalid");
      }
      // Users and sessions are keyed by UUID: any other value is a forged or foreign token, and
      // must not reach a uuid column (PostgreSQL would refuse it with an error, not a 401).
      if (!UUID.test(sub) || !UUID.test(session_id)) {
        throw new TokenError("token claims are malformed", "invalid");
      }
      return {
        claims: { sub, email, session_id, aal: aal === "aal2" ? "aal2" : "aal1", role: "authenticated" },
        exp: payload.exp as number,
      };
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new TokenError("token has expired", "expired");
      throw new TokenError("token is invalid", "invalid");
    }
  }
}
