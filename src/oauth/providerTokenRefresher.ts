/**
 * Upstream provider tokens in seed 002's orchestrated mode: hand out a valid
 * provider access token for (grant, provider), refreshing it upstream shortly
 * before it expires, once, however many callers need it at the same moment.
 */
import { Clock, Context, Deferred, Duration, Effect, Layer, Metric, Option, Schema } from "effect"
import { Keys } from "../internal/keys.ts"
import type { ProviderTokens } from "../schema/providerTokens.ts"
import { ProviderTokenStore } from "../services/ProviderTokenStore.ts"
import { RefreshLock } from "../services/RefreshLock.ts"
import type { StoreError } from "../services/StoreError.ts"
import { UpstreamTokenClient, UpstreamTokenError, type UpstreamTokenResponse } from "../services/UpstreamTokenClient.ts"
import { upstreamRefreshes } from "../internal/metrics.ts"
import { traced } from "../internal/traced.ts"

/**
 * The user must authorize with the provider again: there are no tokens for
 * this (grant, provider), the access token expired with no refresh token to
 * renew it, or the provider refused the refresh token (`invalid_grant`; the
 * tokens have been deleted).
 */
export class ReauthorizationRequired extends Schema.TaggedError<ReauthorizationRequired>()("ReauthorizationRequired", {
  authorizationId: Schema.String,
  providerId: Schema.String,
  reason: Schema.Literal("NoTokens", "Expired", "InvalidGrant")
}) {
  override get message(): string {
    return `provider ${this.providerId} needs authorization again (${this.reason})`
  }
}

/** Why a valid provider token could not be handed out. */
export type ProviderTokenError = ReauthorizationRequired | UpstreamTokenError | StoreError

/** How early before expiry provider tokens are refreshed, and how long a refresh may hold the lock. */
export interface ProviderTokenRefresherOptions {
  /** Seed 002's `skewSeconds`: refresh this long before the access token expires (default 60). */
  readonly skewSeconds?: number
  /** The longest a refresh may hold its lease (default 30 seconds). */
  readonly lockTtl?: Duration.DurationInput
  /** How often a caller waiting for another instance's refresh re-reads the store (default 200 ms). */
  readonly pollInterval?: Duration.DurationInput
}

/**
 * Hands out valid provider tokens, refreshing them upstream when needed.
 * `ProviderTokenRefresher.layer(options)` builds it over the
 * `ProviderTokenStore`, an `UpstreamTokenClient` and a `RefreshLock`.
 */
export class ProviderTokenRefresher extends Context.Tag("mcp-oauth-store/ProviderTokenRefresher")<
  ProviderTokenRefresher,
  ProviderTokenRefresher.Service
>() {
  static readonly layer = (
    options: ProviderTokenRefresherOptions = {}
  ): Layer.Layer<ProviderTokenRefresher, never, ProviderTokenStore | UpstreamTokenClient | RefreshLock> =>
    Layer.scoped(ProviderTokenRefresher, makeProviderTokenRefresher(options))
}

export declare namespace ProviderTokenRefresher {
  export interface Service {
    /**
     * The provider tokens of (authorization, provider) with an access token
     * valid for at least `skewSeconds` more (or with no known expiry). When it
     * is not, the tokens are refreshed upstream first: in one process, one
     * upstream call however many callers wait for it; across instances, one
     * holder of the `RefreshLock` lease refreshes while the others re-read.
     */
    readonly getValidTokens: (authorizationId: string, providerId: string) => Effect.Effect<ProviderTokens, ProviderTokenError>
  }
}

/** The stored tokens after an upstream refresh: what the provider left out is kept, the refresh token above all. */
export const mergeRefreshed = (previous: ProviderTokens, response: UpstreamTokenResponse, now: number): ProviderTokens => {
  const { accessExpiresAt: _a, refreshExpiresAt: _r, refreshToken: _t, ...kept } = previous
  const refreshToken = response.refreshToken ?? previous.refreshToken
  const refreshExpiresAt = response.refreshToken === undefined
    ? previous.refreshExpiresAt
    : response.refreshExpiresIn === undefined
    ? undefined
    : now + response.refreshExpiresIn * 1000
  return {
    ...kept,
    accessToken: response.accessToken,
    ...(refreshToken === undefined ? {} : { refreshToken }),
    ...(response.tokenType === undefined ? {} : { tokenType: response.tokenType }),
    ...(response.expiresIn === undefined ? {} : { accessExpiresAt: now + response.expiresIn * 1000 }),
    ...(refreshExpiresAt === undefined ? {} : { refreshExpiresAt }),
    ...(response.scopes === undefined ? {} : { scopes: response.scopes })
  }
}

/** Build the refresher; in-flight refreshes run in the layer's scope, so a caller that gives up does not cancel them. */
export const makeProviderTokenRefresher = (options: ProviderTokenRefresherOptions = {}) =>
  Effect.gen(function*() {
    const store = yield* ProviderTokenStore
    const upstream = yield* UpstreamTokenClient
    const lock = yield* RefreshLock
    const scope = yield* Effect.scope
    const skewMillis = (options.skewSeconds ?? 60) * 1000
    const lockTtl = Duration.decode(options.lockTtl ?? "30 seconds")
    const pollInterval = Duration.decode(options.pollInterval ?? "200 millis")
    const inflight = new Map<string, Deferred.Deferred<ProviderTokens, ProviderTokenError>>()

    const isFresh = (tokens: ProviderTokens, now: number) =>
      tokens.accessExpiresAt === undefined || now < tokens.accessExpiresAt - skewMillis

    /** The stored tokens and whether they are fresh; `ReauthorizationRequired` when there are none. */
    const read = (authorizationId: string, providerId: string) =>
      Effect.gen(function*() {
        const stored = yield* store.getTokens(authorizationId, providerId)
        if (Option.isNone(stored)) {
          return yield* Effect.fail(new ReauthorizationRequired({ authorizationId, providerId, reason: "NoTokens" }))
        }
        const now = yield* Clock.currentTimeMillis
        return { tokens: stored.value, fresh: isFresh(stored.value, now), now }
      })

    /** Refresh upstream and store the result. Runs only under the lease. */
    const refreshUpstream = (authorizationId: string, providerId: string, tokens: ProviderTokens, now: number) =>
      Effect.gen(function*() {
        if (tokens.refreshToken === undefined) {
          // Within the skew but not expired yet: still usable; past expiry, only the user can renew it.
          if (tokens.accessExpiresAt !== undefined && now < tokens.accessExpiresAt) return tokens
          return yield* Effect.fail(new ReauthorizationRequired({ authorizationId, providerId, reason: "Expired" }))
        }
        const response = yield* upstream.refresh(providerId, tokens.refreshToken).pipe(
          Effect.tapBoth({
            onFailure: (error) => Metric.increment(upstreamRefreshes(providerId, error.reason)),
            onSuccess: () => Metric.increment(upstreamRefreshes(providerId, "ok"))
          }),
          Effect.catchIf(
            (error) => error.reason === "InvalidGrant",
            () =>
              store.deleteTokens(authorizationId, providerId).pipe(
                Effect.zipRight(Effect.fail(new ReauthorizationRequired({ authorizationId, providerId, reason: "InvalidGrant" })))
              )
          )
        )
        const next = mergeRefreshed(tokens, response, yield* Clock.currentTimeMillis)
        yield* store.storeTokens(authorizationId, providerId, next)
        return next
      }).pipe(traced("ProviderTokenRefresher.refresh", { providerId }))

    /**
     * One refresh per process: take the lease and refresh, or wait while
     * another instance holds it and re-read what it stored.
     */
    const flight = (authorizationId: string, providerId: string) =>
      Effect.gen(function*() {
        const key = Keys.providerRefreshLock(authorizationId, providerId)
        const start = yield* Clock.currentTimeMillis
        const waitLimit = Duration.toMillis(lockTtl) + Duration.toMillis(pollInterval)
        for (;;) {
          const current = yield* read(authorizationId, providerId)
          if (current.fresh) return current.tokens
          const lease = yield* lock.acquire(key, lockTtl)
          if (Option.isSome(lease)) {
            return yield* Effect.gen(function*() {
              // Another instance may have refreshed between our read and the lease.
              const latest = yield* read(authorizationId, providerId)
              return latest.fresh ? latest.tokens : yield* refreshUpstream(authorizationId, providerId, latest.tokens, latest.now)
            }).pipe(Effect.ensuring(lock.release(lease.value).pipe(Effect.ignore)))
          }
          if (current.now - start > waitLimit) {
            return yield* Effect.fail(
              new UpstreamTokenError({ providerId, reason: "Unavailable", description: "timed out waiting for another refresh" })
            )
          }
          yield* Effect.sleep(pollInterval)
        }
      })

    const getValidTokens = (authorizationId: string, providerId: string) =>
      Effect.gen(function*() {
        const current = yield* read(authorizationId, providerId)
        if (current.fresh) return current.tokens
        const key = Keys.providerRefreshLock(authorizationId, providerId)
        const mine = yield* Deferred.make<ProviderTokens, ProviderTokenError>()
        const joined = inflight.get(key)
        if (joined !== undefined) return yield* Deferred.await(joined)
        inflight.set(key, mine)
        // Whatever ends the flight (success, failure, or the layer shutting down) ends it for every waiter.
        yield* flight(authorizationId, providerId).pipe(
          Effect.onExit((exit) => Effect.sync(() => inflight.delete(key)).pipe(Effect.zipRight(Deferred.done(mine, exit)))),
          Effect.forkIn(scope)
        )
        return yield* Deferred.await(mine)
      })

    const service: ProviderTokenRefresher.Service = { getValidTokens }
    return service
  })
