import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Context, Effect, Exit, Layer, Option, PubSub, Queue, Scope, TestClock } from "effect"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { makeLocalEventBus } from "../src/internal/localEventBus.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import { resolveRateLimiterOptions, resolveReplayCacheOptions } from "../src/schema/options.ts"
import { type RateLimitPolicy, RateLimiter } from "../src/services/RateLimiter.ts"
import { McpEventBus } from "../src/services/McpEventBus.ts"
import { RawStorage } from "../src/services/RawStorage.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { StoreError } from "../src/services/StoreError.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { storeContract } from "./contract/index.ts"
import { mcpEventBusContract } from "./contract/McpEventBus.contract.ts"
import { mcpEventStoreContract } from "./contract/McpEventStore.contract.ts"
import * as F from "./contract/fixtures.ts"
import { advance, using } from "./contract/harness.ts"

const memory = {
  name: "memory",
  make: (options?: MemoryStore.MemoryOptions) => MemoryStore.layer(options).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
}

storeContract(memory)

describe("memory backend: seed 000 limits", () => {
  it.effect("at 1,000 pending transactions the least recently saved is evicted", () =>
    using(memory)(Effect.gen(function*() {
      const store = yield* TokenStore
      for (let i = 0; i <= 1_000; i++) yield* store.saveTransaction(F.transaction(`tx-${i}`))
      expect(Option.isNone(yield* store.getTransaction("tx-0"))).toBe(true)
      expect(Option.isSome(yield* store.getTransaction("tx-1"))).toBe(true)
      expect(Option.isSome(yield* store.getTransaction("tx-1000"))).toBe(true)
    })))

  it.effect("at 10,000 RS token records the least recently used is evicted, and leaves the grant index", () =>
    using(memory, { tokens: { maxTokenRecords: 100 } })(Effect.gen(function*() {
      const store = yield* TokenStore
      for (let i = 0; i < 100; i++) yield* store.saveAccessToken(`at-${i}`, F.accessToken(`g-${i}`))
      yield* store.getAccessToken("at-0") // used: now the most recent
      yield* store.saveAccessToken("at-100", F.accessToken("g-100"))
      expect(Option.isSome(yield* store.getAccessToken("at-0"))).toBe(true)
      expect(Option.isNone(yield* store.getAccessToken("at-1"))).toBe(true)
      expect(yield* store.revokeGrant("g-1")).toBe(false)
    })))

  it.effect("the default limit is 10,000 RS token records", () =>
    using(memory)(Effect.gen(function*() {
      const store = yield* TokenStore
      for (let i = 0; i <= 10_000; i++) yield* store.saveAccessToken(`at-${i}`, F.accessToken("g"))
      expect(Option.isNone(yield* store.getAccessToken("at-0"))).toBe(true)
      expect(Option.isSome(yield* store.getAccessToken("at-1"))).toBe(true)
    })))

  it.effect("the default global session limit is 10,000", () =>
    using(memory)(Effect.gen(function*() {
      const store = yield* SessionStore
      const first = yield* store.create({ apiKey: "key-0" })
      for (let i = 1; i < 10_000; i++) yield* store.create({ apiKey: `key-${i}` })
      const last = yield* store.create({ apiKey: "key-last" })
      expect(last.evicted.map((e) => e.session.id)).toEqual([first.session.id])
    })))

  it.effect("sweeps every 60 seconds by default, and stops when the layer is released", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(memory.make(), scope)
      const store = Context.get(context, TokenStore)
      const raw = Context.get(context, RawStorage)
      yield* store.saveAccessToken("at-1", { ...F.accessToken("g1"), ttl: "1 second" })
      yield* advance("59 seconds")
      expect((yield* raw.dump).length).toBe(1)
      yield* advance("1 second")
      expect((yield* raw.dump).length).toBe(0)
      yield* store.saveAccessToken("at-2", { ...F.accessToken("g1"), ttl: "1 second" })
      yield* Scope.close(scope, Exit.void)
      yield* advance("2 minutes")
      expect((yield* raw.dump).length).toBe(1)
      expect(Chunk.isEmpty(yield* TestClock.sleeps())).toBe(true)
    }))
})

/** Run `body` on a fresh memory build with `options` (the sweeper daily, so only the bounds make room). */
const withMemory = (options: MemoryStore.MemoryOptions) =>
<A, E>(body: Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof memory.make>>>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(memory.make({ sweepInterval: "1 day", ...options }))))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): StoreError | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof StoreError ? failure.value : undefined
}

describe("memory backend: bounds of the replay cache and the rate limiter", () => {
  it.effect("full of live ids, the replay cache refuses new ones (Unavailable) and forgets none; an expired one makes room", () =>
    withMemory({ replayCache: { maxIds: 3 } })(Effect.gen(function*() {
      const cache = yield* ReplayCache
      expect(yield* cache.remember("dpop", "a", "1 minute")).toBe("First")
      expect(yield* cache.remember("dpop", "b", "10 minutes")).toBe("First")
      expect(yield* cache.remember("dpop", "c", "10 minutes")).toBe("First")
      const refused = failureOf(yield* Effect.exit(cache.remember("dpop", "d", "1 minute")))
      expect(refused?.reason).toBe("Unavailable")
      expect(refused?.message).toContain("maxIds")
      // Every id it holds is still a replay, full or not.
      for (const id of ["a", "b", "c"]) expect(yield* cache.remember("dpop", id, "1 minute")).toBe("Replayed")
      expect(failureOf(yield* Effect.exit(cache.remember("dpop", "d", "1 minute")))?.reason).toBe("Unavailable")
      // `a` expires: the next new id takes its place at once, without waiting for the sweep.
      yield* TestClock.adjust("1 minute")
      expect(yield* cache.remember("dpop", "d", "1 minute")).toBe("First")
      expect(failureOf(yield* Effect.exit(cache.remember("dpop", "a", "1 minute")))?.reason).toBe("Unavailable")
      expect(yield* cache.remember("dpop", "b", "1 minute")).toBe("Replayed")
    })))

  it.effect("at the bound, expired ids go earliest expiry first, whatever their order of arrival", () =>
    withMemory({ replayCache: { maxIds: 2 } })(Effect.gen(function*() {
      const cache = yield* ReplayCache
      yield* cache.remember("dpop", "long", "10 minutes")
      yield* cache.remember("dpop", "short", "1 minute")
      yield* TestClock.adjust("1 minute")
      expect(yield* cache.remember("dpop", "new", "10 minutes")).toBe("First")
      expect(yield* cache.remember("dpop", "long", "10 minutes")).toBe("Replayed")
      expect(yield* cache.remember("dpop", "new", "10 minutes")).toBe("Replayed")
    })))

  it.effect("past maxKeys an unused bucket is forgotten (a full bucket again); a used one gets a second chance", () =>
    withMemory({ rateLimiter: { maxKeys: 2 } })(Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const once: RateLimitPolicy = { bucket: "register", limit: 1, window: "1 hour" }
      expect((yield* limiter.consume(once, "a")).allowed).toBe(true)
      expect((yield* limiter.consume(once, "b")).allowed).toBe(true)
      // A refused attempt counts as use: `a` is kept, `b` (unused since) goes.
      expect((yield* limiter.consume(once, "a")).allowed).toBe(false)
      expect((yield* limiter.consume(once, "c")).allowed).toBe(true)
      expect((yield* limiter.consume(once, "a")).allowed).toBe(false)
      expect((yield* limiter.consume(once, "b")).allowed).toBe(true) // forgotten: full again
      const rows = (yield* (yield* RawStorage).dump).filter((row) => row.startsWith("ratelimit:"))
      expect(rows).toHaveLength(2)
    })))

  it.effect("a bucket hammered by one key outlives a flood of new keys", () =>
    withMemory({ rateLimiter: { maxKeys: 100 } })(Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const once: RateLimitPolicy = { bucket: "signin-user", limit: 1, window: "1 hour" }
      yield* limiter.consume(once, "alice")
      for (let i = 0; i < 1_000; i++) {
        yield* limiter.consume(once, `flood-${i}`)
        expect((yield* limiter.consume(once, "alice")).allowed).toBe(false)
      }
      // The flood's own early keys were forgotten.
      expect((yield* limiter.consume(once, "flood-0")).allowed).toBe(true)
    })))

  it.effect("at the bound, a bucket that is full again goes before any other", () =>
    withMemory({ rateLimiter: { maxKeys: 2 } })(Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const once: RateLimitPolicy = { bucket: "register", limit: 1, window: "1 hour" }
      const quick: RateLimitPolicy = { bucket: "authorize", limit: 1, window: "1 minute" }
      yield* limiter.consume(once, "a")
      yield* limiter.consume(quick, "b")
      yield* limiter.consume(once, "a") // refused: used
      yield* limiter.check(quick, "b") // used too
      yield* TestClock.adjust("1 minute") // `b` is full again: it goes, used or not
      yield* limiter.consume(once, "c")
      expect((yield* limiter.consume(once, "a")).allowed).toBe(false)
      expect((yield* limiter.consume(once, "c")).allowed).toBe(false)
    })))

  it("both default to 100,000 (the bounds above apply to the layer's options)", () => {
    expect(resolveReplayCacheOptions().maxIds).toBe(100_000)
    expect(resolveRateLimiterOptions().maxKeys).toBe(100_000)
  })
})

mcpEventStoreContract({ ...memory, boundsStreams: true })
mcpEventBusContract(memory)

describe("memory backend: the in-process McpEventBus", () => {
  it.scoped("a closed subscription leaves nothing in the PubSub; with no subscription nothing is kept", () =>
    Effect.gen(function*() {
      const bus = yield* makeLocalEventBus(16)
      yield* bus.service.publish({ _tag: "ToolsListChanged" })
      expect(yield* PubSub.size(bus.pubsub)).toBe(0)
      const scope = yield* Scope.make()
      yield* Scope.extend(bus.service.subscribe, scope)
      for (let i = 0; i < 40; i++) yield* bus.service.publish({ _tag: "ResourceUpdated", uri: `mem://${i}` })
      expect(yield* PubSub.size(bus.pubsub)).toBe(16)
      yield* Scope.close(scope, Exit.void)
      expect(yield* bus.service.subscriptions).toBe(0)
      expect(yield* PubSub.size(bus.pubsub)).toBe(0)
      yield* bus.service.publish({ _tag: "ToolsListChanged" })
      expect(yield* PubSub.size(bus.pubsub)).toBe(0)
    }))

  it.live("releasing the layer ends its subscriptions: a waiting take is interrupted, publishing after is a no-op", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(memory.make(), scope)
      const bus = Context.get(context, McpEventBus)
      const queue = yield* Scope.extend(bus.subscribe, scope)
      const waiting = yield* Effect.fork(Queue.take(queue))
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      const exit = yield* waiting.await
      expect(Exit.isInterrupted(exit)).toBe(true)
      yield* bus.publish({ _tag: "ToolsListChanged" })
    }))
})
