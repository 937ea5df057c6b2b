/**
 * The token endpoint's grants: the authorization code exchange (RFC 6749
 * §4.1.3 with PKCE) and refresh with rotation (RFC 6749 §6, OAuth 2.1 §4.3).
 */
import { Clock, Duration, Effect, Metric, Option, Redacted } from "effect"
import {
  InvalidGrant,
  type InvalidDpopProof,
  InvalidRequest,
  InvalidScope,
  InvalidTarget,
  type InvalidClient,
  UnauthorizedClient,
  UnsupportedGrantType,
  type UseDpopNonce
} from "../errors/OAuthError.ts"
import type { RegisteredClient } from "../schema/client.ts"
import type { Grant, RefreshTokenRecord, Rotation } from "../schema/token.ts"
import type { ClientStore } from "../services/ClientStore.ts"
import { Crypto } from "../services/Crypto.ts"
import type { Jwks } from "../services/Jwks.ts"
import { ProviderTokenStore } from "../services/ProviderTokenStore.ts"
import type { ReplayCache } from "../services/ReplayCache.ts"
import type { StoreError } from "../services/StoreError.ts"
import { TokenStore } from "../services/TokenStore.ts"
import { issueAccessToken, type TokenSubject } from "./accessTokens.ts"
import { authenticateClient, type ClientCredentials } from "./clientAuth.ts"
import { OAuthConfig } from "./config.ts"
import { checkDpopProof, type CheckedDpopProof, type DpopProofInput, rememberDpopProof } from "./dpop.ts"
import { verifyPkce } from "./pkce.ts"
import { sameResource } from "./resources.ts"
import { formatScope, missingScopes, parseScope } from "./scopes.ts"
import { tokensIssued } from "../internal/metrics.ts"
import { traced } from "../internal/traced.ts"

/** Tokens issued by the token endpoint, secrets still `Redacted`. */
export interface IssuedTokens {
  readonly accessToken: Redacted.Redacted<string>
  /** `DPoP` when the access token is bound to the request's DPoP key (RFC 9449 §5), `Bearer` otherwise. */
  readonly tokenType: "Bearer" | "DPoP"
  /** Seconds. */
  readonly expiresIn: number
  readonly refreshToken?: Redacted.Redacted<string>
  readonly scopes: ReadonlyArray<string>
  readonly grantId: string
}

/** The RFC 6749 §5.1 response body. */
export const tokenResponse = (issued: IssuedTokens): Record<string, string | number> => ({
  access_token: Redacted.value(issued.accessToken),
  token_type: issued.tokenType,
  expires_in: issued.expiresIn,
  ...(issued.refreshToken === undefined ? {} : { refresh_token: Redacted.value(issued.refreshToken) }),
  ...(issued.scopes.length === 0 ? {} : { scope: formatScope(issued.scopes) })
})

/** The services the token endpoint uses. */
export type TokenEndpointServices = ClientStore | TokenStore | ProviderTokenStore | ReplayCache | Crypto | Jwks | OAuthConfig

/** Every error the token endpoint returns besides `StoreError`. */
export type TokenEndpointError =
  | InvalidRequest
  | InvalidClient
  | InvalidGrant
  | InvalidScope
  | InvalidTarget
  | UnauthorizedClient
  | UnsupportedGrantType
  | InvalidDpopProof
  | UseDpopNonce

/** A token request with `grant_type=authorization_code`. */
export interface AuthorizationCodeGrantRequest {
  readonly client: ClientCredentials
  readonly code?: string | undefined
  /** Required unless the client registered exactly one redirect URI. */
  readonly redirectUri?: string | undefined
  readonly codeVerifier?: string | undefined
  /** RFC 8707: when present, must be the resource the code was issued for. */
  readonly resource?: string | undefined
  /** The request's DPoP proof (RFC 9449 §5), when it has a `DPoP` header: the tokens are bound to its key. */
  readonly dpop?: DpopProofInput | undefined
}

/** A token request with `grant_type=refresh_token`. */
export interface RefreshTokenGrantRequest {
  readonly client: ClientCredentials
  readonly refreshToken?: string | undefined
  /** A narrower scope for the new access token (RFC 6749 §6); never wider than the grant's. */
  readonly scope?: string | undefined
  readonly resource?: string | undefined
  /** The request's DPoP proof; required, with the same key, when the refresh token is DPoP-bound. */
  readonly dpop?: DpopProofInput | undefined
}

const mayUse = (client: RegisteredClient, grantType: string) =>
  client.metadata.grant_types.includes(grantType)
    ? Effect.void
    : Effect.fail(new UnauthorizedClient({ description: `client may not use the ${grantType} grant` }))

/** Whether a client is public (no credentials of its own): its refresh tokens are bound to its DPoP key (RFC 9449 §5). */
const isPublic = (client: RegisteredClient): boolean => client.metadata.token_endpoint_auth_method === "none"

/**
 * Check the request's DPoP proof, if it has one, before any store is touched
 * (nothing is remembered yet). A client that registered
 * `dpop_bound_access_tokens` must send one (RFC 9449 §5.2).
 */
const checkProof = (
  client: RegisteredClient,
  dpop: DpopProofInput | undefined
): Effect.Effect<CheckedDpopProof | undefined, InvalidRequest | InvalidDpopProof | UseDpopNonce, OAuthConfig | Crypto> => {
  if (dpop !== undefined) return checkDpopProof(dpop, "token")
  return client.metadata.dpop_bound_access_tokens === true
    ? Effect.fail(new InvalidRequest({ description: "this client registered dpop_bound_access_tokens: its token requests need a DPoP proof" }))
    : Effect.succeed(undefined)
}

/**
 * Issue an access token and, when the client may refresh, the first refresh
 * token of the grant. With a DPoP proof the access token is bound to its key,
 * and so is a public client's refresh chain (RFC 9449 §5).
 */
const issuePair = (client: RegisteredClient, grant: Grant, subject: TokenSubject, proof: CheckedDpopProof | undefined) =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const jkt = proof?.jkt
    const access = yield* issueAccessToken({ ...subject, jkt }, grant.expiresAt)
    let refreshToken: Redacted.Redacted<string> | undefined
    if (client.metadata.grant_types.includes("refresh_token")) {
      const token = yield* (yield* Crypto).randomToken(32)
      yield* (yield* TokenStore).saveRefreshToken(token, {
        grantId: grant.id,
        clientId: subject.clientId,
        subject: subject.subject,
        scopes: subject.scopes,
        ...(subject.resource === undefined ? {} : { resource: subject.resource }),
        ...(jkt !== undefined && isPublic(client) ? { jkt } : {}),
        ttl: Duration.millis(config.refreshTokenTtl),
        absoluteExpiresAt: grant.expiresAt
      })
      refreshToken = Redacted.make(token)
    }
    const issued: IssuedTokens = {
      accessToken: access.token,
      tokenType: jkt === undefined ? "Bearer" : "DPoP",
      expiresIn: access.expiresIn,
      ...(refreshToken === undefined ? {} : { refreshToken }),
      scopes: subject.scopes,
      grantId: grant.id
    }
    return issued
  })

/** Whether a token request's `resource` (RFC 8707) names another resource than the one recorded (equal canonical forms agree). */
const differentResource = (requested: string | undefined, recorded: string | undefined): boolean =>
  requested !== undefined && (recorded === undefined || !sameResource(requested, recorded))

/** Fail the request, revoking a grant that can no longer be trusted. */
const revokeAnd = <E>(grantId: string, error: E) =>
  Effect.flatMap(TokenStore, (store) => store.revokeGrant(grantId)).pipe(Effect.zipRight(Effect.fail(error)))

/** Count what a grant type issued (`mcp_oauth_tokens_issued_total`). */
const countIssued = (counters: typeof tokensIssued[keyof typeof tokensIssued], issued: IssuedTokens) =>
  Effect.zipRight(
    Metric.increment(counters.access),
    issued.refreshToken === undefined ? Effect.void : Metric.increment(counters.refresh)
  )

const grantGone = () => new InvalidGrant({ description: "the grant has been revoked or has expired" })

/**
 * Exchange an authorization code. The client authenticates; the code is
 * consumed exactly once (a replay revokes the grant it belonged to, RFC 6749
 * §4.1.2); it must be this client's, for this redirect URI, with a PKCE
 * verifier that hashes to its challenge (a consumed code that fails these is
 * burnt: its grant is revoked). Provider tokens saved under the pending
 * authorization move to the grant (seed 002's `migrateTokens`). With a DPoP
 * proof (checked before the code is consumed, so a client told to use a
 * nonce can retry), the proof's `jti` is remembered once the code checks out
 * (a replayed proof revokes the grant) and the tokens are bound to its key.
 */
export const exchangeCode = (
  request: AuthorizationCodeGrantRequest
): Effect.Effect<IssuedTokens, TokenEndpointError | StoreError, TokenEndpointServices> =>
  Effect.gen(function*() {
    const client = yield* authenticateClient(request.client)
    yield* mayUse(client, "authorization_code")
    if (request.code === undefined) return yield* Effect.fail(new InvalidRequest({ description: "code is required" }))
    if (request.codeVerifier === undefined) {
      return yield* Effect.fail(new InvalidRequest({ description: "code_verifier is required" }))
    }
    const proof = yield* checkProof(client, request.dpop)
    const store = yield* TokenStore
    const consumption = yield* store.consumeCode(request.code)
    if (consumption._tag === "NotFound") {
      return yield* Effect.fail(new InvalidGrant({ description: "authorization code is invalid or expired" }))
    }
    if (consumption._tag === "Replayed") {
      yield* Effect.logWarning("authorization code replayed; revoking its grant")
      return yield* revokeAnd(
        consumption.grantId,
        new InvalidGrant({ description: "authorization code was already used; its grant is revoked" })
      )
    }
    const code = consumption.code
    if (code.clientId !== client.clientId) {
      return yield* revokeAnd(code.grantId, new InvalidGrant({ description: "authorization code was issued to another client" }))
    }
    const registered = client.metadata.redirect_uris
    const redirectUri = request.redirectUri ?? (registered.length === 1 ? registered[0] : undefined)
    if (redirectUri !== code.redirectUri) {
      return yield* revokeAnd(code.grantId, new InvalidGrant({ description: "redirect_uri does not match the authorization request" }))
    }
    const crypto = yield* Crypto
    if (!(yield* verifyPkce(request.codeVerifier, code.codeChallenge, crypto.timingSafeEqual))) {
      return yield* revokeAnd(code.grantId, new InvalidGrant({ description: "PKCE verification failed" }))
    }
    if (differentResource(request.resource, code.resource)) {
      return yield* revokeAnd(code.grantId, new InvalidTarget({ description: "resource differs from the authorization request" }))
    }
    if (code.dpopJkt !== undefined && proof?.jkt !== code.dpopJkt) {
      return yield* revokeAnd(code.grantId, new InvalidGrant({
        description: "the authorization request named a DPoP key (dpop_jkt): present a DPoP proof of that key"
      }))
    }
    if (proof !== undefined) {
      yield* rememberDpopProof(proof).pipe(Effect.catchTag("InvalidDpopProof", (error) => revokeAnd(code.grantId, error)))
    }
    const grant = yield* store.getGrant(code.grantId)
    if (Option.isNone(grant)) return yield* Effect.fail(grantGone())
    if (code.authorizationId !== undefined) {
      yield* (yield* ProviderTokenStore).migrateTokens(code.authorizationId, code.grantId)
    }
    const issued = yield* issuePair(client, grant.value, {
      grantId: code.grantId,
      clientId: code.clientId,
      subject: code.subject,
      scopes: code.scopes,
      resource: code.resource
    }, proof)
    // A replay that raced this exchange revoked the grant: what was just issued must not survive it.
    if (Option.isNone(yield* store.getGrant(code.grantId))) return yield* revokeAnd(code.grantId, grantGone())
    yield* countIssued(tokensIssued.authorizationCode, issued)
    return issued
  }).pipe(traced("OAuth.exchangeCode"))

/**
 * Refresh: the client authenticates and must own the refresh token; the token
 * is rotated atomically (`TokenStore.rotateRefreshToken`) for a successor
 * generated here, issued with a new access token. The immediate predecessor
 * replayed within the grace window gets the same pair again; any other reuse
 * revokes the grant. The chain ends with the grant (its absolute lifetime).
 *
 * DPoP (RFC 9449 §5): a chain bound to a key (a public client's, bound when
 * the grant's first tokens were issued with a proof) refreshes only with a
 * proof of that key: without one, or with another key, `invalid_grant`. The
 * proof's `jti` is remembered once the token and its binding check out; the
 * new access token is bound to the proof's key. A grace-window retry gets the
 * same pair only with the same key (or none) as the first attempt.
 */
export const refreshTokens = (
  request: RefreshTokenGrantRequest
): Effect.Effect<IssuedTokens, TokenEndpointError | StoreError, TokenEndpointServices> => {
  const presented = request.refreshToken
  // Chained steps, no generator: this runs on every refresh.
  return Effect.flatMap(authenticateClient(request.client), (client): Refreshed => {
    if (!client.metadata.grant_types.includes("refresh_token")) {
      return Effect.fail(new UnauthorizedClient({ description: "client may not use the refresh_token grant" }))
    }
    if (presented === undefined) return Effect.fail(new InvalidRequest({ description: "refresh_token is required" }))
    return Effect.flatMap(checkProof(client, request.dpop), (proof): Refreshed =>
      Effect.flatMap(TokenStore, (store) =>
        Effect.flatMap(store.getRefreshToken(presented), (found): Refreshed => {
          if (Option.isNone(found)) return Effect.fail(new InvalidGrant({ description: "refresh token is invalid or expired" }))
          const record = found.value
          if (record.clientId !== client.clientId) {
            return Effect.fail(new InvalidGrant({ description: "refresh token was issued to another client" }))
          }
          if (record.jkt !== undefined && proof?.jkt !== record.jkt) {
            return Effect.logWarning("DPoP-bound refresh token presented without a proof of its key").pipe(
              Effect.annotateLogs({ client_id: client.clientId, grant_id: record.grantId, proof: proof === undefined ? "none" : "another key" }),
              Effect.zipRight(Effect.fail(new InvalidGrant({ description: "refresh token is bound to a DPoP key: present a DPoP proof of that key" })))
            )
          }
          const requested = parseScope(request.scope)
          if (requested === undefined) return Effect.fail(new InvalidScope({ description: "scope is malformed" }))
          if (missingScopes(record.scopes, requested).length > 0) {
            return Effect.fail(new InvalidScope({ description: "scope exceeds the grant" }))
          }
          if (differentResource(request.resource, record.resource)) {
            return Effect.fail(new InvalidTarget({ description: "resource differs from the grant's" }))
          }
          return Effect.flatMap(store.getGrant(record.grantId), (grant): Refreshed => {
            if (Option.isNone(grant)) return Effect.fail(grantGone())
            const rotate = rotateRefresh(store, presented, record, requested.length === 0 ? record.scopes : requested, proof?.jkt, grant.value)
            return proof === undefined ? rotate : Effect.zipRight(rememberDpopProof(proof), rotate)
          })
        })))
  }).pipe(traced("OAuth.refreshTokens"))
}

/** What a refresh answers. */
type Refreshed = Effect.Effect<IssuedTokens, TokenEndpointError | StoreError, TokenEndpointServices>

/**
 * A refresh that checked out: a successor and a new access token, then the
 * atomic rotation (`TokenStore.rotateRefreshToken`) decides what the client
 * gets: the new pair, the pair of a grace-window retry, or nothing (reuse
 * revokes the grant; a token gone meanwhile is `invalid_grant`).
 */
const rotateRefresh = (
  store: TokenStore.Service,
  presented: string,
  record: RefreshTokenRecord,
  scopes: ReadonlyArray<string>,
  jkt: string | undefined,
  grant: Grant
): Effect.Effect<IssuedTokens, InvalidGrant | StoreError, TokenEndpointServices> =>
  Effect.flatMap(Crypto, (crypto) =>
    Effect.flatMap(crypto.randomToken(32), (token) => {
      const successor = Redacted.make(token)
      return Effect.flatMap(
        issueAccessToken({
          grantId: record.grantId,
          clientId: record.clientId,
          subject: record.subject,
          scopes,
          resource: record.resource,
          jkt
        }, grant.expiresAt),
        (access) =>
          Effect.flatMap(
            store.rotateRefreshToken(presented, { refreshToken: successor, accessToken: access.token, ...(jkt === undefined ? {} : { jkt }) }),
            (rotation): Effect.Effect<IssuedTokens, InvalidGrant | StoreError, TokenEndpointServices> => {
              const discardAccess: Effect.Effect<unknown, StoreError> = access.format === "opaque" ? store.revokeAccessToken(Redacted.value(access.token)) : Effect.void
              switch (rotation._tag) {
                case "Rotated":
                  return Effect.flatMap(store.getGrant(record.grantId), (still) => {
                    if (Option.isNone(still)) return revokeAnd(record.grantId, grantGone())
                    const issued: IssuedTokens = {
                      accessToken: access.token,
                      tokenType: jkt === undefined ? "Bearer" : "DPoP",
                      expiresIn: access.expiresIn,
                      refreshToken: successor,
                      scopes,
                      grantId: record.grantId
                    }
                    return Effect.as(countIssued(tokensIssued.refreshToken, issued), issued)
                  })
                case "GraceReplay":
                  return Effect.zipRight(discardAccess, graceReplay(rotation, jkt, grant, record.grantId))
                case "ReuseDetected":
                  return Effect.logWarning("refresh token reuse detected; grant revoked").pipe(
                    Effect.zipRight(Effect.fail(new InvalidGrant({ description: "refresh token was already used; its grant is revoked" })))
                  )
                case "NotFound":
                  return Effect.zipRight(discardAccess, Effect.fail(new InvalidGrant({ description: "refresh token is invalid or expired" })))
              }
            }
          )
      )
    }))

/** The pair a grace-window retry gets again: only with the same key (or none) as the first attempt. */
const graceReplay = (
  rotation: Extract<Rotation, { readonly _tag: "GraceReplay" }>,
  jkt: string | undefined,
  grant: Grant,
  grantId: string
): Effect.Effect<IssuedTokens, InvalidGrant, OAuthConfig> => {
  if (rotation.pair.jkt !== jkt) {
    return Effect.fail(new InvalidGrant({ description: "retry the refresh with the DPoP key (or none) of the first attempt" }))
  }
  return Effect.flatMap(OAuthConfig, (config) =>
    Effect.map(Clock.currentTimeMillis, (now): IssuedTokens => {
      const expiresAt = Math.min(rotation.current.createdAt + config.accessTokenTtl, grant.expiresAt)
      return {
        accessToken: rotation.pair.accessToken,
        tokenType: rotation.pair.jkt === undefined ? "Bearer" : "DPoP",
        expiresIn: Math.max(0, Math.floor((expiresAt - now) / 1000)),
        refreshToken: rotation.pair.refreshToken,
        scopes: rotation.current.scopes,
        grantId
      }
    }))
}

/** A token request of any grant type, as the token endpoint receives it. */
export interface TokenRequest extends AuthorizationCodeGrantRequest, Omit<RefreshTokenGrantRequest, "client"> {
  readonly grantType?: string | undefined
}

/** The token endpoint: dispatch on `grant_type` (`authorization_code`, `refresh_token`). */
export const token = (
  request: TokenRequest
): Effect.Effect<IssuedTokens, TokenEndpointError | StoreError, TokenEndpointServices> => {
  switch (request.grantType) {
    case "authorization_code":
      return exchangeCode(request)
    case "refresh_token":
      return refreshTokens(request)
    case undefined:
      return Effect.fail(new InvalidRequest({ description: "grant_type is required" }))
    default:
      return Effect.fail(new UnsupportedGrantType({ description: "supported grant types: authorization_code, refresh_token" }))
  }
}
