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
const AUDIENCE = "authenticated";

/** HS256 access tokens signed with SUPAMANAGER_JWT_SECRET (see docs/adr/0004-dashboard-sessions.md). */
export class AccessTokens {
  private readonly secret: Uint8Array;
  /**
   * The HMAC key, imported once (ADR 0033): handed raw bytes, jose imports a WebCrypto key on every
   * sign and verify, which cost as much as the verification itself.
   */
  #key: Promise<CryptoKey> | undefined;
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
      return { sub, email, session_id, aal: aal === "aal2" ? "aal2" : "aal1", role: "authenticated" };
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new TokenError("token has expired", "expired");
      throw new TokenError("token is invalid", "invalid");
    }
  }
}
