/**
 * The resource side of an access token as a request presents it: with the
 * `Bearer` scheme (RFC 6750), or with the `DPoP` scheme and a proof
 * (RFC 9449 §7). A DPoP-bound token is refused as a bearer token (§7.2), and
 * a bearer token is refused under the DPoP scheme.
 */
import { Effect } from "effect"
import { type InsufficientScope, InvalidDpopProof, InvalidToken, type UseDpopNonce } from "../errors/OAuthError.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { Jwks } from "../services/Jwks.ts"
import type { ReplayCache } from "../services/ReplayCache.ts"
import type { StoreError } from "../services/StoreError.ts"
import type { TokenStore } from "../services/TokenStore.ts"
import { type VerifiedAccessToken, verifyAccessToken, type VerifyAccessTokenOptions } from "./accessTokens.ts"
import type { OAuthConfig } from "./config.ts"
import { checkDpopProof, type DpopProofInput, rememberDpopProof } from "./dpop.ts"
import { requireScopes } from "./scopes.ts"
import { traced } from "../internal/traced.ts"

/** An access token as the `Authorization` header presents it, with the request's DPoP proof when it has one. */
export interface PresentedToken {
  readonly scheme: "Bearer" | "DPoP"
  readonly token: string
  /** The request's `DPoP` header, method and URLs; `undefined` when it carries no `DPoP` header. */
  readonly dpop?: DpopProofInput | undefined
}

/** Every way `verifyPresentedToken` refuses. */
export type PresentedTokenError = InvalidToken | InsufficientScope | InvalidDpopProof | UseDpopNonce | StoreError

/**
 * Verify a presented access token as a protected resource must (RFC 9449
 * §4.3, §7.1, §7.2). `Bearer`: the token verifies (`verifyAccessToken`) and
 * is not DPoP-bound. `DPoP`: a proof comes with it and passes every check
 * with `ath` the token's hash (`InvalidDpopProof`, or `UseDpopNonce`), the
 * token verifies and is bound to the proof's key (`InvalidToken` otherwise),
 * and only then is the proof's `jti` remembered (a replay is
 * `InvalidDpopProof`), so only token holders ever write to the
 * `ReplayCache`. Required scopes are checked last, once the binding holds.
 */
export const verifyPresentedToken = (
  presented: PresentedToken,
  options: VerifyAccessTokenOptions = {}
): Effect.Effect<VerifiedAccessToken, PresentedTokenError, OAuthConfig | Jwks | TokenStore | Crypto | ReplayCache> =>
{
  const { requiredScopes, ...verification } = options
  const verified = presented.scheme === "DPoP" ? verifyDpopBound(presented, verification) : verifyBearer(presented.token, verification)
  return (requiredScopes === undefined ? verified : Effect.tap(verified, (token) => requireScopes(token, requiredScopes))).pipe(
    traced("OAuth.verifyPresentedToken")
  )
}

/** A token under the Bearer scheme: verified, and refused when it is DPoP-bound (one chain, no generator: the hot path). */
const verifyBearer = (token: string, verification: VerifyAccessTokenOptions) =>
  Effect.flatMap(verifyAccessToken(token, verification), (verified) =>
    verified.jkt === undefined ? Effect.succeed(verified) : Effect.fail(
      new InvalidToken({ description: "the access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof" })
    ))

/** A token under the DPoP scheme: its proof checked, the token verified and bound to the proof's key, the proof remembered. */
const verifyDpopBound = (presented: PresentedToken, verification: VerifyAccessTokenOptions) =>
  Effect.gen(function*() {
    if (presented.dpop === undefined) {
      return yield* new InvalidDpopProof({ description: "a DPoP proof (the DPoP header) must accompany a DPoP access token" })
    }
    const proof = yield* checkDpopProof(presented.dpop, "resource", presented.token)
    const verified = yield* verifyAccessToken(presented.token, verification)
    if (verified.jkt === undefined) {
      return yield* new InvalidToken({ description: "the access token is not DPoP-bound: present it with the Bearer scheme" })
    }
    if (verified.jkt !== proof.jkt) return yield* new InvalidToken({ description: "Invalid DPoP key binding" })
    yield* rememberDpopProof(proof)
    return verified
  })
