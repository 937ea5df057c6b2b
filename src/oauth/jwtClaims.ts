/**
 * The claim checks of a JWT that depend on the request rather than on the
 * token's bytes: issuer, audience, `nbf` and `exp` against the current time.
 * The same rules and order as `jose`'s `jwtVerify` (seconds, tolerance on
 * both sides), so a token whose signature was verified before can be
 * re-checked without verifying the signature again.
 */
import type { JwtClaims } from "../services/Jwks.ts"

export interface ClaimExpectations {
  readonly issuer?: string | undefined
  readonly audience?: string | ReadonlyArray<string> | undefined
  readonly toleranceSeconds: number
  /** Seconds since the epoch (whole seconds, as `jose` counts). */
  readonly nowSeconds: number
}

const audienceMatches = (aud: unknown, expected: ReadonlyArray<string>): boolean =>
  typeof aud === "string" ? expected.includes(aud) : Array.isArray(aud) ? expected.some((a) => aud.includes(a)) : false

/** Why the claims fail the expectations (the text `Jwks.verify` reports), or `undefined` when they pass. */
export const claimProblem = (claims: JwtClaims, expected: ClaimExpectations): string | undefined => {
  const { audience, issuer, nowSeconds, toleranceSeconds } = expected
  if (issuer !== undefined && claims["iss"] !== issuer) return "token issuer mismatch"
  if (audience !== undefined && !audienceMatches(claims["aud"], typeof audience === "string" ? [audience] : audience)) {
    return "token is not for this audience"
  }
  const { exp, nbf } = claims
  if (typeof nbf === "number" && nbf > nowSeconds + toleranceSeconds) return "token is not yet valid"
  if (typeof exp !== "number") return "token has no expiry"
  if (exp <= nowSeconds - toleranceSeconds) return "token has expired"
  return undefined
}
