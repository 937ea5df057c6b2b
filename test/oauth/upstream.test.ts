import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Option, Redacted, TestClock } from "effect"
import { ProviderTokenRefresher, type ProviderTokenRefresherOptions } from "../../src/oauth/providerTokenRefresher.ts"
import * as RefreshLockMemory from "../../src/oauth/refreshLock.ts"
import type { ProviderTokens } from "../../src/schema/providerTokens.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import {
  UpstreamTokenClient,
  UpstreamTokenError,
  type UpstreamTokenResponse
} from "../../src/services/UpstreamTokenClient.ts"
import { eventually, stores } from "./fixtures.ts"

const GRANT = "grant-1"
const PROVIDER = "github"

type Respond = (call: number, refreshToken: string) => Effect.Effect<UpstreamTokenResponse, UpstreamTokenError>

/** New tokens on every call: `at-n`, `rt-n`, valid for an hour. */
const rotating: Respond = (n) =>
  Effect.succeed({ accessToken: Redacted.make(`at-${n}`), refreshToken: Redacted.make(`rt-${n}`), expiresIn: 3600, tokenType: "Bearer" })

/**
 * A counting fake of the upstream token endpoint (the issue allows one here):
 * it records each refresh token it is sent and, when given a gate, holds
 * every call until the gate opens, so concurrent callers really overlap.
 */
const setup = (respond: Respond = rotating, options: ProviderTokenRefresherOptions = {}) =>
  Effect.gen(function*() {
    const calls: Array<string> = []
    const gate = yield* Deferred.make<void>()
    let gated = false
    const upstream: UpstreamTokenClient.Service = {
      refresh: (_providerId, refreshToken) =>
        Effect.gen(function*() {
          calls.push(Redacted.value(refreshToken))
          if (gated) yield* Deferred.await(gate)
          return yield* respond(calls.length, Redacted.value(refreshToken))
        }),
      exchangeCode: () => Effect.dieMessage("the refresher never exchanges codes")
    }
    const base = yield* Layer.build(
      Layer.mergeAll(RefreshLockMemory.layer, Layer.succeed(UpstreamTokenClient, upstream)).pipe(Layer.provideMerge(stores()))
    )
    const instance = Layer.build(ProviderTokenRefresher.layer(options)).pipe(
      Effect.provide(base),
      Effect.map((context) => Context.get(context, ProviderTokenRefresher))
    )
    return {
      calls,
      store: Context.get(base, ProviderTokenStore),
      refresher: yield* instance,
      instance,
      hold: () => void (gated = true),
      release: Deferred.succeed(gate, undefined)
    }
  })

const tokens = (expiresAt: number | undefined, refreshToken: string | null = "rt-0"): ProviderTokens => ({
  accessToken: Redacted.make("at-0"),
  ...(refreshToken === null ? {} : { refreshToken: Redacted.make(refreshToken) }),
  ...(expiresAt === undefined ? {} : { accessExpiresAt: expiresAt }),
  tokenType: "Bearer",
  scopes: ["repo"],
  idTokenClaims: { email: "alice@example.com" }
})

const access = (t: ProviderTokens) => Redacted.value(t.accessToken)

describe("provider token refresher", () => {
  it.scoped("a token valid beyond the skew is handed out without an upstream call", () =>
    Effect.gen(function*() {
      const { calls, refresher, store } = yield* setup()
      yield* store.storeTokens(GRANT, PROVIDER, tokens(3_600_000))
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-0")
      yield* store.storeTokens(GRANT, PROVIDER, tokens(undefined))
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-0")
      expect(calls).toEqual([])
    }))

  it.scoped("refreshes when the token expires within skewSeconds (60), and stores the result", () =>
    Effect.gen(function*() {
      const { calls, refresher, store } = yield* setup()
      yield* store.storeTokens(GRANT, PROVIDER, tokens(120_000))
      yield* TestClock.adjust("59 seconds") // 61 s left
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-0")
      expect(calls).toEqual([])
      yield* TestClock.adjust("2 seconds") // 59 s left
      const refreshed = yield* refresher.getValidTokens(GRANT, PROVIDER)
      expect(calls).toEqual(["rt-0"])
      expect(access(refreshed)).toBe("at-1")
      const stored = Option.getOrThrow(yield* store.getTokens(GRANT, PROVIDER))
      expect(access(stored)).toBe("at-1")
      expect(Redacted.value(stored.refreshToken as Redacted.Redacted<string>)).toBe("rt-1")
      expect(stored.accessExpiresAt).toBe(61_000 + 3_600_000)
      expect(stored.idTokenClaims).toEqual({ email: "alice@example.com" })
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-1")
      expect(calls).toHaveLength(1)
    }))

  it.scoped("the skew is configurable", () =>
    Effect.gen(function*() {
      const { calls, refresher, store } = yield* setup(rotating, { skewSeconds: 300 })
      yield* store.storeTokens(GRANT, PROVIDER, tokens(600_000))
      yield* TestClock.adjust("301 seconds")
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-1")
      expect(calls).toEqual(["rt-0"])
    }))

  it.scoped("a provider that returns no refresh token: the old one is kept and used next time", () =>
    Effect.gen(function*() {
      const noRefresh: Respond = (n) => Effect.succeed({ accessToken: Redacted.make(`at-${n}`), expiresIn: 600 })
      const { calls, refresher, store } = yield* setup(noRefresh)
      yield* store.storeTokens(GRANT, PROVIDER, { ...tokens(30_000), refreshExpiresAt: 86_400_000 })
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-1")
      const stored = Option.getOrThrow(yield* store.getTokens(GRANT, PROVIDER))
      expect(Redacted.value(stored.refreshToken as Redacted.Redacted<string>)).toBe("rt-0")
      expect(stored.refreshExpiresAt).toBe(86_400_000)
      expect(stored.tokenType).toBe("Bearer")
      yield* TestClock.adjust("10 minutes")
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-2")
      expect(calls).toEqual(["rt-0", "rt-0"])
    }))

  it.scoped("50 concurrent callers needing a refresh cause exactly one upstream call", () =>
    Effect.gen(function*() {
      const { calls, hold, refresher, release, store } = yield* setup()
      yield* store.storeTokens(GRANT, PROVIDER, tokens(0))
      hold()
      const callers = yield* Effect.forkAll(Array.from({ length: 50 }, () => refresher.getValidTokens(GRANT, PROVIDER)))
      yield* eventually(Effect.sync(() => calls.length >= 1))
      yield* Effect.repeatN(Effect.yieldNow(), 100)
      expect(calls).toHaveLength(1)
      yield* release
      // Joined without moving the clock: nobody waited by polling, they all shared the one refresh.
      const results = yield* Fiber.join(callers)
      expect(calls).toEqual(["rt-0"])
      expect(new Set(results.map(access))).toEqual(new Set(["at-1"]))
    }))

  it.scoped("two instances on one store and one RefreshLock: one upstream call; the other instance re-reads", () =>
    Effect.gen(function*() {
      const { calls, hold, instance, refresher, release, store } = yield* setup()
      const other = yield* instance
      yield* store.storeTokens(GRANT, PROVIDER, tokens(0))
      hold()
      const callers = yield* Effect.forkAll(
        Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? refresher : other).getValidTokens(GRANT, PROVIDER))
      )
      yield* eventually(Effect.sync(() => calls.length >= 1))
      yield* Effect.repeatN(Effect.yieldNow(), 100)
      yield* release
      yield* TestClock.adjust("1 second") // the waiting instance polls the store
      const results = yield* Fiber.join(callers)
      expect(calls).toEqual(["rt-0"])
      expect(new Set(results.map(access))).toEqual(new Set(["at-1"]))
    }))

  it.scoped("upstream invalid_grant deletes the provider's tokens and asks for re-authorization", () =>
    Effect.gen(function*() {
      const dead: Respond = () => Effect.fail(new UpstreamTokenError({ providerId: PROVIDER, reason: "InvalidGrant", error: "invalid_grant" }))
      const { refresher, store } = yield* setup(dead)
      yield* store.storeTokens(GRANT, PROVIDER, tokens(0))
      yield* store.storeTokens(GRANT, "google", tokens(3_600_000))
      const error = yield* Effect.flip(refresher.getValidTokens(GRANT, PROVIDER))
      expect(error).toMatchObject({ _tag: "ReauthorizationRequired", reason: "InvalidGrant", providerId: PROVIDER })
      expect(Option.isNone(yield* store.getTokens(GRANT, PROVIDER))).toBe(true)
      expect(yield* store.getProviderIds(GRANT)).toEqual(["google"])
      expect(yield* Effect.flip(refresher.getValidTokens(GRANT, PROVIDER))).toMatchObject({ reason: "NoTokens" })
    }))

  it.scoped("other upstream failures surface typed and keep the tokens", () =>
    Effect.gen(function*() {
      const down: Respond = () => Effect.fail(new UpstreamTokenError({ providerId: PROVIDER, reason: "Unavailable", status: 503 }))
      const { refresher, store } = yield* setup(down)
      yield* store.storeTokens(GRANT, PROVIDER, tokens(0))
      expect(yield* Effect.flip(refresher.getValidTokens(GRANT, PROVIDER))).toMatchObject({ _tag: "UpstreamTokenError", reason: "Unavailable" })
      expect(Option.isSome(yield* store.getTokens(GRANT, PROVIDER))).toBe(true)
    }))

  it.scoped("without a refresh token: usable until expiry, then re-authorization", () =>
    Effect.gen(function*() {
      const { calls, refresher, store } = yield* setup()
      yield* store.storeTokens(GRANT, PROVIDER, tokens(30_000, null))
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-0")
      yield* TestClock.adjust("29 seconds")
      expect(access(yield* refresher.getValidTokens(GRANT, PROVIDER))).toBe("at-0")
      expect(calls).toEqual([])
      // The record lives as long as its access token when there is no refresh token.
      yield* TestClock.adjust("1 second")
      expect(yield* Effect.flip(refresher.getValidTokens(GRANT, PROVIDER))).toMatchObject({ reason: "NoTokens" })
      expect(yield* Effect.flip(refresher.getValidTokens("no-grant", PROVIDER))).toMatchObject({ reason: "NoTokens" })
    }))
})
