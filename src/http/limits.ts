/**
 * What anonymous callers may do and store: the request body limit, and the
 * per-address and overall budgets of `/register`, `GET /authorize` and the
 * consent page's sign-in, kept in the store's `RateLimiter` (so every
 * instance sharing the store shares them), and how a refusal is answered
 * (429 with `Retry-After`: an OAuth error body for clients, a page for
 * people) and logged.
 */
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Duration, Effect, Layer } from "effect"
import { TemporarilyUnavailable } from "../errors/OAuthError.ts"
import { policyOrError } from "../internal/rateLimit.ts"
import { type AuthorizationRequestLimits, type ClientMetadataLimits, InvalidOAuthOptions, OAuthConfig } from "../oauth/config.ts"
import { type RateLimitDecision, RateLimiter, type RateLimitPolicy } from "../services/RateLimiter.ts"
import type { StoreError } from "../services/StoreError.ts"
import { clientAddressKey, parseTrustProxy, type TrustedProxies, type TrustProxy } from "./clientAddress.ts"
import { errorPage } from "./pages.ts"
import { htmlResponse, renderedError } from "./respond.ts"

/**
 * A rate limit: bursts of up to `limit` actions, and `limit` per `window` on
 * average (a token bucket: one action comes back every `window / limit`;
 * see `RateLimiter`).
 */
export interface RateLimit {
  readonly limit: number
  readonly window: Duration.DurationInput
}

/**
 * Limits on what anonymous callers may do and store, each with a default;
 * `false` turns a rate limit off. Client addresses are the socket's peer,
 * or what `trustProxy` lets the server read from `X-Forwarded-For`.
 */
export interface LimitsOptions {
  /** `POST /register`; and how long each metadata member may be (`ClientMetadataLimits`, for metadata documents too). */
  readonly register?: Partial<ClientMetadataLimits> & {
    /** Registrations per client address (default 20 per hour). */
    readonly perAddress?: RateLimit | false
    /** The whole metadata document, in bytes (default 16 KiB); over it: `invalid_client_metadata`. */
    readonly maxDocumentBytes?: number
  }
  /** `GET /authorize`; and how long its parameters may be (`AuthorizationRequestLimits`). */
  readonly authorize?: Partial<AuthorizationRequestLimits> & {
    /** Authorization requests per client address (default 20 per minute). */
    readonly perAddress?: RateLimit | false
    /**
     * Pending authorizations anonymous requests may open per transaction
     * lifetime, all addresses together (default 500). A token bucket of `n`
     * per lifetime lets at most `2n - 1` be created within any one lifetime,
     * so the default keeps the memory store's 1,000 pending authorizations
     * from ever filling up: a flood is refused, and never evicts a
     * consent page a user has open.
     */
    readonly pending?: number | false
  }
  /** Sign-in on the consent page: wrong API keys. */
  readonly signIn?: {
    /** Per client address, across authorizations (default 10 per 15 minutes). */
    readonly failuresPerAddress?: RateLimit | false
    /**
     * Per user (default 100 per 15 minutes). An API key names no user until
     * it is right, so a wrong one is a guess at every user's key: these
     * failures count against every user alike, one budget for all.
     */
    readonly failuresPerUser?: RateLimit | false
    /** Per pending authorization: the last refuses it (`access_denied`) (default 5). */
    readonly failuresPerAuthorization?: number
  }
}

/** The defaults of `LimitsOptions`. */
export const DEFAULT_LIMITS = {
  registerPerAddress: { limit: 20, window: "1 hour" },
  maxDocumentBytes: 16 * 1024,
  authorizePerAddress: { limit: 20, window: "1 minute" },
  pendingAuthorizations: 500,
  signInFailuresPerAddress: { limit: 10, window: "15 minutes" },
  signInFailuresPerUser: { limit: 100, window: "15 minutes" },
  signInFailuresPerAuthorization: 5
} as const

/** The limits as the handlers apply them: policies for the `RateLimiter` (`undefined`: off). */
export interface HttpLimitSettings {
  /** Larger request bodies are refused with 413. */
  readonly maxBodyBytes: number
  /** Larger registration documents are refused with `invalid_client_metadata`. */
  readonly maxRegistrationBytes: number
  readonly trustProxy: TrustedProxies
  readonly register: RateLimitPolicy | undefined
  readonly authorize: RateLimitPolicy | undefined
  readonly pendingAuthorizations: RateLimitPolicy | undefined
  readonly signInPerAddress: RateLimitPolicy | undefined
  readonly signInPerUser: RateLimitPolicy | undefined
  readonly signInPerAuthorization: RateLimitPolicy
}

/** The server's request limits. */
export class HttpLimits extends Context.Tag("mcp-oauth-store/HttpLimits")<HttpLimits, HttpLimitSettings>() {}

/** The key of the one budget all users share (`signInPerUser`). */
export const EVERY_USER = "every-user"

/** The key of the one budget all anonymous authorization requests share. */
export const EVERY_ADDRESS = "every-address"

const invalid = (description: string) => new InvalidOAuthOptions({ description })

/** A rate limit as a `RateLimiter` policy, checked as the `RateLimiter` would check it. */
const checkedPolicy = (name: string, bucket: string, rate: RateLimit): Effect.Effect<RateLimitPolicy, InvalidOAuthOptions> => {
  const candidate = { bucket, limit: rate.limit, window: rate.window }
  const checked = policyOrError(candidate, "HttpLimits")
  return "interval" in checked
    ? Effect.succeed(candidate)
    : Effect.fail(invalid(`${name}: ${checked.description ?? "not a usable rate limit"}`))
}

/** `checkedPolicy`, or `undefined` for a limit turned off (`false`). */
const policy = (name: string, bucket: string, option: RateLimit | false): Effect.Effect<RateLimitPolicy | undefined, InvalidOAuthOptions> =>
  option === false ? Effect.succeed(undefined) : checkedPolicy(name, bucket, option)

const wholeNumber = (name: string, value: number): Effect.Effect<number, InvalidOAuthOptions> =>
  Number.isInteger(value) && value >= 1 ? Effect.succeed(value) : Effect.fail(invalid(`${name} must be a whole number of at least 1`))

/** The options checked and resolved; windows tied to the pending authorization's lifetime come from `OAuthConfig`. */
export const makeLimits = (
  options: { readonly limits?: LimitsOptions; readonly maxBodyBytes?: number; readonly trustProxy?: TrustProxy }
): Effect.Effect<HttpLimitSettings, InvalidOAuthOptions, OAuthConfig> =>
  Effect.gen(function*() {
    const config = yield* OAuthConfig
    const limits = options.limits ?? {}
    const trustProxy = parseTrustProxy(options.trustProxy)
    if (typeof trustProxy === "string") return yield* Effect.fail(invalid(`trustProxy: ${trustProxy}`))
    const pending = limits.authorize?.pending ?? DEFAULT_LIMITS.pendingAuthorizations
    const perAuthorization = yield* wholeNumber(
      "signIn.failuresPerAuthorization",
      limits.signIn?.failuresPerAuthorization ?? DEFAULT_LIMITS.signInFailuresPerAuthorization
    )
    // One failure comes back per transaction lifetime: within its life a pending authorization sees at most `n`.
    const signInPerAuthorization = yield* checkedPolicy("signIn.failuresPerAuthorization", "signin-authorization", {
      limit: perAuthorization,
      window: Duration.millis(config.transactionTtl * perAuthorization)
    })
    return {
      maxBodyBytes: yield* wholeNumber("maxBodyBytes", options.maxBodyBytes ?? 1024 * 1024),
      maxRegistrationBytes: yield* wholeNumber("register.maxDocumentBytes", limits.register?.maxDocumentBytes ?? DEFAULT_LIMITS.maxDocumentBytes),
      trustProxy,
      register: yield* policy("register.perAddress", "register", limits.register?.perAddress ?? DEFAULT_LIMITS.registerPerAddress),
      authorize: yield* policy("authorize.perAddress", "authorize", limits.authorize?.perAddress ?? DEFAULT_LIMITS.authorizePerAddress),
      pendingAuthorizations: yield* policy(
        "authorize.pending",
        "authorize-pending",
        pending === false ? false : { limit: pending, window: Duration.millis(config.transactionTtl) }
      ),
      signInPerAddress: yield* policy(
        "signIn.failuresPerAddress",
        "signin-address",
        limits.signIn?.failuresPerAddress ?? DEFAULT_LIMITS.signInFailuresPerAddress
      ),
      signInPerUser: yield* policy("signIn.failuresPerUser", "signin-user", limits.signIn?.failuresPerUser ?? DEFAULT_LIMITS.signInFailuresPerUser),
      signInPerAuthorization
    }
  })

/** `HttpLimits` from the options; needs `OAuthConfig` (the transaction lifetime). */
export const limitsLayer = (
  options: { readonly limits?: LimitsOptions; readonly maxBodyBytes?: number; readonly trustProxy?: TrustProxy } = {}
): Layer.Layer<HttpLimits, InvalidOAuthOptions, OAuthConfig> => Layer.effect(HttpLimits, makeLimits(options))

/** The per-address limit key of a request, under the configured proxies. */
export const clientKey = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string, never, HttpLimits> =>
  Effect.flatMap(HttpLimits, (limits) => clientAddressKey(request, limits.trustProxy))

/** Take one token of `policy` for `key`; with the limit off, always allowed (`undefined`). */
export const consume = (
  policy: RateLimitPolicy | undefined,
  key: string
): Effect.Effect<RateLimitDecision | undefined, StoreError, RateLimiter> =>
  policy === undefined ? Effect.succeed(undefined) : Effect.flatMap(RateLimiter, (limiter) => limiter.consume(policy, key))

/** Give back a token `consume` took (nothing when the limit is off, or nothing was taken). */
export const refund = (
  policy: RateLimitPolicy | undefined,
  key: string,
  taken: RateLimitDecision | undefined
): Effect.Effect<void, StoreError, RateLimiter> =>
  policy === undefined || taken === undefined || !taken.allowed
    ? Effect.void
    : Effect.flatMap(RateLimiter, (limiter) => limiter.refund(policy, key))

/** Whether a decision refuses (a limit that is off never does). */
export const refused = (decision: RateLimitDecision | undefined): decision is RateLimitDecision & { readonly allowed: false } =>
  decision !== undefined && !decision.allowed

/** Whole seconds to wait, for `Retry-After`: at least 1. */
export const retryAfterSeconds = (decision: RateLimitDecision): number => Math.max(1, Math.ceil(decision.retryAfterMs / 1000))

/** "in 3 minutes", "in 40 seconds": when to try again, for a page. */
const waitText = (seconds: number): string =>
  seconds >= 120 ? `in ${Math.ceil(seconds / 60)} minutes` : `in ${seconds} ${seconds === 1 ? "second" : "seconds"}`

/** Log a refusal by a limit: which limit, the address key, how long to wait (never a credential). */
export const logRefusal = (limit: string, clientAddress: string, decision: RateLimitDecision): Effect.Effect<void> =>
  Effect.logWarning("rate limited").pipe(
    Effect.annotateLogs({ limit, client_address: clientAddress, retry_after_s: retryAfterSeconds(decision) })
  )

/** A response with its status replaced and `Retry-After` set. */
const retryLater = (response: HttpServerResponse.HttpServerResponse, status: number, seconds: number) =>
  HttpServerResponse.setHeader(HttpServerResponse.setStatus(response, status), "retry-after", String(seconds))

/** A 429 for an OAuth client: `temporarily_unavailable` (RFC 6749 has no code of its own for it), with `Retry-After`. */
export const tooManyRequestsJson = (decision: RateLimitDecision, description: string): HttpServerResponse.HttpServerResponse => {
  const seconds = retryAfterSeconds(decision)
  const error = new TemporarilyUnavailable({ description: `${description}; try again in ${seconds} s` })
  return retryLater(renderedError(error), 429, seconds)
}

/** A page for a person: what happened and when to try again (429, or 503 for the server's own budget), with `Retry-After`. */
export const waitPage = (
  decision: RateLimitDecision,
  title: string,
  description: string,
  status: 429 | 503 = 429
): HttpServerResponse.HttpServerResponse => {
  const seconds = retryAfterSeconds(decision)
  return retryLater(htmlResponse(errorPage(title, `${description} Try again ${waitText(seconds)}.`)), status, seconds)
}
