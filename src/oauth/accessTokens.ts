/**
 * Access tokens: issuing them (JWTs with seed 002's claims by default, or
 * opaque tokens kept in the `TokenStore`) and verifying them on every request
 * of the resource server.
 */
import { Clock, Context, Duration, Effect, Option, Predicate, Redacted } from "effect"
import { type InsufficientScope, InvalidToken } from "../errors/OAuthError.ts"
import { Crypto } from "../services/Crypto.ts"
import { Jwks, type JwtClaims } from "../services/Jwks.ts"
import type { StoreError } from "../services/StoreError.ts"
import { TokenStore } from "../services/TokenStore.ts"
import { OAuthConfig, type ResolvedOAuthOptions } from "./config.ts"
import { formatScope, parseScope, requireScopes } from "./scopes.ts"
import { traced } from "../internal/traced.ts"

/** Whom and what an access token is for. */
export interface TokenSubject {
  readonly grantId: string
  readonly clientId: string
  readonly subject: string
  readonly scopes: ReadonlyArray<string>
  /** The RFC 8707 resource: the token's audience (default: the configured default audience). */
  readonly resource?: string | undefined
  /** The DPoP key to bind the token to (RFC 9449 §6: `cnf.jkt`, the key's JWK SHA-256 thumbprint). */
  readonly jkt?: string | undefined
}

/** A freshly issued access token. */
export interface IssuedAccessToken {
  readonly token: Redacted.Redacted<string>
  readonly format: "jwt" | "opaque"
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
  /** Seconds from issuance, for `expires_in`. */
  readonly expiresIn: number
}

/** The claim naming the grant a JWT access token belongs to, checked on every verification. */
export const GRANT_ID_CLAIM = "gid"

/** The `typ` of JWT access tokens (RFC 9068 §2.1). */
export const ACCESS_TOKEN_TYP = "at+jwt"

/**
 * The `typ` header values a JWT access token may carry: RFC 9068's `at+jwt`
 * (with or without `application/`), and the `JWT` (or none) of tokens issued
 * before this server used the profile, which keep verifying until they
 * expire. Any other type (another kind of JWT) is refused.
 */
const acceptedTyp = (typ: string | undefined): boolean =>
  typ === undefined || ["at+jwt", "application/at+jwt", "jwt"].includes(typ.toLowerCase())

/** Claims the custom-claims hook cannot set. */
const RESERVED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "cnf", GRANT_ID_CLAIM]

/**
 * Issue an access token for a grant: `expires_in` is the configured lifetime
 * (seed 002: 1 hour), cut short at `notAfter` (the grant's end) when given.
 * A JWT follows RFC 9068: header `typ: at+jwt`; claims `iss`, `exp`, `aud`,
 * `sub`, `client_id`, `iat`, `jti`, `scope` (plus the grant id and custom claims),
 * and `cnf: { jkt }` when the token is DPoP-bound (RFC 9449 §6.1); an opaque
 * token's record keeps the `jkt`.
 */
export const issueAccessToken = (
  grant: TokenSubject,
  notAfter?: number
): Effect.Effect<IssuedAccessToken, StoreError, OAuthConfig | Jwks | TokenStore | Crypto> =>
  // Chained steps, no generator: a JWT is issued on every refresh.
  Effect.flatMap(OAuthConfig, (config) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<IssuedAccessToken, StoreError, Jwks | TokenStore | Crypto> => {
      const expiresAt = Math.min(now + config.accessTokenTtl, notAfter ?? Number.POSITIVE_INFINITY)
      const audience = grant.resource ?? config.defaultAudience
      if (config.accessTokenFormat === "opaque") return issueOpaque(grant, now, expiresAt, audience)
      const custom = config.tokenClaims === undefined ? Effect.succeed({}) : config.tokenClaims({
        subject: grant.subject,
        clientId: grant.clientId,
        grantId: grant.grantId,
        scopes: grant.scopes,
        audience
      })
      return Effect.flatMap(custom, (claims) =>
        Effect.flatMap(Crypto, (crypto) =>
          Effect.flatMap(crypto.randomToken(16), (jti) =>
            Effect.flatMap(Jwks, (jwks) => {
              const extra: Record<string, unknown> = {}
              for (const [name, value] of Object.entries(claims)) if (!RESERVED_CLAIMS.includes(name)) extra[name] = value
              const iat = Math.floor(now / 1000)
              const exp = Math.floor(expiresAt / 1000)
              return Effect.map(
                jwks.sign({
                  ...extra,
                  iss: config.issuer,
                  sub: grant.subject,
                  aud: audience,
                  exp,
                  iat,
                  jti,
                  scope: formatScope(grant.scopes),
                  client_id: grant.clientId,
                  [GRANT_ID_CLAIM]: grant.grantId,
                  ...(grant.jkt === undefined ? {} : { cnf: { jkt: grant.jkt } })
                }, { typ: ACCESS_TOKEN_TYP }),
                (signed): IssuedAccessToken => ({ token: Redacted.make(signed.token), format: "jwt", expiresAt: exp * 1000, expiresIn: exp - iat })
              )
            }))))
    }))

/** An opaque access token: random, kept in the `TokenStore` (by its hash) until it expires. */
const issueOpaque = (
  grant: TokenSubject,
  now: number,
  expiresAt: number,
  audience: string
): Effect.Effect<IssuedAccessToken, StoreError, TokenStore | Crypto> =>
  Effect.gen(function*() {
    const token = yield* (yield* Crypto).randomToken()
    yield* (yield* TokenStore).saveAccessToken(token, {
      grantId: grant.grantId,
      clientId: grant.clientId,
      subject: grant.subject,
      scopes: grant.scopes,
      resource: audience,
      ...(grant.jkt === undefined ? {} : { jkt: grant.jkt }),
      ttl: Duration.millis(Math.max(0, expiresAt - now))
    })
    return { token: Redacted.make(token), format: "opaque", expiresAt, expiresIn: Math.floor((expiresAt - now) / 1000) }
  })

/** Seed 002's verification options; each defaults to the server's own settings. */
export interface VerifyAccessTokenOptions {
  /** The audience the token must be for (RFC 8707); default: the configured default audience. */
  readonly expectedAudience?: string | ReadonlyArray<string>
  /** Default: the configured issuer. */
  readonly issuer?: string
  /** Scopes every request needs; missing ones fail with `InsufficientScope`. */
  readonly requiredScopes?: ReadonlyArray<string>
  /** Default: the configured `clockTolerance`. */
  readonly clockTolerance?: Duration.DurationInput
}

/** What a verified access token says. */
export interface VerifiedAccessToken {
  readonly format: "jwt" | "opaque"
  readonly subject: string
  readonly clientId: string
  readonly grantId: string
  readonly scopes: ReadonlyArray<string>
  readonly audience: ReadonlyArray<string>
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
  readonly issuedAt?: number
  readonly jti?: string
  /** The DPoP key the token is bound to (`cnf.jkt`); absent for a bearer token. */
  readonly jkt?: string
  /** Every claim of a JWT (custom claims included); empty for opaque tokens. */
  readonly claims: JwtClaims
}

const malformed = () => new InvalidToken({ description: "token claims are malformed" })
const revoked = () => new InvalidToken({ description: "token has been revoked" })

const audiences = (expected: string | ReadonlyArray<string>): ReadonlyArray<string> =>
  typeof expected === "string" ? [expected] : expected

/**
 * The DPoP key of a `cnf` claim: `undefined` without one, `null` when it is
 * there but names no `jkt` (another confirmation method, which this server
 * never issues: refused rather than taken as a bearer token).
 */
const confirmedKey = (cnf: unknown): string | undefined | null => {
  if (cnf === undefined) return undefined
  return Predicate.isRecord(cnf) && typeof cnf["jkt"] === "string" && cnf["jkt"] !== "" ? cnf["jkt"] : null
}

/** The typed view of a verified JWT's claims; `InvalidToken` when one of ours is missing or mistyped. */
const readClaims = (claims: JwtClaims): Effect.Effect<VerifiedAccessToken, InvalidToken> => {
  const { aud, client_id, cnf, exp, iat, jti, scope, sub } = claims
  const grantId = claims[GRANT_ID_CLAIM]
  const scopes = typeof scope === "string" ? parseScope(scope) : scope === undefined ? [] : undefined
  const jkt = confirmedKey(cnf)
  if (
    typeof sub !== "string" || typeof client_id !== "string" || typeof grantId !== "string" ||
    typeof exp !== "number" || scopes === undefined || jkt === null
  ) return Effect.fail(malformed())
  return Effect.succeed({
    format: "jwt",
    subject: sub,
    clientId: client_id,
    grantId,
    scopes,
    audience: typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === "string") : [],
    expiresAt: exp * 1000,
    ...(typeof iat === "number" ? { issuedAt: iat * 1000 } : {}),
    ...(typeof jti === "string" ? { jti } : {}),
    ...(jkt === undefined ? {} : { jkt }),
    claims
  })
}

/**
 * Verify a bearer access token, as the resource server does on every request:
 * a JWT's signature, `kid`, algorithm, `typ` (`at+jwt`, or the `JWT` of tokens
 * issued before RFC 9068 was followed), `exp` (required), issuer and audience,
 * then its grant (one store read: a revoked grant fails its unexpired tokens);
 * an opaque token by its store record. Failures are `InvalidToken`, or
 * `InsufficientScope` naming the required scopes. A DPoP-bound token comes
 * back with its `jkt`: checking the proof that must accompany it is
 * `verifyPresentedToken`'s job (`presentedToken.ts`).
 */
export const verifyAccessToken = (
  token: string,
  options: VerifyAccessTokenOptions = {}
): Effect.Effect<VerifiedAccessToken, InvalidToken | InsufficientScope | StoreError, OAuthConfig | Jwks | TokenStore> =>
  // Steps chained without a generator: this runs on every request of a protected resource.
  Effect.contextWithEffect((context: Context.Context<OAuthConfig | TokenStore | Jwks>) => {
    const config = Context.get(context, OAuthConfig)
    const store = Context.get(context, TokenStore)
    const expected = audiences(options.expectedAudience ?? config.defaultAudience)
    const verified = token.split(".").length === 3 ? verifyJwt(token, options, config, store, Context.get(context, Jwks), expected) : verifyOpaque(token, config, store, expected)
    const { requiredScopes } = options
    return requiredScopes === undefined ? verified : Effect.tap(verified, (token) => requireScopes(token, requiredScopes))
  }).pipe(traced("OAuth.verifyAccessToken"))

/** A JWT access token: signature (or the verified-token cache), claims, `typ`, then its grant. */
const verifyJwt = (
  token: string,
  options: VerifyAccessTokenOptions,
  config: ResolvedOAuthOptions,
  store: TokenStore.Service,
  jwks: Jwks.Service,
  expected: ReadonlyArray<string>
): Effect.Effect<VerifiedAccessToken, InvalidToken | StoreError> =>
  jwks.verify(token, {
    issuer: options.issuer ?? config.issuer,
    audience: expected,
    clockTolerance: options.clockTolerance ?? Duration.seconds(config.clockToleranceSeconds)
  }).pipe(
    Effect.catchTag("JwtRejected", (rejected) => Effect.fail(new InvalidToken({ description: rejected.description }))),
    Effect.flatMap((jwt) => acceptedTyp(jwt.typ) ? readClaims(jwt.claims) : Effect.fail(new InvalidToken({ description: "token is not an access token" }))),
    Effect.flatMap((verified) =>
      Effect.flatMap(store.getGrant(verified.grantId), (grant) => Option.isNone(grant) ? Effect.fail(revoked()) : Effect.succeed(verified))
    )
  )

/** An opaque access token: its store record, for one of the expected audiences. */
const verifyOpaque = (
  token: string,
  config: ResolvedOAuthOptions,
  store: TokenStore.Service,
  expected: ReadonlyArray<string>
): Effect.Effect<VerifiedAccessToken, InvalidToken | StoreError> =>
  Effect.flatMap(store.getAccessToken(token), (record) => {
    if (Option.isNone(record)) return Effect.fail(new InvalidToken({ description: "token is unknown, expired or revoked" }))
    const { clientId, expiresAt, grantId, jkt, resource, scopes, subject } = record.value
    const audience = resource ?? config.defaultAudience
    if (!expected.includes(audience)) return Effect.fail(new InvalidToken({ description: "token is not for this audience" }))
    return Effect.succeed<VerifiedAccessToken>({
      format: "opaque",
      subject,
      clientId,
      grantId,
      scopes,
      audience: [audience],
      expiresAt,
      ...(jkt === undefined ? {} : { jkt }),
      claims: {}
    })
  })
