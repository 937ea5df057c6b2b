import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, type Scope } from "effect"
import { Redis } from "ioredis"
import type { Miniflare } from "miniflare"
import { Keys } from "../src/internal/keys.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import type { KvBinding } from "../src/layers/kv/namespace.ts"
import { KvCache } from "../src/exports/kv.ts"
import { MemoryStore } from "../src/exports/memory.ts"
import { RedisCache } from "../src/exports/redis.ts"
import { MemoryCache, TieredStore } from "../src/exports/tiered.ts"
import { makeTieredSessionStore } from "../src/layers/tiered/sessionStore.ts"
import { CacheAdapter } from "../src/services/CacheAdapter.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { sessionStoreContract } from "./contract/SessionStore.contract.ts"
import { advance, type Backend, type StoreOptions } from "./contract/harness.ts"
import { ObservedBinding, startMiniflare } from "./fixtures/kvBindings.ts"
import { freshPrefix, hasRedisServer, useRedis } from "./support/redis.ts"

const SECOND = 1_000
const HOUR = 3_600 * SECOND

let mf: Miniflare
let namespace: KvBinding
let caches = 0
const nextPrefix = () => `cache-${caches++}:`

beforeAll(async () => {
  mf = startMiniflare(["SESSIONS"])
  namespace = await mf.getKVNamespace("SESSIONS")
})

afterAll(async () => {
  await mf.dispose()
})

// A real redis-server on a free loopback port, or REDIS_URL (test/support/redis.ts), for the Redis cache.
const redisAvailable = process.env["REDIS_URL"] !== undefined || hasRedisServer
const redisServer = redisAvailable ? useRedis() : undefined
let redis: Redis | undefined

beforeAll(async () => {
  if (redisServer === undefined) return
  redis = new Redis(redisServer.url(), { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
})

afterAll(async () => {
  await redis?.quit()
})

const theRedis = (): Redis => {
  if (redis === undefined) throw new Error("Redis is not running")
  return redis
}

/** The memory backend with its SessionStore behind the tiered store over `cache`. */
const tieredOver = (name: string, cache: () => Layer.Layer<CacheAdapter>, tiered: TieredStore.TieredOptions = {}): Backend => ({
  name,
  make: (options: StoreOptions = {}) =>
    TieredStore.layer(tiered).pipe(
      Layer.provide(cache()),
      Layer.provideMerge(MemoryStore.layer(options)),
      Layer.provideMerge(NodeCrypto.layerEphemeral)
    )
})

sessionStoreContract(tieredOver("tiered (memory cache -> memory)", () => MemoryCache.layer()))
sessionStoreContract(
  tieredOver("tiered (KV cache -> memory)", () => KvCache.layer({ namespace, keyPrefix: nextPrefix() }))
)
if (redisAvailable) {
  sessionStoreContract(
    tieredOver("tiered (Redis cache -> memory)", () => RedisCache.layer({ redis: theRedis(), keyPrefix: freshPrefix() }))
  )
}

describe("CacheAdapter implementations", () => {
  const adapters: ReadonlyArray<readonly [string, () => CacheAdapter.Service, boolean]> = [
    ["memory", () => MemoryCache.make(), true],
    ["KV", () => KvCache.make({ namespace, keyPrefix: nextPrefix() }), true],
    ...(redisAvailable
      ? [["Redis", () => RedisCache.make({ redis: theRedis(), keyPrefix: freshPrefix() }), false] as const]
      : [])
  ]
  for (const [name, make, clockDriven] of adapters) {
    it.effect(`${name}: get, set, delete${clockDriven ? ", and the TTL by Effect's Clock" : ""}`, () =>
      Effect.gen(function*() {
        const cache = make()
        expect(yield* cache.get("session:a")).toEqual(Option.none())
        yield* cache.set("session:a", "value-a", 90)
        yield* cache.set("session:b", "value-b")
        expect(yield* cache.get("session:a")).toEqual(Option.some("value-a"))
        yield* cache.delete("session:b")
        expect(yield* cache.get("session:b")).toEqual(Option.none())
        if (!clockDriven) return
        yield* advance(90 * SECOND - 1)
        expect(yield* cache.get("session:a")).toEqual(Option.some("value-a"))
        yield* advance(1)
        expect(yield* cache.get("session:a")).toEqual(Option.none())
      }))
  }

  it.effect("KV: a TTL under 60 s is exact for readers, and KV is told 60", () =>
    Effect.gen(function*() {
      const observed = new ObservedBinding(namespace)
      const prefix = nextPrefix()
      const cache = KvCache.make({ namespace: observed, keyPrefix: prefix })
      yield* cache.set("session:short", "v", 5)
      expect(observed.ttlsOf(`${prefix}session:short`)).toEqual([60])
      yield* advance(5 * SECOND)
      expect(yield* cache.get("session:short")).toEqual(Option.none())
    }))

  it.effect.skipIf(!redisAvailable)("Redis: the TTL is Redis's own (PX)", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const cache = RedisCache.make({ redis: theRedis(), keyPrefix: prefix })
      yield* cache.set("session:a", "v", 90)
      const ttl = yield* Effect.promise(() => theRedis().pttl(`${prefix}session:a`))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(90_000)
    }))
})

/** A cache adapter that records what the store asks of it (over a real adapter). */
const recorded = (inner: CacheAdapter.Service) => {
  const sets: Array<{ key: string; ttlSeconds: number | undefined }> = []
  const deletes: Array<string> = []
  const service: CacheAdapter.Service = {
    get: inner.get,
    set: (key, value, ttlSeconds) => {
      sets.push({ key, ttlSeconds })
      return inner.set(key, value, ttlSeconds)
    },
    delete: (key) => {
      deletes.push(key)
      return inner.delete(key)
    }
  }
  return { service, sets, deletes }
}

/** One durable memory backend, and tiered stores over it, each with the cache given. */
const durableWith = (options: MemoryStore.MemoryOptions = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(MemoryStore.layer({ sweepInterval: "1 day", ...options }))
    const durable = Context.get(context, SessionStore)
    const crypto = yield* Crypto
    const tiered = (cache: CacheAdapter.Service, options: TieredStore.TieredOptions = {}) =>
      makeTieredSessionStore(durable, cache, crypto, options)
    return { durable, tiered }
  })

const withCrypto = <A, E>(effect: Effect.Effect<A, E, Crypto | Scope.Scope>) =>
  Effect.scoped(Effect.provide(effect, NodeCrypto.layerEphemeral))

describe("tiered session store", () => {
  it.effect("reads are served from the cache; a miss reads the durable store and re-caches with the remaining TTL", () =>
    withCrypto(Effect.gen(function*() {
      const { durable, tiered } = yield* durableWith({ sessions: { absoluteTtl: "2 days" } })
      const cache = recorded(MemoryCache.make())
      const store = tiered(cache.service)
      const { session } = yield* store.create({ apiKey: "key-a" })
      expect(cache.sets).toEqual([{ key: Keys.session(session.id), ttlSeconds: 24 * 3_600 }])

      // Behind the cache's back (as if through an instance without this cache): still served from the cache.
      yield* durable.update(session.id, { initialized: true })
      expect(Option.getOrThrow(yield* store.get(session.id)).initialized).toBe(false)

      // A miss: the durable store answers and the hit is cached again.
      yield* cache.service.delete(Keys.session(session.id))
      yield* advance(HOUR)
      const reread = Option.getOrThrow(yield* store.get(session.id))
      expect(reread.initialized).toBe(true)
      expect(reread.lastAccessedAt).toBe(HOUR) // the durable store's touch
      expect(cache.sets.at(-1)).toEqual({ key: Keys.session(session.id), ttlSeconds: 24 * 3_600 })

      // Each revalidation caches for the remaining lifetime, which the absolute end caps.
      yield* advance(19 * HOUR)
      yield* store.get(session.id)
      yield* advance(20 * HOUR)
      yield* store.get(session.id)
      expect(cache.sets.at(-1)).toEqual({ key: Keys.session(session.id), ttlSeconds: 8 * 3_600 })
      yield* advance(7 * HOUR + 30 * 60 * SECOND)
      yield* store.get(session.id)
      expect(cache.sets.at(-1)).toEqual({ key: Keys.session(session.id), ttlSeconds: 30 * 60 })

      // What the cache holds is sealed.
      const raw = Option.getOrThrow(yield* cache.service.get(Keys.session(session.id)))
      expect(raw).not.toContain(session.apiKeyHash)
    })))

  it.effect("a deleted (revoked) session is never served from the cache", () =>
    withCrypto(Effect.gen(function*() {
      const { tiered } = yield* durableWith()
      const cache = MemoryCache.make()
      const store = tiered(cache)
      const { session } = yield* store.create({ apiKey: "key-a" })
      expect(Option.isSome(yield* store.get(session.id))).toBe(true)
      expect(yield* store.delete(session.id)).toBe(true)
      expect(Option.isNone(yield* store.get(session.id))).toBe(true)
      expect(yield* cache.get(Keys.session(session.id))).toEqual(Option.none())
    })))

  it.effect("an evicted session is never served from the cache", () =>
    withCrypto(Effect.gen(function*() {
      const { tiered } = yield* durableWith({ sessions: { maxPerKey: 1 } })
      const cache = MemoryCache.make()
      const store = tiered(cache)
      const first = (yield* store.create({ apiKey: "key-a" })).session
      expect(Option.isSome(yield* store.get(first.id))).toBe(true)
      const second = yield* store.create({ apiKey: "key-a" })
      expect(second.evicted.map((e) => e.session.id)).toEqual([first.id])
      expect(Option.isNone(yield* store.get(first.id))).toBe(true)
      expect(yield* cache.get(Keys.session(first.id))).toEqual(Option.none())
    })))

  it.effect("a read racing a delete never caches the deleted session again (per-session lock)", () =>
    withCrypto(Effect.gen(function*() {
      const { durable } = yield* durableWith()
      const crypto = yield* Crypto
      const cache = MemoryCache.make()
      // The worst interleaving, forced: the read has found the session in the durable store, and its
      // cache write is still in flight (held back 50 ms of real time) when the delete runs.
      const found = yield* Deferred.make<void>()
      const spied: SessionStore.Service = {
        ...durable,
        get: (id) => Effect.tap(durable.get(id), () => Deferred.succeed(found, undefined))
      }
      const slow: CacheAdapter.Service = {
        ...cache,
        set: (key, value, ttl) => Effect.zipRight(Effect.promise(() => new Promise((r) => setTimeout(r, 50))), cache.set(key, value, ttl))
      }
      const store = makeTieredSessionStore(spied, slow, crypto)
      const { session } = yield* store.create({ apiKey: "key-a" })
      yield* cache.delete(Keys.session(session.id)) // the read below starts with a miss
      const read = yield* Effect.fork(store.get(session.id))
      yield* Deferred.await(found)
      expect(yield* store.delete(session.id)).toBe(true)
      expect(Option.isSome(yield* Fiber.join(read))).toBe(true) // it began before the delete
      expect(yield* cache.get(Keys.session(session.id))).toEqual(Option.none())
      expect(Option.isNone(yield* store.get(session.id))).toBe(true)
    })))

  describe("two instances sharing the durable store", () => {
    it.effect("each with its own cache: the other's copy is served at most revalidateAfter, then never", () =>
      withCrypto(Effect.gen(function*() {
        const { tiered } = yield* durableWith({ sessions: { maxPerKey: 1 } })
        const a = tiered(MemoryCache.make(), { revalidateAfter: "10 seconds" })
        const cacheB = MemoryCache.make()
        const b = tiered(cacheB, { revalidateAfter: "10 seconds" })

        // Deleted through A while B holds a copy.
        const deleted = (yield* a.create({ apiKey: "key-a" })).session
        expect(Option.isSome(yield* b.get(deleted.id))).toBe(true)
        yield* a.delete(deleted.id)
        expect(Option.isSome(yield* b.get(deleted.id))).toBe(true) // B's own copy, within the bound
        yield* advance(10 * SECOND)
        expect(Option.isNone(yield* b.get(deleted.id))).toBe(true)
        expect(yield* cacheB.get(Keys.session(deleted.id))).toEqual(Option.none())

        // Evicted through A while B holds a copy.
        const evicted = (yield* a.create({ apiKey: "key-b" })).session
        expect(Option.isSome(yield* b.get(evicted.id))).toBe(true)
        yield* advance(SECOND)
        expect((yield* a.create({ apiKey: "key-b" })).evicted.map((e) => e.session.id)).toEqual([evicted.id])
        yield* advance(9 * SECOND - 1)
        expect(Option.isSome(yield* b.get(evicted.id))).toBe(true)
        yield* advance(1)
        expect(Option.isNone(yield* b.get(evicted.id))).toBe(true)
        for (let i = 0; i < 3; i++) {
          yield* advance(SECOND)
          expect(Option.isNone(yield* b.get(evicted.id))).toBe(true)
        }
      })))

    it.effect("with revalidateAfter 0, the other instance never serves its copy", () =>
      withCrypto(Effect.gen(function*() {
        const { tiered } = yield* durableWith()
        const a = tiered(MemoryCache.make(), { revalidateAfter: 0 })
        const b = tiered(MemoryCache.make(), { revalidateAfter: 0 })
        const { session } = yield* a.create({ apiKey: "key-a" })
        expect(Option.isSome(yield* b.get(session.id))).toBe(true)
        yield* a.delete(session.id)
        expect(Option.isNone(yield* b.get(session.id))).toBe(true)
      })))

    it.effect("sharing one cache (KV, as seed 001 deploys it): a deletion or eviction is seen at once", () =>
      withCrypto(Effect.gen(function*() {
        const { tiered } = yield* durableWith({ sessions: { maxPerKey: 1 } })
        const keyPrefix = nextPrefix()
        const a = tiered(KvCache.make({ namespace, keyPrefix }))
        const b = tiered(KvCache.make({ namespace, keyPrefix }))
        const deleted = (yield* a.create({ apiKey: "key-a" })).session
        expect(Option.isSome(yield* b.get(deleted.id))).toBe(true)
        yield* a.delete(deleted.id)
        expect(Option.isNone(yield* b.get(deleted.id))).toBe(true)
        const evicted = (yield* a.create({ apiKey: "key-b" })).session
        expect(Option.isSome(yield* b.get(evicted.id))).toBe(true)
        yield* a.create({ apiKey: "key-b" })
        expect(Option.isNone(yield* b.get(evicted.id))).toBe(true)
      })))
  })

  it.effect("a cache outage: reads fall back to the durable store; a delete reports the failed invalidation", () =>
    withCrypto(Effect.gen(function*() {
      const { durable, tiered } = yield* durableWith()
      const observed = new ObservedBinding(namespace)
      const store = tiered(KvCache.make({ namespace: observed, keyPrefix: nextPrefix() }))
      const { session } = yield* store.create({ apiKey: "key-a" })
      observed.failAll = true
      yield* advance(20 * SECOND)
      expect(Option.isSome(yield* store.get(session.id))).toBe(true)
      const { session: other } = yield* store.create({ apiKey: "key-b" })
      expect(Option.isSome(yield* durable.get(other.id))).toBe(true)
      const exit = yield* Effect.exit(store.delete(session.id))
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("Unavailable")
      expect(Option.isNone(yield* durable.get(session.id))).toBe(true)
    })))
})
