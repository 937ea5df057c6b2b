/**
 * Upstream federation (seed 002's orchestrated auth): our `/authorize` sends
 * the user to an upstream OAuth/OIDC provider with our own PKCE and state;
 * the provider's callback is redeemed for its tokens, which are kept in the
 * `ProviderTokenStore` under the pending authorization (and move to the grant
 * when our code is exchanged), and the user it names is approved.
 *
 * The provider is found through its metadata (OpenID Connect Discovery, else
 * RFC 8414), fetched once and cached. The subject is the `sub` its userinfo
 * endpoint returns for the new access token, unprefixed.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Clock, Context, type Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import {
  AccessDenied,
  type InvalidClient,
  InvalidRequest,
  type OAuthError,
  ServerError,
  TemporarilyUnavailable
} from "../errors/OAuthError.ts"
import { traced } from "../internal/traced.ts"
import { ClientStore } from "../services/ClientStore.ts"
import { Crypto } from "../services/Crypto.ts"
import { ProviderTokenStore } from "../services/ProviderTokenStore.ts"
import type { StoreError } from "../services/StoreError.ts"
import { TokenStore } from "../services/TokenStore.ts"
import { UpstreamTokenClient, UpstreamTokenError, type UpstreamTokenResponse } from "../services/UpstreamTokenClient.ts"
import {
  approve,
  authorize,
  AuthorizationErrorRedirect,
  type AuthorizationRedirect,
  type AuthorizationRequest,
  deny,
  type PendingAuthorization
} from "./authorize.ts"
import { isServerUrl, OAuthConfig } from "./config.ts"
import { s256 } from "./pkce.ts"
import { mergeRefreshed } from "./providerTokenRefresher.ts"
import * as UpstreamHttp from "./upstreamHttp.ts"

/** The provider id the upstream's tokens are kept under, unless configured otherwise. */
export const UPSTREAM_PROVIDER_ID = "upstream"

/** The upstream provider: issuer, our client at it, scopes and our callback URL. */
export interface FederationOptions {
  /** The upstream issuer: the base of its discovery documents, and the `issuer` they must state. */
  readonly issuer: string
  readonly clientId: string
  /** Sent with HTTP Basic (`client_secret_basic`); without one we are a public client. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Scopes to ask the upstream for (`offline_access` adds `prompt=consent`, OIDC Core §11). */
  readonly scopes: ReadonlyArray<string>
  /** Our redirect URI at the upstream (`<public URL>/callback`), registered there. */
  readonly redirectUri: string
  /** The id the tokens are stored and refreshed under (default `upstream`). */
  readonly providerId?: string
  /** How long discovered metadata is kept (default 1 hour); a failed discovery is not cached. */
  readonly metadataTtl?: Duration.DurationInput
  /** Per request to the upstream (default 10 seconds). */
  readonly timeout?: Duration.DurationInput
}

/** The parts of the upstream's metadata (OIDC Discovery / RFC 8414) federation uses. */
export const UpstreamMetadata = Schema.Struct({
  issuer: Schema.String,
  authorization_endpoint: Schema.String,
  token_endpoint: Schema.String,
  userinfo_endpoint: Schema.optional(Schema.String),
  code_challenge_methods_supported: Schema.optional(Schema.Array(Schema.String)),
  authorization_response_iss_parameter_supported: Schema.optional(Schema.Boolean)
})
export type UpstreamMetadata = typeof UpstreamMetadata.Type
const decodeMetadata = Schema.decodeUnknownOption(UpstreamMetadata)

/**
 * A call to the upstream's discovery or userinfo endpoint failed:
 * `Unavailable` (unreachable, timed out, 5xx or 429: retryable), `Invalid`
 * (an answer we cannot use), `Rejected` (userinfo refused the access token).
 * Never carries a token.
 */
export class FederationError extends Schema.TaggedError<FederationError>()("FederationError", {
  issuer: Schema.String,
  step: Schema.Literal("discovery", "userinfo"),
  reason: Schema.Literal("Unavailable", "Invalid", "Rejected"),
  status: Schema.optional(Schema.Number),
  description: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const detail = [this.status === undefined ? undefined : `HTTP ${this.status}`, this.description]
      .filter((part) => part !== undefined)
      .join(", ")
    return `upstream ${this.step} at ${this.issuer}: ${this.reason}${detail === "" ? "" : ` (${detail})`}`
  }
}

/**
 * The configured upstream provider: its settings, its metadata (cached) and
 * its userinfo endpoint. `Federation.layer(options)` also provides the
 * `UpstreamTokenClient` for it, whose token endpoint comes from the metadata.
 */
export class Federation extends Context.Tag("mcp-oauth-store/Federation")<Federation, Federation.Service>() {
  static readonly layer = (
    options: FederationOptions
  ): Layer.Layer<Federation | UpstreamTokenClient, never, HttpClient.HttpClient> => Layer.effectContext(makeFederation(options))
}

export declare namespace Federation {
  export interface Service {
    readonly providerId: string
    readonly issuer: string
    readonly clientId: string
    readonly redirectUri: string
    readonly scopes: ReadonlyArray<string>
    /** The upstream's metadata: discovered on first use, then cached. */
    readonly metadata: Effect.Effect<UpstreamMetadata, FederationError>
    /** Redeem the upstream's authorization code at its token endpoint (our PKCE verifier, our redirect URI). */
    readonly exchangeCode: (
      code: Redacted.Redacted<string>,
      codeVerifier: Redacted.Redacted<string>
    ) => Effect.Effect<UpstreamTokenResponse, UpstreamTokenError>
    /** The claims of the upstream's userinfo endpoint (OIDC Core §5.3) for a provider access token. */
    readonly userinfo: (accessToken: Redacted.Redacted<string>) => Effect.Effect<Readonly<Record<string, unknown>>, FederationError>
  }
}

const withoutTrailingSlash = (url: string) => url.replace(/\/+$/, "")

/** Where the metadata may be: OIDC Discovery §4 (path appended), then RFC 8414 §3.1 (well-known inserted). */
export const discoveryUrls = (issuer: string): ReadonlyArray<string> => {
  const url = new URL(issuer)
  const path = withoutTrailingSlash(url.pathname)
  return [`${url.origin}${path}/.well-known/openid-configuration`, `${url.origin}/.well-known/oauth-authorization-server${path}`]
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Check a metadata document against the issuer we asked (OIDC Discovery §4.3, RFC 8414 §3.3). */
const validateMetadata = (issuer: string, json: unknown): Checked<UpstreamMetadata> => {
  const decoded = decodeMetadata(json)
  if (Option.isNone(decoded)) return { ok: false, error: "not a metadata document" }
  const metadata = decoded.value
  if (withoutTrailingSlash(metadata.issuer) !== withoutTrailingSlash(issuer)) return { ok: false, error: "issuer does not match" }
  const endpoints = [metadata.authorization_endpoint, metadata.token_endpoint, metadata.userinfo_endpoint]
  if (!endpoints.every((endpoint) => endpoint === undefined || isServerUrl(endpoint))) {
    return { ok: false, error: "an endpoint is not an https URL" }
  }
  const methods = metadata.code_challenge_methods_supported
  if (methods !== undefined && !methods.includes("S256")) return { ok: false, error: "PKCE S256 is not supported" }
  return { ok: true, value: metadata }
}

type Checked<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: string }

/** Build the service and the `UpstreamTokenClient` of the configured provider. */
export const makeFederation = (options: FederationOptions) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const issuer = withoutTrailingSlash(options.issuer)
    const providerId = options.providerId ?? UPSTREAM_PROVIDER_ID
    const timeout = options.timeout ?? "10 seconds"

    /** GET a JSON document; the request (and any token in it) never travels with the error. */
    const get = (step: FederationError["step"], request: HttpClientRequest.HttpClientRequest) =>
      http.execute(HttpClientRequest.acceptJson(request)).pipe(
        Effect.flatMap((response) => Effect.map(response.text, (text) => ({ status: response.status, text }))),
        Effect.scoped,
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new FederationError({ issuer, step, reason: "Unavailable", description: "timed out" })
        }),
        Effect.catchTag("RequestError", "ResponseError", (error) =>
          Effect.fail(
            new FederationError({ issuer, step, reason: "Unavailable", description: `unreachable (${error._tag} ${error.reason})` })
          ))
      )

    const fetchMetadata = (url: string) =>
      Effect.gen(function*() {
        const { status, text } = yield* get("discovery", HttpClientRequest.get(url))
        if (status >= 500 || status === 429) {
          return yield* Effect.fail(new FederationError({ issuer, step: "discovery", reason: "Unavailable", status }))
        }
        if (status !== 200) return yield* Effect.fail(new FederationError({ issuer, step: "discovery", reason: "Invalid", status }))
        const checked = validateMetadata(issuer, parseJson(text))
        return checked.ok
          ? checked.value
          : yield* Effect.fail(new FederationError({ issuer, step: "discovery", reason: "Invalid", description: checked.error }))
      })

    const discover = Effect.gen(function*() {
      const [openid, oauth] = discoveryUrls(issuer)
      const first = yield* Effect.either(fetchMetadata(openid ?? issuer))
      if (first._tag === "Right") return first.right
      const second = yield* Effect.either(fetchMetadata(oauth ?? issuer))
      if (second._tag === "Right") return second.right
      // Report an outage first (it is what to retry), then a document that was found but unusable.
      const rank = (error: FederationError) => error.reason === "Unavailable" ? 2 : error.description === undefined ? 0 : 1
      return yield* Effect.fail(rank(second.left) > rank(first.left) ? second.left : first.left)
    }).pipe(
      Effect.tap(() => Effect.logInfo("upstream metadata discovered")),
      Effect.annotateLogs({ module: "Federation", issuer }),
      traced("Federation.discover")
    )
    const [cached, invalidate] = yield* Effect.cachedInvalidateWithTTL(discover, options.metadataTtl ?? "1 hour")
    const metadata = Effect.tapError(cached, () => invalidate)

    const userinfo = (accessToken: Redacted.Redacted<string>) =>
      Effect.gen(function*() {
        const { userinfo_endpoint } = yield* metadata
        if (userinfo_endpoint === undefined) {
          return yield* Effect.fail(
            new FederationError({ issuer, step: "userinfo", reason: "Invalid", description: "the provider has no userinfo endpoint" })
          )
        }
        const { status, text } = yield* get("userinfo", HttpClientRequest.get(userinfo_endpoint).pipe(HttpClientRequest.bearerToken(accessToken)))
        const fail = (reason: FederationError["reason"], description?: string) =>
          Effect.fail(new FederationError({ issuer, step: "userinfo", reason, status, ...(description === undefined ? {} : { description }) }))
        if (status === 401 || status === 403) return yield* fail("Rejected", "the access token was refused")
        if (status >= 500 || status === 429) return yield* fail("Unavailable")
        const json = status === 200 ? parseJson(text) : undefined
        return isRecord(json) ? json : yield* fail("Invalid", "not a userinfo response")
      }).pipe(traced("Federation.userinfo"))

    const tokenEndpoint = Effect.mapError(
      Effect.map(metadata, (m) => m.token_endpoint),
      (error) =>
        new UpstreamTokenError({
          providerId,
          reason: error.reason === "Unavailable" ? "Unavailable" : "InvalidResponse",
          description: "discovery failed"
        })
    )
    const tokens = yield* UpstreamHttp.make({
      [providerId]: {
        tokenEndpoint,
        clientId: options.clientId,
        ...(options.clientSecret === undefined ? {} : { clientSecret: options.clientSecret }),
        timeout
      }
    })
    const service: Federation.Service = {
      providerId,
      issuer,
      clientId: options.clientId,
      redirectUri: options.redirectUri,
      scopes: options.scopes,
      metadata,
      exchangeCode: (code, codeVerifier) => tokens.exchangeCode(providerId, { code, codeVerifier, redirectUri: options.redirectUri }),
      userinfo
    }
    return Context.make(Federation, service).pipe(Context.add(UpstreamTokenClient, tokens))
  })

/** Our request to the upstream's authorization endpoint, and the pending authorization behind it. */
export interface UpstreamAuthorizationStarted {
  readonly pending: PendingAuthorization
  /** Where to send the user: the upstream's authorization endpoint with our PKCE challenge and state. */
  readonly url: string
}

/** Separates the transaction id from the secret in our state at the upstream. */
const STATE_SEPARATOR = "."

const unavailable = () => new TemporarilyUnavailable({ description: "the upstream identity provider is unavailable" })

/**
 * Validate and save an authorization request (`authorize`), with a fresh PKCE
 * verifier and state secret for the upstream, and build the upstream
 * authorization URL. Our state there is `<transaction id>.<secret>`: the
 * callback finds the transaction by the id and compares the secret in
 * constant time. When the upstream cannot be discovered, the transaction is
 * dropped and the client gets `temporarily_unavailable`.
 */
export const startUpstreamAuthorization = (
  request: AuthorizationRequest
): Effect.Effect<
  UpstreamAuthorizationStarted,
  InvalidClient | InvalidRequest | AuthorizationErrorRedirect | StoreError,
  Federation | ClientStore | TokenStore | Crypto | OAuthConfig
> =>
  Effect.gen(function*() {
    const federation = yield* Federation
    const crypto = yield* Crypto
    const codeVerifier = yield* crypto.randomToken(32)
    const secret = yield* crypto.randomToken(24)
    const { subject: _ignored, ...asked } = request
    const pending = yield* authorize({ ...asked, upstream: { state: secret, codeVerifier: Redacted.make(codeVerifier) } })
    const metadata = yield* Effect.catchAll(federation.metadata, (failure) => {
      const error = unavailable()
      return Effect.logWarning("upstream discovery failed").pipe(
        Effect.annotateLogs({ module: "Federation", detail: failure.message }),
        Effect.zipRight(deny(pending.transaction.id, error)),
        Effect.flatMap((redirect) => Effect.fail(new AuthorizationErrorRedirect({ error, redirect })))
      )
    })
    const url = new URL(metadata.authorization_endpoint)
    const params: Record<string, string> = {
      response_type: "code",
      client_id: federation.clientId,
      redirect_uri: federation.redirectUri,
      state: `${pending.transaction.id}${STATE_SEPARATOR}${secret}`,
      code_challenge: yield* s256(codeVerifier),
      code_challenge_method: "S256"
    }
    if (federation.scopes.length > 0) params["scope"] = federation.scopes.join(" ")
    if (federation.scopes.includes("offline_access")) params["prompt"] = "consent"
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
    return { pending, url: url.toString() }
  }).pipe(traced("Federation.start"))

/** The query of the upstream's redirect to our callback (RFC 6749 §4.1.2, RFC 9207). */
export interface UpstreamCallback {
  readonly state?: string | undefined
  readonly code?: string | undefined
  readonly error?: string | undefined
  readonly iss?: string | undefined
}

/** An error code from the upstream, safe to log: a short token of printable characters. */
const safeCode = (code: string) => code.replace(/[^\w.-]/g, "?").slice(0, 64)

/**
 * The upstream's redirect to our callback. A state that is missing, unknown
 * or does not match fails with `InvalidRequest` (for the user: the client is
 * not known good). Otherwise the transaction ends with a redirect to the
 * client: the upstream's refusal, a failed code exchange or userinfo call
 * deny it (`access_denied`, `temporarily_unavailable` or `server_error`);
 * else the provider tokens are stored under the transaction id and the
 * userinfo `sub` is approved (the redirect carries our code).
 */
export const completeUpstreamAuthorization = (
  callback: UpstreamCallback
): Effect.Effect<
  AuthorizationRedirect,
  InvalidRequest | StoreError,
  Federation | TokenStore | ProviderTokenStore | Crypto | OAuthConfig
> =>
  Effect.gen(function*() {
    const federation = yield* Federation
    const crypto = yield* Crypto
    const state = callback.state ?? ""
    const at = state.indexOf(STATE_SEPARATOR)
    if (at <= 0) return yield* Effect.fail(new InvalidRequest({ description: "the upstream callback has no valid state" }))
    const transactionId = state.slice(0, at)
    const transaction = yield* (yield* TokenStore).getTransaction(transactionId)
    const expected = Option.isSome(transaction) ? transaction.value.upstream : undefined
    if (expected === undefined || !crypto.timingSafeEqual(state.slice(at + 1), expected.state)) {
      return yield* Effect.fail(new InvalidRequest({ description: "the upstream callback's state is unknown, expired or does not match" }))
    }
    /** Drop the transaction and send `error` to the client; `detail` (never a secret) goes to the log. */
    const refuse = (error: OAuthError, detail: string) =>
      Effect.logWarning("upstream authorization failed").pipe(
        Effect.annotateLogs({ detail }),
        Effect.zipRight(deny(transactionId, error))
      )

    if (callback.error !== undefined) {
      return yield* refuse(
        new AccessDenied({ description: "the upstream identity provider refused the authorization" }),
        `the provider answered ${safeCode(callback.error)}`
      )
    }
    const metadata = yield* Effect.either(federation.metadata)
    if (metadata._tag === "Left") {
      return yield* refuse(unavailable(), metadata.left.message)
    }
    // RFC 9207: a response that names another issuer (or none, when promised) may be a mix-up attack.
    const issuerOk = callback.iss === undefined
      ? metadata.right.authorization_response_iss_parameter_supported !== true
      : withoutTrailingSlash(callback.iss) === federation.issuer
    if (!issuerOk) {
      return yield* refuse(new AccessDenied({ description: "the upstream response is not from the configured issuer" }), "issuer mismatch")
    }
    if (callback.code === undefined || callback.code === "") {
      return yield* refuse(new ServerError({ description: "the upstream identity provider sent no code" }), "no code")
    }

    const exchanged = yield* Effect.either(federation.exchangeCode(Redacted.make(callback.code), expected.codeVerifier))
    if (exchanged._tag === "Left") {
      const error = exchanged.left.reason === "Unavailable"
        ? unavailable()
        : new ServerError({ description: "the upstream code exchange failed" })
      return yield* refuse(error, exchanged.left.message)
    }
    const response = exchanged.right
    const claims = yield* Effect.either(federation.userinfo(response.accessToken))
    if (claims._tag === "Left") {
      const error = claims.left.reason === "Unavailable"
        ? unavailable()
        : new ServerError({ description: "the upstream userinfo request failed" })
      return yield* refuse(error, claims.left.message)
    }
    const subject = claims.right["sub"]
    if (typeof subject !== "string" || subject.length === 0 || subject.length > 255) {
      return yield* refuse(new ServerError({ description: "the upstream userinfo has no valid sub" }), "no valid sub")
    }

    const providerTokens = yield* ProviderTokenStore
    const now = yield* Clock.currentTimeMillis
    const tokens = mergeRefreshed({ accessToken: response.accessToken, scopes: federation.scopes }, response, now)
    yield* providerTokens.storeTokens(transactionId, federation.providerId, tokens)
    const approved = yield* approve({ transactionId, subject }).pipe(
      // Taken meanwhile (a replayed callback): the tokens stored above belong to nobody.
      Effect.tapError(() => Effect.ignore(providerTokens.deleteAll(transactionId)))
    )
    yield* Effect.logInfo("upstream authorization completed")
    return approved.redirect
  }).pipe(
    Effect.annotateLogs({ module: "Federation" }),
    traced("Federation.complete")
  )
