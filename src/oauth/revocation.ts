/** Token revocation (RFC 7009) and introspection (RFC 7662). */
import { Effect, Option } from "effect"
import { type InvalidClient, InvalidRequest } from "../errors/OAuthError.ts"
import type { ClientStore } from "../services/ClientStore.ts"
import type { Jwks } from "../services/Jwks.ts"
import type { StoreError } from "../services/StoreError.ts"
import { TokenStore } from "../services/TokenStore.ts"
import { verifyAccessToken, type VerifiedAccessToken } from "./accessTokens.ts"
import { authenticateClient, type ClientCredentials } from "./clientAuth.ts"
import { OAuthConfig } from "./config.ts"
import { formatScope } from "./scopes.ts"
import { traced } from "../internal/traced.ts"

/** An RFC 7009 revocation request, from an authenticated client. */
export interface RevocationRequest {
  readonly client: ClientCredentials
  readonly token?: string | undefined
  /** `access_token` or `refresh_token`: which lookup goes first (RFC 7009 §2.1); anything else is ignored. */
  readonly tokenTypeHint?: string | undefined
}

/** An access token this server issued and still honours (any of its resources), or `None`. */
const liveAccessToken = (token: string) =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    return yield* verifyAccessToken(token, { expectedAudience: config.resources }).pipe(
      Effect.map(Option.some),
      Effect.catchTags({ InvalidToken: () => Effect.succeed(Option.none()), InsufficientScope: () => Effect.succeed(Option.none()) })
    )
  })

/** A refresh token that is live, not yet rotated, and whose grant is live, or `None`. */
const liveRefreshToken = (token: string) =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const record = yield* store.getRefreshToken(token)
    if (Option.isNone(record) || record.value.rotatedAt !== undefined) return Option.none()
    const grant = yield* store.getGrant(record.value.grantId)
    return Option.isSome(grant) ? record : Option.none()
  })

const orderByHint = <A>(hint: string | undefined, access: A, refresh: A): ReadonlyArray<A> =>
  hint === "access_token" ? [access, refresh] : [refresh, access]

/**
 * Revoke a token (RFC 7009). The client authenticates and may revoke only
 * its own tokens. A refresh token revokes its whole grant (every access and
 * refresh token and the provider tokens under it); so does a JWT access token
 * (a JWT cannot be revoked alone: its grant is what verification checks); an
 * opaque access token is removed on its own. Unknown, expired or foreign
 * tokens succeed without effect (RFC 7009 §2.2).
 */
export const revoke = (
  request: RevocationRequest
): Effect.Effect<void, InvalidClient | InvalidRequest | StoreError, ClientStore | TokenStore | Jwks | OAuthConfig> =>
  Effect.gen(function*() {
    const client = yield* authenticateClient(request.client)
    const token = request.token
    if (token === undefined || token === "") return yield* Effect.fail(new InvalidRequest({ description: "token is required" }))
    const store = yield* TokenStore

    const asRefresh = Effect.gen(function*() {
      const record = yield* store.getRefreshToken(token)
      if (Option.isNone(record)) return false
      if (record.value.clientId === client.clientId) yield* store.revokeGrant(record.value.grantId)
      return true
    })
    const asAccess = Effect.gen(function*() {
      const verified = yield* liveAccessToken(token)
      if (Option.isNone(verified)) return false
      const { clientId, format, grantId } = verified.value
      if (clientId !== client.clientId) return true
      if (format === "opaque") yield* store.revokeAccessToken(token)
      else yield* store.revokeGrant(grantId)
      return true
    })
    for (const attempt of orderByHint(request.tokenTypeHint, asAccess, asRefresh)) {
      if (yield* attempt) return
    }
  }).pipe(traced("OAuth.revoke"))

/** An RFC 7662 introspection request, from an authenticated client. */
export interface IntrospectionRequest {
  readonly token?: string | undefined
  readonly tokenTypeHint?: string | undefined
  /** When set, tokens of other clients are reported inactive (RFC 7662 §2.2). */
  readonly clientId?: string | undefined
}

/** The RFC 7662 §2.2 response: `{ active: false }` or the token's claims. */
export type IntrospectionResponse =
  | { readonly active: false }
  | {
    readonly active: true
    readonly scope: string
    readonly client_id: string
    readonly sub: string
    readonly exp: number
    readonly iat?: number
    readonly iss: string
    readonly aud?: string | ReadonlyArray<string>
    readonly jti?: string
    /**
     * `Bearer`, or `DPoP` for a DPoP-bound access token (RFC 9449 §6.2);
     * refresh tokens carry none (RFC 7662 names only RFC 6749 §5.1 types).
     */
    readonly token_type?: "Bearer" | "DPoP"
    /** The key a DPoP-bound token is bound to (RFC 9449 §6.2): its JWK SHA-256 thumbprint. */
    readonly cnf?: { readonly jkt: string }
  }

const inactive: IntrospectionResponse = { active: false }

const describeAccess = (issuer: string, token: VerifiedAccessToken): IntrospectionResponse => ({
  active: true,
  scope: formatScope(token.scopes),
  client_id: token.clientId,
  sub: token.subject,
  exp: Math.floor(token.expiresAt / 1000),
  ...(token.issuedAt === undefined ? {} : { iat: Math.floor(token.issuedAt / 1000) }),
  iss: issuer,
  aud: token.audience.length === 1 ? token.audience[0] as string : token.audience,
  ...(token.jti === undefined ? {} : { jti: token.jti }),
  token_type: token.jkt === undefined ? "Bearer" : "DPoP",
  ...(token.jkt === undefined ? {} : { cnf: { jkt: token.jkt } })
})

/**
 * Introspect a token (RFC 7662): active when it is an access token that
 * verifies (signature, expiry, live grant) or a live, unrotated refresh token
 * of a live grant. A DPoP-bound token reports its key as `cnf.jkt` (and an
 * access token `token_type: DPoP`, RFC 9449 §6.2); no proof is checked here.
 * Authenticating the caller is the HTTP layer's job.
 */
export const introspect = (
  request: IntrospectionRequest
): Effect.Effect<IntrospectionResponse, InvalidRequest | StoreError, TokenStore | Jwks | OAuthConfig> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const token = request.token
    if (token === undefined || token === "") return yield* Effect.fail(new InvalidRequest({ description: "token is required" }))
    const mine = (clientId: string) => request.clientId === undefined || request.clientId === clientId

    const asAccess = Effect.map(liveAccessToken(token), (found) =>
      Option.flatMap(found, (t) => mine(t.clientId) ? Option.some(describeAccess(config.issuer, t)) : Option.some(inactive)))
    const asRefresh = Effect.map(liveRefreshToken(token), (found) =>
      Option.map(found, (r): IntrospectionResponse =>
        !mine(r.clientId) ? inactive : {
          active: true,
          scope: formatScope(r.scopes),
          client_id: r.clientId,
          sub: r.subject,
          exp: Math.floor(r.expiresAt / 1000),
          iat: Math.floor(r.createdAt / 1000),
          iss: config.issuer,
          ...(r.resource === undefined ? {} : { aud: r.resource }),
          ...(r.jkt === undefined ? {} : { cnf: { jkt: r.jkt } })
        }))
    for (const attempt of orderByHint(request.tokenTypeHint, asAccess, asRefresh)) {
      const result = yield* attempt
      if (Option.isSome(result)) return result.value
    }
    return inactive
  }).pipe(traced("OAuth.introspect"))
