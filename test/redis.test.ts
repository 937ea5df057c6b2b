import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Logger,
  Option,
  Redacted,
  Schedule,
  type Scope,
  Tracer
} from "effect"
import { Redis } from "ioredis"
import { Keys } from "../src/internal/keys.ts"
import { decideRotation } from "../src/internal/records.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import type { SigningKeySet } from "../src/schema/signingKey.ts"
import { ClientStore } from "../src/services/ClientStore.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { ProviderTokenStore } from "../src/services/ProviderTokenStore.ts"
import { RateLimiter } from "../src/services/RateLimiter.ts"
import { RawStorage } from "../src/services/RawStorage.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { SigningKeyStore } from "../src/services/SigningKeyStore.ts"
import { StoreError } from "../src/services/StoreError.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { type Backend, storeContract, type StoreOptions } from "./contract/index.ts"
import { mcpEventBusContract } from "./contract/McpEventBus.contract.ts"
import { mcpEventStoreContract } from "./contract/McpEventStore.contract.ts"
import * as F from "./contract/fixtures.ts"
import { advance, using } from "./contract/harness.ts"
import { acquireRedisServer, cleanupPrefix, freshPrefix, hasRedisServer, useRedis } from "./support/redis.ts"

const SECOND = 1_000
const MINUTE = 60 * SECOND

const server = useRedis()

/** A fresh build on the shared server: its own key prefix, its own ephemeral keys. */
const freshBuild = (options?: StoreOptions) => {
  const keyPrefix = freshPrefix()
  const stores = RedisStore.layer({ ...options, url: server.url(), keyPrefix }).pipe(
    Layer.provideMerge(NodeCrypto.layerEphemeral)
  )
  return server.external ? Layer.merge(stores, cleanupPrefix(server.url(), keyPrefix)) : stores
}

const redis: Backend = { name: "redis", make: freshBuild }

storeContract(redis)
mcpEventStoreContract({ name: "redis", make: freshBuild, boundsStreams: false })
mcpEventBusContract({ name: "redis", make: freshBuild })

type Instance = Context.Context<RedisStore.RedisStores | Crypto>

/**
 * Two server instances on one Redis: two independent layers (two
 * connections), the same key prefix, and the same configured keys (each
 * builds its own `Crypto` from them, as two processes would).
 */
const twoInstances = (options: StoreOptions = {}): Effect.Effect<readonly [Instance, Instance], unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const activeKey = yield* generateKey
    const keyPrefix = freshPrefix()
    const instance = () =>
      Layer.build(
        RedisStore.layer({ sweepInterval: "1 day", ...options, url: server.url(), keyPrefix }).pipe(
          Layer.provideMerge(NodeCrypto.layer({ activeKey }))
        )
      )
    yield* cleanup(keyPrefix)
    return [yield* instance(), yield* instance()] as const
  })

/** On an external server (`REDIS_URL`), delete the keys under `prefix` when the test's scope closes. */
const cleanup = (prefix: string) => server.external ? Layer.build(cleanupPrefix(server.url(), prefix)) : Effect.void

const tags = <T extends { readonly _tag: string }>(results: ReadonlyArray<T>) =>
  results.reduce<Record<string, number>>((counts, r) => ({ ...counts, [r._tag]: (counts[r._tag] ?? 0) + 1 }), {})

describe("redis: two instances on one Redis", () => {
  it.scoped("100 concurrent consumes of one code split across both: exactly one winner", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances()
      const tokensA = Context.get(a, TokenStore)
      const tokensB = Context.get(b, TokenStore)
      yield* tokensA.saveCode("code-shared", F.code("g1"))
      const results = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? tokensA : tokensB).consumeCode("code-shared")),
        { concurrency: "unbounded" }
      )
      expect(tags(results)).toEqual({ Consumed: 1, Replayed: 99 })
      expect(yield* tokensB.consumeCode("code-shared")).toEqual({ _tag: "Replayed", grantId: "g1" })
    }))

  it.scoped("100 concurrent consumes with a limit of 10 split across both: exactly 10 pass; refunds and checks agree", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances()
      const limiters = [Context.get(a, RateLimiter), Context.get(b, RateLimiter)] as const
      const policy = { bucket: "signin-address", limit: 10, window: "1 hour" } as const
      const results = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => limiters[i % 2 === 0 ? 0 : 1].consume(policy, "203.0.113.7")),
        { concurrency: "unbounded" }
      )
      const passed = results.filter((d) => d.allowed)
      expect(passed).toHaveLength(10)
      expect(passed.map((d) => d.remaining).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      // Both instances read the one bucket: what A refunds, B can take.
      expect((yield* limiters[1].check(policy, "203.0.113.7")).allowed).toBe(false)
      yield* limiters[0].refund(policy, "203.0.113.7")
      expect(yield* limiters[1].consume(policy, "203.0.113.7")).toMatchObject({ allowed: true, remaining: 0 })
      expect((yield* limiters[0].consume(policy, "203.0.113.7")).allowed).toBe(false)
    }))

  it.scoped("100 concurrent sightings of one id split across both: exactly one is first", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances()
      const caches = [Context.get(a, ReplayCache), Context.get(b, ReplayCache)] as const
      const results = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => caches[i % 2 === 0 ? 0 : 1].remember("dpop", "jti-shared", "5 minutes")),
        { concurrency: "unbounded" }
      )
      expect(results.filter((s) => s === "First")).toHaveLength(1)
      expect(yield* caches[0].remember("dpop", "jti-shared", "5 minutes")).toBe("Replayed")
      expect(yield* caches[1].remember("dpop", "jti-shared", "5 minutes")).toBe("Replayed")
    }))

  it.scoped("a session created through one is read, touched and evicted correctly through the other", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances()
      const sessionsA = Context.get(a, SessionStore)
      const sessionsB = Context.get(b, SessionStore)
      const ids: Array<string> = []
      for (let i = 0; i < 5; i++) {
        ids.push((yield* sessionsA.create({ apiKey: "key-a", protocolVersion: "2025-06-18" })).session.id)
        yield* advance(20 * SECOND)
      }
      const first = ids[0] as string
      // read through B: the same record A wrote
      const read = Option.getOrThrow(yield* sessionsB.get(first))
      expect(read).toMatchObject({ id: first, protocolVersion: "2025-06-18", createdAt: 0 })
      // that read touched it (100 s since its last access): A sees the new access time
      expect(read.lastAccessedAt).toBe(100 * SECOND)
      yield* advance(SECOND)
      expect(Option.getOrThrow(yield* sessionsA.get(first)).lastAccessedAt).toBe(100 * SECOND)
      expect((yield* sessionsA.listByApiKey("key-a")).map((s) => s.id)).toEqual([...ids.slice(1), first])
      // an update through A is visible through B
      yield* sessionsA.update(first, { initialized: true })
      expect(Option.getOrThrow(yield* sessionsB.get(first)).initialized).toBe(true)
      // a sixth session through B evicts the least recently accessed: the second one, not the touched first
      const sixth = yield* sessionsB.create({ apiKey: "key-a" })
      expect(sixth.evicted.map((e) => [e.session.id, e.reason])).toEqual([[ids[1], "PerKeyLimit"]])
      expect(Option.isNone(yield* sessionsA.get(ids[1] as string))).toBe(true)
      expect(Option.isSome(yield* sessionsA.get(first))).toBe(true)
      expect((yield* sessionsA.listByApiKey("key-a")).length).toBe(5)
      // deleted through A, gone for B
      expect(yield* sessionsA.delete(sixth.session.id)).toBe(true)
      expect(Option.isNone(yield* sessionsB.get(sixth.session.id))).toBe(true)
    }))

  it.scoped("a rotation through one and a replay through the other: grace replay in the window, reuse after it", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances()
      const tokensA = Context.get(a, TokenStore)
      const tokensB = Context.get(b, TokenStore)
      yield* tokensA.saveGrant(F.grant("g1"))
      yield* tokensA.saveRefreshToken("rt-0", F.refreshToken("g1"))
      yield* tokensA.saveAccessToken("at-0", F.accessToken("g1"))
      yield* Context.get(a, ProviderTokenStore).storeTokens("g1", "github", F.providerTokens(1))
      const rotated = yield* tokensA.rotateRefreshToken("rt-0", F.pair(1))
      expect(rotated._tag).toBe("Rotated")

      yield* advance(30 * SECOND)
      const replay = yield* tokensB.rotateRefreshToken("rt-0", F.pair("retry"))
      expect(replay._tag).toBe("GraceReplay")
      if (replay._tag !== "GraceReplay") return
      expect(Redacted.value(replay.pair.refreshToken)).toBe(Redacted.value(F.pair(1).refreshToken))
      expect(Redacted.value(replay.pair.accessToken)).toBe(Redacted.value(F.pair(1).accessToken))
      expect(replay.current.generation).toBe(1)

      yield* advance(1)
      expect(yield* tokensB.rotateRefreshToken("rt-0", F.pair("late"))).toEqual({ _tag: "ReuseDetected", grantId: "g1" })
      expect(Option.isNone(yield* tokensA.getGrant("g1"))).toBe(true)
      expect(Option.isNone(yield* tokensA.getRefreshToken(Redacted.value(F.pair(1).refreshToken)))).toBe(true)
      expect(Option.isNone(yield* tokensA.getAccessToken("at-0"))).toBe(true)
      expect(yield* Context.get(a, ProviderTokenStore).getProviderIds("g1")).toEqual([])
    }))

  it.scoped("signing keys: concurrent compare-and-set from both, one winner", () =>
    Effect.gen(function*() {
      const [a, b] = yield* twoInstances()
      const keySet = (version: number, label: string): SigningKeySet => ({
        version,
        keys: [{
          kid: `kid-${label}`,
          alg: "ES256",
          status: "active",
          publicJwk: { kty: "EC", label },
          privateJwk: Redacted.make({ kty: "EC", d: `d-${label}` }),
          createdAt: 0
        }]
      })
      expect(yield* Context.get(a, SigningKeyStore).compareAndSet(undefined, keySet(1, "base"))).toBe(true)
      const results = yield* Effect.all(
        Array.from({ length: 40 }, (_, i) =>
          Context.get(i % 2 === 0 ? a : b, SigningKeyStore).compareAndSet(1, keySet(2, `w${i}`))),
        { concurrency: "unbounded" }
      )
      expect(results.filter((won) => won)).toHaveLength(1)
      const winner = results.indexOf(true)
      const stored = Option.getOrThrow(yield* Context.get(b, SigningKeyStore).get)
      expect(stored.keys[0]?.kid).toBe(`kid-w${winner}`)
    }))
})

describe("redis: storage layout", () => {
  it.effect("seed 002's key patterns behind the prefix, with native PX expiry", () =>
    Effect.gen(function*() {
      const keyPrefix = `${freshPrefix()}myapp:auth:`
      yield* cleanup(keyPrefix)
      const context = yield* Layer.build(
        RedisStore.layer({ url: server.url(), keyPrefix, sweepInterval: "1 day" }).pipe(
          Layer.provideMerge(NodeCrypto.layerEphemeral)
        )
      )
      const tokens = Context.get(context, TokenStore)
      const crypto = Context.get(context, Crypto)
      yield* tokens.saveTransaction(F.transaction("tx-1"))
      yield* tokens.saveCode("code-1", F.code("g1"))
      yield* tokens.saveRefreshToken("rt-1", F.refreshToken("g1"))
      const { session } = yield* Context.get(context, SessionStore).create({ apiKey: "key-a" })
      const keys = (yield* Context.get(context, RawStorage).dump).map((row) => row.slice(0, row.indexOf(" ")))
      const codeKey = `${keyPrefix}code:${yield* crypto.hash("code-1")}`
      expect(keys).toEqual(expect.arrayContaining([
        `${keyPrefix}pending:tx-1`,
        codeKey,
        `${keyPrefix}refresh:${yield* crypto.hash("rt-1")}`,
        `${keyPrefix}session:${session.id}`
      ]))
      expect(keys.every((key) => key.startsWith(keyPrefix))).toBe(true)

      const raw = new Redis(server.url())
      yield* Effect.addFinalizer(() => Effect.sync(() => raw.disconnect()))
      const ttls = yield* Effect.promise(() =>
        Promise.all([raw.pttl(`${keyPrefix}pending:tx-1`), raw.pttl(codeKey), raw.pttl(`${keyPrefix}session:${session.id}`)])
      )
      // 10 minutes, 60 seconds, 24 hours, less the few milliseconds since the write
      expect(ttls[0]).toBeGreaterThan(10 * MINUTE - 5 * SECOND)
      expect(ttls[0]).toBeLessThanOrEqual(10 * MINUTE)
      expect(ttls[1]).toBeGreaterThan(55 * SECOND)
      expect(ttls[1]).toBeLessThanOrEqual(60 * SECOND)
      expect(ttls[2]).toBeGreaterThan(24 * 60 * MINUTE - 5 * SECOND)
    }).pipe(Effect.scoped))

  it.scoped("RawStorage scans only its own prefix, even one with glob characters", () =>
    Effect.gen(function*() {
      const base = freshPrefix()
      yield* cleanup(base)
      const build = (keyPrefix: string) =>
        Layer.build(RedisStore.layer({ url: server.url(), keyPrefix }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)))
      const star = yield* build(`${base}a*:`)
      const other = yield* build(`${base}ab:`)
      yield* Context.get(star, ClientStore).register({ clientId: "mine", metadata: F.clientMetadata })
      yield* Context.get(other, ClientStore).register({ clientId: "theirs", metadata: F.clientMetadata })
      const rows = yield* Context.get(star, RawStorage).dump
      expect(rows.map((row) => row.slice(0, row.indexOf(" ")))).toEqual([`${base}a*:${Keys.client("mine")}`])
    }))

  it.effect("a successor that expired within the grace window: reuse, as decideRotation says", () =>
    using(redis, { tokens: { refreshTokenTtl: "1 minute", refreshGraceWindow: "5 minutes" } })(Effect.gen(function*() {
      const store = yield* TokenStore
      yield* store.saveGrant(F.grant("g1"))
      yield* store.saveRefreshToken("rt-0", { ...F.refreshToken("g1"), ttl: "30 days" })
      const rotation = yield* store.rotateRefreshToken("rt-0", F.pair(1))
      if (rotation._tag !== "Rotated") return expect.fail(rotation._tag)
      yield* advance(2 * MINUTE)
      expect(decideRotation(rotation.previous, rotation.current, 2 * MINUTE, 5 * MINUTE)).toBe("Reuse")
      expect(yield* store.rotateRefreshToken("rt-0", F.pair(2))).toEqual({ _tag: "ReuseDetected", grantId: "g1" })
    })))
})

const reasonOf = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof StoreError ? failure.value.reason : "not a StoreError"
}

/** Log lines of a build, collected for assertions. */
const collectLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ message }) => {
    lines.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe.skipIf(!hasRedisServer)("redis: outage", () => {
  const COMMAND_TIMEOUT = "500 millis"

  /** Every store's operations, fresh effects each time. */
  const operations = (context: Context.Context<RedisStore.RedisStores>): Record<string, Effect.Effect<unknown, StoreError>> => {
    const tokens = Context.get(context, TokenStore)
    const sessions = Context.get(context, SessionStore)
    const providers = Context.get(context, ProviderTokenStore)
    return {
      saveCode: tokens.saveCode("code-2", F.code("g1")),
      consumeCode: tokens.consumeCode("code-1"),
      takeTransaction: tokens.takeTransaction("tx-1"),
      getAccessToken: tokens.getAccessToken("at-1"),
      rotateRefreshToken: tokens.rotateRefreshToken("rt-1", F.pair(1)),
      revokeGrant: tokens.revokeGrant("g-other"),
      createSession: sessions.create({ apiKey: "key-a" }),
      getSession: sessions.get("some-session"),
      storeProviderTokens: providers.storeTokens("g1", "github", F.providerTokens(1)),
      getProviderIds: providers.getProviderIds("g1"),
      getClient: Context.get(context, ClientStore).get("c1"),
      getSigningKeys: Context.get(context, SigningKeyStore).get,
      consumeRateLimit: Context.get(context, RateLimiter).consume({ bucket: "register", limit: 5, window: "1 minute" }, "a"),
      checkRateLimit: Context.get(context, RateLimiter).check({ bucket: "register", limit: 5, window: "1 minute" }, "a"),
      rememberId: Context.get(context, ReplayCache).remember("dpop", "jti", "1 minute"),
      dump: Context.get(context, RawStorage).dump
    }
  }

  const setup = Effect.gen(function*() {
    const own = yield* acquireRedisServer
    const logs = collectLogs()
    const context = yield* Layer.build(
      RedisStore.layer({ url: own.url, keyPrefix: freshPrefix(), commandTimeout: COMMAND_TIMEOUT }).pipe(
        Layer.provideMerge(NodeCrypto.layerEphemeral),
        Layer.provide(logs.layer)
      )
    )
    const tokens = Context.get(context, TokenStore)
    yield* tokens.saveTransaction(F.transaction("tx-1"))
    yield* tokens.saveCode("code-1", F.code("g1"))
    yield* tokens.saveAccessToken("at-1", F.accessToken("g1"))
    yield* tokens.saveRefreshToken("rt-1", F.refreshToken("g1"))
    return { own, context, logs }
  })

  /** Run every operation at once, each timed; the reasons they failed with (undefined: succeeded). */
  const runAll = (context: Context.Context<RedisStore.RedisStores>) =>
    Effect.all(
      Object.entries(operations(context)).map(([name, op]) =>
        Effect.map(Effect.timed(Effect.exit(op)), ([elapsed, exit]) => ({ name, reason: reasonOf(exit), elapsed }))
      ),
      { concurrency: "unbounded" }
    )

  /** Measured, not asserted (no timed assertions): how long the slowest failing operation took. */
  const report = (label: string, results: ReadonlyArray<{ readonly name: string; readonly elapsed: Duration.Duration }>) => {
    const slowest = results.reduce((a, b) => Duration.greaterThan(b.elapsed, a.elapsed) ? b : a)
    console.info(`${label}: ${results.length} operations failed, slowest ${slowest.name} after ${Duration.format(slowest.elapsed)}`)
  }

  const waitUntilBack = (context: Context.Context<RedisStore.RedisStores>) =>
    Context.get(context, TokenStore).getGrant("probe").pipe(
      Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(100))))
    )

  it.live("Redis stopped: every operation fails with Unavailable; restarted: the same layer works again", () =>
    Effect.gen(function*() {
      const { context, logs, own } = yield* setup
      yield* own.stop
      const down = yield* runAll(context)
      report("Redis stopped", down)
      expect(Object.fromEntries(down.map((r) => [r.name, r.reason]))).toEqual(
        Object.fromEntries(down.map((r) => [r.name, "Unavailable"]))
      )
      // a second round while still down: still Unavailable, and the outage is logged once
      expect((yield* runAll(context)).every((r) => r.reason === "Unavailable")).toBe(true)

      yield* own.start
      yield* waitUntilBack(context)
      const up = yield* runAll(context)
      expect(up.filter((r) => r.reason !== undefined)).toEqual([])
      // the restarted server is empty: the layer writes and reads again
      const tokens = Context.get(context, TokenStore)
      yield* tokens.saveCode("code-after", F.code("g1"))
      expect((yield* tokens.consumeCode("code-after"))._tag).toBe("Consumed")
      expect(logs.lines.filter((line) => line.startsWith("Redis unreachable"))).toHaveLength(1)
      expect(logs.lines.filter((line) => line.startsWith("Redis reachable again"))).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("Redis frozen (no answer at all): each operation fails at the command timeout, then recovers", () =>
    Effect.gen(function*() {
      const { context, own } = yield* setup
      yield* own.freeze
      const frozen = yield* runAll(context).pipe(Effect.ensuring(own.thaw))
      report(`Redis frozen, command timeout ${COMMAND_TIMEOUT}`, frozen)
      expect(frozen.every((r) => r.reason === "Unavailable")).toBe(true)
      yield* waitUntilBack(context)
      // A timed-out command's outcome is unknown: the frozen server still had the
      // consume in its socket buffer and applied it when it resumed.
      const tokens = Context.get(context, TokenStore)
      expect(yield* tokens.consumeCode("code-1")).toEqual({ _tag: "Replayed", grantId: "g1" })
      yield* tokens.saveCode("code-after", F.code("g1"))
      expect((yield* tokens.consumeCode("code-after"))._tag).toBe("Consumed")
    }).pipe(Effect.scoped))

  it.live("an unreachable Redis fails the layer's build with Unavailable", () =>
    Effect.gen(function*() {
      const own = yield* acquireRedisServer
      yield* own.stop
      const exit = yield* Effect.exit(Layer.build(
        RedisStore.layer({ url: own.url, connectTimeout: "1 second" }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
      ))
      expect(reasonOf(exit)).toBe("Unavailable")
    }).pipe(Effect.scoped))
})

describe("redis: corrupt records", () => {
  it.effect("a record changed behind the layer's back is StoreError Corrupt on every hot read, never a defect or a wrong value", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      yield* cleanup(keyPrefix)
      const context = yield* Layer.build(
        RedisStore.layer({ url: server.url(), keyPrefix }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
      )
      const sessions = Context.get(context, SessionStore)
      const tokens = Context.get(context, TokenStore)
      const crypto = Context.get(context, Crypto)
      const raw = new Redis(server.url())
      yield* Effect.addFinalizer(() => Effect.sync(() => raw.disconnect()))
      const hset = (key: string, ...fields: Array<string>) => Effect.promise(() => raw.hset(keyPrefix + key, ...fields))

      const { session } = yield* sessions.create({ apiKey: "key-a", initialized: true })
      const sessionKey = Keys.session(session.id)
      const good = yield* Effect.promise(() => raw.hgetall(keyPrefix + sessionKey))
      const corruptions: ReadonlyArray<readonly [string, string]> = [
        ["d", "not json"],
        ["d", "[1,2]"],
        ["d", "null"],
        ["d", JSON.stringify({ id: session.id, createdAt: 1 })],
        ["d", JSON.stringify({ id: 5, apiKeyHash: "h", createdAt: 1 })],
        ["i", "yes"],
        ["ci", "{"],
        ["ci", "5"],
        ["ci", JSON.stringify({ name: "x" })],
        ["la", "soon"],
        ["ie", "-"],
        ["ae", "1.5"]
      ]
      for (const [field, value] of corruptions) {
        yield* hset(sessionKey, field, value)
        expect([field, value, reasonOf(yield* Effect.exit(sessions.get(session.id)))]).toEqual([field, value, "Corrupt"])
        yield* hset(sessionKey, ...Object.entries(good).flat())
        if (field === "ci") yield* Effect.promise(() => raw.hdel(keyPrefix + sessionKey, "ci"))
      }
      expect(Option.isSome(yield* sessions.get(session.id))).toBe(true)

      yield* tokens.saveAccessToken("at-1", F.accessToken("g1"))
      const accessKey = Keys.accessToken(yield* crypto.hash("at-1"))
      for (const value of ["not json", "[]", JSON.stringify({ grantId: "g1" })]) {
        yield* hset(accessKey, "r", value)
        expect([value, reasonOf(yield* Effect.exit(tokens.getAccessToken("at-1")))]).toEqual([value, "Corrupt"])
      }

      yield* tokens.saveCode("code-1", F.code("g1"))
      yield* hset(Keys.code(yield* crypto.hash("code-1")), "r", JSON.stringify({ grantId: "g1", scopes: "read" }))
      expect(reasonOf(yield* Effect.exit(tokens.consumeCode("code-1")))).toBe("Corrupt")

      yield* tokens.saveRefreshToken("rt-1", F.refreshToken("g1"))
      yield* hset(Keys.refreshToken(yield* crypto.hash("rt-1")), "b", "{")
      expect(reasonOf(yield* Effect.exit(tokens.rotateRefreshToken("rt-1", F.pair(1))))).toBe("Corrupt")
    }).pipe(Effect.scoped))
})

describe("redis: tracing", () => {
  it.effect("operations are spans when the application installs a tracer", () =>
    using(redis)(Effect.gen(function*() {
      const store = yield* TokenStore
      const native = yield* Effect.tracer
      const names: Array<string> = []
      const recording = Tracer.make({
        span: (...args: Parameters<typeof native.span>) => {
          names.push(args[0])
          return native.span(...args)
        },
        context: native.context
      })
      yield* store.saveCode("code-1", F.code("g1"))
      expect(names).toEqual([])
      yield* store.consumeCode("code-1").pipe(Effect.withTracer(recording))
      expect(names).toEqual(["TokenStore.consumeCode"])
    })))
})

describe("redis: layerConfig", () => {
  it.scoped("reads REDIS_URL and REDIS_KEY_PREFIX", () =>
    Effect.gen(function*() {
      const keyPrefix = freshPrefix()
      yield* cleanup(keyPrefix)
      const provider = ConfigProvider.fromMap(new Map([["REDIS_URL", server.url()], ["REDIS_KEY_PREFIX", keyPrefix]]))
      const context = yield* Layer.build(
        RedisStore.layerConfig().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral), Layer.provide(Layer.setConfigProvider(provider)))
      )
      yield* Context.get(context, TokenStore).saveTransaction(F.transaction("tx-config"))
      const rows = yield* Context.get(context, RawStorage).dump
      expect(rows.some((row) => row.startsWith(`${keyPrefix}pending:tx-config `))).toBe(true)
    }))
})
