/**
 * The Redis `RefreshLock`: the port's contract, compare-and-delete against a
 * lease Redis really expired (`PX`), and the provider-token refresher's
 * single-flight across two instances on one Redis.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Deferred, Duration, Effect, Fiber, Layer, Option, Redacted, type Scope } from "effect"
import { Redis } from "ioredis"
import { Keys } from "../src/internal/keys.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import { ProviderTokenRefresher } from "../src/oauth/providerTokenRefresher.ts"
import type { ProviderTokens } from "../src/schema/providerTokens.ts"
import type { Crypto } from "../src/services/Crypto.ts"
import { ProviderTokenStore } from "../src/services/ProviderTokenStore.ts"
import { RefreshLock } from "../src/services/RefreshLock.ts"
import { UpstreamTokenClient } from "../src/services/UpstreamTokenClient.ts"
import { refreshLockContract } from "./contract/RefreshLock.contract.ts"
import { cleanupPrefix, freshPrefix, useRedis } from "./support/redis.ts"

const server = useRedis()

/** On an external server (`REDIS_URL`), delete the keys under `prefix` when the scope closes. */
const cleanup = (prefix: string) => server.external ? Layer.build(cleanupPrefix(server.url(), prefix)) : Effect.void

/** The Redis layer on the test server under `keyPrefix`, with its `Crypto`. */
const redisLayer = (keyPrefix: string, crypto: Layer.Layer<Crypto, unknown> = NodeCrypto.layerEphemeral) =>
  RedisStore.layer({ url: server.url(), keyPrefix, sweepInterval: "1 day" }).pipe(Layer.provideMerge(crypto))

refreshLockContract({
  name: "redis",
  make: () => {
    const keyPrefix = freshPrefix()
    const lock = redisLayer(keyPrefix)
    return server.external ? Layer.merge(lock, cleanupPrefix(server.url(), keyPrefix)) : lock
  }
})

/** A plain connection for looking at what the layer wrote. */
const rawRedis = Effect.acquireRelease(
  Effect.sync(() => new Redis(server.url())),
  (redis) => Effect.sync(() => redis.disconnect())
)

/** Poll (real time) until `check` holds; gives up after ~10 s. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      if (yield* check) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.dieMessage("condition not reached")
  })

const LOCK_KEY = Keys.providerRefreshLock("grant-1", "github")

describe("redis: RefreshLock", () => {
  it.scoped("a lease is a hash under the prefix with native PX expiry", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      yield* cleanup(keyPrefix)
      const lock = Context.get(yield* Layer.build(redisLayer(keyPrefix)), RefreshLock)
      const raw = yield* rawRedis
      const lease = Option.getOrThrow(yield* lock.acquire(LOCK_KEY, "30 seconds"))
      const stored = yield* Effect.promise(() => raw.hgetall(`${keyPrefix}${LOCK_KEY}`))
      expect(stored).toEqual({ o: lease.owner, x: "30000" })
      const pttl = yield* Effect.promise(() => raw.pttl(`${keyPrefix}${LOCK_KEY}`))
      expect(pttl).toBeGreaterThan(0)
      expect(pttl).toBeLessThanOrEqual(30_000)
      expect(yield* lock.release(lease)).toBe(true)
      expect(yield* Effect.promise(() => raw.exists(`${keyPrefix}${LOCK_KEY}`))).toBe(0)
    }))

  it.scoped("a TTL that PX cannot take is StoreError Invalid", () =>
    Effect.gen(function*() {
      const lock = Context.get(yield* Layer.build(redisLayer(freshPrefix())), RefreshLock)
      expect(yield* Effect.flip(lock.acquire(LOCK_KEY, 0))).toMatchObject({ _tag: "StoreError", reason: "Invalid" })
      expect(yield* Effect.flip(lock.acquire(LOCK_KEY, Duration.infinity))).toMatchObject({ _tag: "StoreError", reason: "Invalid" })
    }))

  it.live("a lease dropped by Redis (PX) and taken by another instance is not released by its first holder", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      yield* cleanup(keyPrefix)
      const first = Context.get(yield* Layer.build(redisLayer(keyPrefix)), RefreshLock)
      const second = Context.get(yield* Layer.build(redisLayer(keyPrefix)), RefreshLock)
      const raw = yield* rawRedis
      const stored = `${keyPrefix}${LOCK_KEY}`

      const stale = Option.getOrThrow(yield* first.acquire(LOCK_KEY, "50 millis"))
      // Redis itself drops the key (real time): the crashed-holder safety net.
      yield* eventually(Effect.promise(() => raw.exists(stored)).pipe(Effect.map((n) => n === 0)))
      const next = Option.getOrThrow(yield* second.acquire(LOCK_KEY, "30 seconds"))
      expect(next.owner).not.toBe(stale.owner)

      // A plain DEL would remove the second holder's lease here.
      expect(yield* first.release(stale)).toBe(false)
      expect(yield* Effect.promise(() => raw.hget(stored, "o"))).toBe(next.owner)
      expect(Option.isNone(yield* first.acquire(LOCK_KEY, "30 seconds"))).toBe(true)

      expect(yield* second.release(next)).toBe(true)
      expect(Option.isSome(yield* first.acquire(LOCK_KEY, "30 seconds"))).toBe(true)
    }).pipe(Effect.scoped))
})

/** One server instance: its own Redis connection (same prefix and keys as the others), its own refresher. */
const refresherInstance = (
  keyPrefix: string,
  crypto: Layer.Layer<Crypto, unknown>,
  upstream: UpstreamTokenClient.Service,
  onDenied: () => void
): Effect.Effect<Context.Context<ProviderTokenRefresher | ProviderTokenStore>, unknown, Scope.Scope> => {
  // The instance's Redis lock, counting the acquires it refuses (another instance holds the lease).
  const countingLock = Layer.effect(
    RefreshLock,
    Effect.map(RefreshLock, (lock): RefreshLock.Service => ({
      acquire: (key, ttl) =>
        Effect.tap(lock.acquire(key, ttl), (lease) => Option.isNone(lease) ? Effect.sync(onDenied) : Effect.void),
      release: lock.release
    }))
  )
  const deps = Layer.merge(redisLayer(keyPrefix, crypto), Layer.succeed(UpstreamTokenClient, upstream))
  return Layer.build(
    ProviderTokenRefresher.layer({ pollInterval: "10 millis" }).pipe(Layer.provide(countingLock), Layer.provideMerge(deps))
  )
}

describe("redis: provider-token refresh across instances", () => {
  it.live("50 concurrent callers split across two instances: one upstream call, one new token for all", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      yield* cleanup(keyPrefix)
      // Two processes configured with the same key: each builds its own Crypto from it.
      const crypto = NodeCrypto.layer({ activeKey: yield* generateKey })

      // A counting fake of the upstream token endpoint, shared by both instances, held shut by a gate.
      const calls: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const upstream: UpstreamTokenClient.Service = {
        refresh: (_providerId, refreshToken) =>
          Effect.gen(function*() {
            calls.push(Redacted.value(refreshToken))
            yield* Deferred.await(gate)
            const n = calls.length
            return { accessToken: Redacted.make(`at-${n}`), refreshToken: Redacted.make(`rt-${n}`), expiresIn: 3600 }
          }),
        exchangeCode: () => Effect.dieMessage("the refresher never exchanges codes")
      }
      let denied = 0
      const a = yield* refresherInstance(keyPrefix, crypto, upstream, () => denied++)
      const b = yield* refresherInstance(keyPrefix, crypto, upstream, () => denied++)

      // Expiring within the 60-second skew: every caller needs a refresh.
      const now = yield* Clock.currentTimeMillis
      const expiring: ProviderTokens = {
        accessToken: Redacted.make("at-0"),
        refreshToken: Redacted.make("rt-0"),
        accessExpiresAt: now + 1_000,
        tokenType: "Bearer"
      }
      yield* Context.get(a, ProviderTokenStore).storeTokens("grant-1", "github", expiring)

      const callers = yield* Effect.forkAll(
        Array.from({ length: 50 }, (_, i) => Context.get(i % 2 === 0 ? a : b, ProviderTokenRefresher).getValidTokens("grant-1", "github"))
      )
      // One instance is refreshing upstream and the other was refused the lease: they really overlap.
      // (A second upstream call means the lease excluded nobody: go on, and fail below.)
      yield* eventually(Effect.sync(() => (calls.length >= 1 && denied >= 1) || calls.length >= 2))
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(callers)

      expect(calls).toEqual(["rt-0"])
      expect(results).toHaveLength(50)
      expect(new Set(results.map((t) => Redacted.value(t.accessToken)))).toEqual(new Set(["at-1"]))
      const stored = Option.getOrThrow(yield* Context.get(b, ProviderTokenStore).getTokens("grant-1", "github"))
      expect(Redacted.value(stored.accessToken)).toBe("at-1")
      expect(Redacted.value(stored.refreshToken ?? Redacted.make(""))).toBe("rt-1")
    }).pipe(Effect.scoped))
})
