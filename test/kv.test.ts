import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Config, Context, Effect, Exit, HashMap, Layer, Logger, Option, Redacted } from "effect"
import type { Miniflare } from "miniflare"
import * as WebCrypto from "../src/layers/crypto/web.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import * as KvStore from "../src/layers/kv/index.ts"
import type { KvBinding } from "../src/layers/kv/namespace.ts"
import { Keys } from "../src/internal/keys.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { RateLimiter } from "../src/services/RateLimiter.ts"
import { RawStorage } from "../src/services/RawStorage.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { SigningKeyStore } from "../src/services/SigningKeyStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { ClientStore } from "../src/services/ClientStore.ts"
import { storeContract } from "./contract/index.ts"
import * as F from "./contract/fixtures.ts"
import { advance, type Backend, concurrently, type StoreOptions, type Stores, using } from "./contract/harness.ts"
import { ObservedBinding, startMiniflare } from "./fixtures/kvBindings.ts"

const SECOND = 1_000
const DAY = 86_400 * SECOND

const nowMillis = Effect.clockWith((clock) => clock.currentTimeMillis)

let mf: Miniflare
let namespace: KvBinding

beforeAll(async () => {
  mf = startMiniflare()
  namespace = await mf.getKVNamespace("TOKENS")
})

afterAll(async () => {
  await mf.dispose()
})

/** Each build gets its own key prefix in the one namespace, so builds share nothing. */
let builds = 0
const nextPrefix = () => `b${builds++}:`

interface KvBackend extends Backend {
  /** The key prefix of every build, in order. */
  readonly prefixes: Array<string>
  readonly makeKv: (options?: StoreOptions) => Layer.Layer<Stores | KvStore.KvHealth>
}

const kvOver = (binding: () => KvBinding, name = "kv (Miniflare)"): KvBackend => {
  const prefixes: Array<string> = []
  const makeKv = (options: StoreOptions = {}) => {
    const keyPrefix = nextPrefix()
    prefixes.push(keyPrefix)
    return KvStore.layer({ ...options, namespace: binding(), keyPrefix }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
  }
  return { name, capabilities: KvStore.capabilities, prefixes, make: makeKv, makeKv }
}

/** `using`, with the KV layer's `KvHealth` available too. */
const usingKv = (backend: KvBackend, options: StoreOptions = {}) =>
<A, E>(body: Effect.Effect<A, E, Stores | KvStore.KvHealth>): Effect.Effect<A, E> =>
  Effect.scoped(Effect.provide(body, Layer.fresh(backend.makeKv({ sweepInterval: "1 day", ...options }))))

const kv = kvOver(() => namespace)

storeContract(kv)

/** The full KV key of a record in the most recent build of `backend`. */
const lastPrefix = (backend: { readonly prefixes: ReadonlyArray<string> }) => backend.prefixes[backend.prefixes.length - 1] ?? ""

const failure = <A, E>(exit: Exit.Exit<A, E>) => Exit.isFailure(exit) ? JSON.stringify(exit.cause) : "success"

describe("kv: within one instance, the non-atomic operations are serialized", () => {
  // KV itself offers no compare-and-set (see `capabilities`); inside one instance a per-key lock
  // serializes each read-then-write, so concurrent requests to one isolate cannot double-spend.
  it.effect("20 concurrent consumes of one code: one Consumed, the rest Replayed", () =>
    using(kv)(Effect.gen(function*() {
      const store = yield* TokenStore
      yield* store.saveCode("code-race", F.code("g1"))
      const results = yield* concurrently(20, () => store.consumeCode("code-race"))
      expect(results.filter((r) => r._tag === "Consumed")).toHaveLength(1)
      expect(results.filter((r) => r._tag === "Replayed")).toHaveLength(19)
    })))

  it.effect("20 concurrent takes of one transaction: exactly one wins", () =>
    using(kv)(Effect.gen(function*() {
      const store = yield* TokenStore
      yield* store.saveTransaction(F.transaction("tx-race"))
      const results = yield* concurrently(20, () => store.takeTransaction("tx-race"))
      expect(results.filter(Option.isSome)).toHaveLength(1)
    })))

  it.effect("20 concurrent rotations of one refresh token: one Rotated, the rest get its pair", () =>
    using(kv)(Effect.gen(function*() {
      const store = yield* TokenStore
      yield* store.saveGrant(F.grant("g1"))
      yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
      const results = yield* concurrently(20, (i) => store.rotateRefreshToken("rt-0", F.pair(i)))
      const winner = results.findIndex((r) => r._tag === "Rotated")
      expect(results.filter((r) => r._tag === "GraceReplay")).toHaveLength(19)
      for (const r of results) {
        if (r._tag === "GraceReplay") expect(Redacted.value(r.pair.refreshToken)).toBe(Redacted.value(F.pair(winner).refreshToken))
      }
    })))

  it.effect("12 concurrent creates for one API key keep exactly 5", () =>
    using(kv)(Effect.gen(function*() {
      const store = yield* SessionStore
      const created = yield* concurrently(12, () => store.create({ apiKey: "key-a" }))
      expect(created.reduce((n, c) => n + c.evicted.length, 0)).toBe(7)
      expect(yield* store.listByApiKey("key-a")).toHaveLength(5)
    })))

  it.effect("20 concurrent consumes with a limit of 5: exactly 5 allowed", () =>
    using(kv)(Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const results = yield* concurrently(20, () => limiter.consume({ bucket: "register", limit: 5, window: "1 hour" }, "203.0.113.7"))
      expect(results.filter((d) => d.allowed)).toHaveLength(5)
    })))

  it.effect("20 concurrent sightings of one id: exactly one first", () =>
    using(kv)(Effect.gen(function*() {
      const cache = yield* ReplayCache
      const results = yield* concurrently(20, () => cache.remember("dpop", "jti-race", "5 minutes"))
      expect(results.filter((s) => s === "First")).toHaveLength(1)
    })))

  it.effect("10 concurrent compare-and-sets of the next signing key version: exactly one wins", () =>
    using(kv)(Effect.gen(function*() {
      const store = yield* SigningKeyStore
      const set = (version: number) => ({ version, keys: [] })
      yield* store.compareAndSet(undefined, set(1))
      const results = yield* concurrently(10, () => store.compareAndSet(1, set(2)))
      expect(results.filter((won) => won)).toHaveLength(1)
    })))
})

describe("kv: TTLs", () => {
  it.effect("expirationTtl is the remaining lifetime in whole seconds, never under KV's 60", () => {
    const observed = new ObservedBinding(namespace)
    const backend = kvOver(() => observed)
    return using(backend)(Effect.gen(function*() {
      const store = yield* TokenStore
      const sessions = yield* SessionStore
      const clients = yield* ClientStore
      const crypto = yield* Crypto
      const hashed = (secret: string) => crypto.hash(secret)
      const ttls = (key: string) => observed.ttlsOf(lastPrefix(backend) + key)

      yield* store.saveCode("c1", F.code("g1"))
      expect(ttls(Keys.code(yield* hashed("c1")))).toEqual([60])
      expect(ttls(Keys.grantMember("g1", Keys.code(yield* hashed("c1"))))).toEqual([60])
      yield* store.saveAccessToken("a-short", { ...F.accessToken("g1"), ttl: "1 second" })
      yield* store.saveAccessToken("a-odd", { ...F.accessToken("g1"), ttl: "90.5 seconds" })
      yield* store.saveAccessToken("a-default", F.accessToken("g1"))
      expect(ttls(Keys.accessToken(yield* hashed("a-short")))).toEqual([60])
      expect(ttls(Keys.accessToken(yield* hashed("a-odd")))).toEqual([91])
      expect(ttls(Keys.accessToken(yield* hashed("a-default")))).toEqual([7 * 86_400])
      yield* store.saveTransaction(F.transaction("t1"))
      expect(ttls(Keys.transaction("t1"))).toEqual([600])
      yield* store.saveGrant(F.grant("g1"))
      expect(ttls(Keys.grant("g1"))).toEqual([90 * 86_400])

      // The consumed-code tombstone keeps the code's expiry: 30 s left, still written with 60.
      yield* advance(30 * SECOND)
      yield* store.consumeCode("c1")
      expect(ttls(Keys.code(yield* hashed("c1")))).toEqual([60, 60])
      yield* store.saveAccessToken("a-later", { ...F.accessToken("g1"), ttl: "2 minutes" })
      expect(ttls(Keys.accessToken(yield* hashed("a-later")))).toEqual([120])

      // Sessions: the idle TTL, re-set by each touch; the index key lives to the absolute end.
      const { session } = yield* sessions.create({ apiKey: "key-a" })
      expect(ttls(Keys.session(session.id))).toEqual([86_400])
      expect(ttls(Keys.sessionOfKey(session.apiKeyHash, session.id))).toEqual([7 * 86_400])
      yield* advance("1 hour")
      yield* sessions.get(session.id)
      expect(ttls(Keys.session(session.id))).toEqual([86_400, 86_400])
      // Near the absolute end the idle expiry is capped by it.
      for (let day = 0; day < 6; day++) {
        yield* advance(DAY - 2 * SECOND)
        yield* sessions.get(session.id)
      }
      yield* advance(23 * 3_600 * SECOND)
      yield* sessions.get(session.id)
      // 12 s before the absolute end: the record expires then, KV is told 60 s.
      expect(session.absoluteExpiresAt - (yield* nowMillis)).toBe(12 * SECOND)
      expect(ttls(Keys.session(session.id)).at(-1)).toBe(60)

      // Records that never expire are written without a TTL.
      yield* clients.register({ clientId: "c-1", metadata: F.clientMetadata })
      expect(ttls(Keys.client("c-1"))).toEqual([undefined])
    }))
  })

  it.effect("rate-limit buckets and remembered ids: KV TTL from their expiry, never under 60 s", () => {
    const observed = new ObservedBinding(namespace)
    const backend = kvOver(() => observed)
    return using(backend)(Effect.gen(function*() {
      const limiter = yield* RateLimiter
      const cache = yield* ReplayCache
      const ttlsOf = (prefix: string) =>
        observed.puts.filter((put) => put.key.startsWith(lastPrefix(backend) + prefix)).map((put) => put.expirationTtl)
      yield* limiter.consume({ bucket: "register", limit: 3, window: "1 minute" }, "a") // full again in 20 s
      yield* limiter.consume({ bucket: "signin-user", limit: 1, window: "15 minutes" }, "alice")
      expect(ttlsOf("ratelimit:register:")).toEqual([60])
      expect(ttlsOf("ratelimit:signin-user:")).toEqual([900])
      yield* cache.remember("dpop", "jti", "5 minutes")
      expect(ttlsOf("replay:dpop:")).toEqual([300])
    }))
  })

  it.effect("a touch interval under 1 s is raised to 1 s: one session key is written at most once a second", () => {
    const observed = new ObservedBinding(namespace)
    const backend = kvOver(() => observed)
    return using(backend, { sessions: { touchInterval: "100 millis" } })(Effect.gen(function*() {
      const sessions = yield* SessionStore
      const { session } = yield* sessions.create({ apiKey: "key-a" })
      const writes = () => observed.ttlsOf(lastPrefix(backend) + Keys.session(session.id)).length
      expect(writes()).toBe(1)
      yield* advance(500)
      expect(Option.getOrThrow(yield* sessions.get(session.id)).lastAccessedAt).toBe(0)
      yield* advance(499)
      yield* sessions.get(session.id)
      expect(writes()).toBe(1)
      yield* advance(1)
      expect(Option.getOrThrow(yield* sessions.get(session.id)).lastAccessedAt).toBe(SECOND)
      expect(writes()).toBe(2)
      // Concurrent reads when a touch is due: one write.
      yield* advance(SECOND)
      yield* concurrently(10, () => sessions.get(session.id))
      expect(writes()).toBe(3)
      // An update is a write too: a read within the next second does not touch.
      yield* advance(SECOND)
      yield* sessions.update(session.id, { initialized: true })
      yield* advance(SECOND - 1)
      yield* sessions.get(session.id)
      expect(writes()).toBe(4)
    }))
  })
})

describe("kv: seed 000's write-through memory fallback", () => {
  it.effect("a write KV refuses stays readable from memory, is logged without secrets and counted", () => {
    const observed = new ObservedBinding(namespace)
    const backend = kvOver(() => observed)
    const logs: Array<string> = []
    const logger = Logger.make(({ annotations, logLevel, message }) => {
      logs.push(`${logLevel.label} ${JSON.stringify(message)} ${JSON.stringify([...HashMap.toEntries(annotations)])}`)
    })
    return usingKv(backend)(Effect.gen(function*() {
      const store = yield* TokenStore
      const sessions = yield* SessionStore
      const health = yield* KvStore.KvHealth
      const crypto = yield* Crypto
      const code = F.secret("code-during-outage")
      const apiKey = F.secret("api-key-during-outage")

      observed.failPuts = true
      yield* store.saveCode(code, F.code("g1"))
      const { session } = yield* sessions.create({ apiKey })
      expect(yield* health.writeFailures).toBe(4) // code, its grant index key, session, its API-key index key
      expect(yield* health.memoryOnly).toBe(4)

      // Not in KV, but readable (memory is read first), and the code's single use still holds.
      const codeKey = lastPrefix(backend) + Keys.code(yield* crypto.hash(code))
      expect((yield* Effect.promise(() => namespace.getWithMetadata(codeKey))).value).toBeNull()
      expect(Option.isSome(yield* sessions.get(session.id))).toBe(true)
      expect(yield* sessions.listByApiKey(apiKey)).toHaveLength(1)
      expect((yield* store.consumeCode(code))._tag).toBe("Consumed")
      expect((yield* store.consumeCode(code))._tag).toBe("Replayed")

      // Even with KV unreachable altogether, what only memory holds is still served.
      observed.failAll = true
      expect(Option.isSome(yield* sessions.get(session.id))).toBe(true)
      expect(failure(yield* Effect.exit(store.getAccessToken("never-saved")))).toContain("Unavailable")
      // A deletion is never kept only in memory: it fails, so the caller knows.
      yield* store.saveAccessToken("at-1", F.accessToken("g1"))
      expect(failure(yield* Effect.exit(store.revokeAccessToken("at-1")))).toContain("Unavailable")
      observed.failAll = false

      // The failures were logged as warnings naming the method and record kind, never a secret.
      const warnings = logs.filter((line) => line.startsWith("WARN"))
      expect(warnings.length).toBe(yield* health.writeFailures)
      expect(warnings.some((line) => line.includes("TokenStore.saveCode") && line.includes("\"code\""))).toBe(true)
      for (const secret of [code, apiKey, yield* crypto.hash(code), session.id]) {
        expect(logs.join("\n")).not.toContain(secret)
      }

      // Once KV takes writes again, rewriting a record moves it back to KV.
      observed.failPuts = false
      const before = yield* health.memoryOnly
      yield* sessions.update(session.id, { initialized: true })
      expect(yield* health.memoryOnly).toBe(before - 1)
      const stored = yield* Effect.promise(() => namespace.getWithMetadata(lastPrefix(backend) + Keys.session(session.id)))
      expect(stored.value).not.toBeNull()
      expect(Option.getOrThrow(yield* sessions.get(session.id)).initialized).toBe(true)
      // The memory-only records show in the raw dump too.
      expect((yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).some((row) => row.startsWith("memory-only"))).toBe(true)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger))))
  })
})

describe("kv: layout and wiring", () => {
  it.effect("seed 000's API-key index: one key per session under apikey:{hash}:, removed with the session", () =>
    using(kv)(Effect.gen(function*() {
      const sessions = yield* SessionStore
      const raw = yield* RawStorage
      const a = (yield* sessions.create({ apiKey: "key-a" })).session
      const b = (yield* sessions.create({ apiKey: "key-a" })).session
      const indexRows = (rows: ReadonlyArray<string>) =>
        rows.filter((row) => row.startsWith(lastPrefix(kv) + Keys.sessionsOfKey(a.apiKeyHash)))
      expect(indexRows(yield* raw.dump)).toHaveLength(2)
      expect(yield* sessions.delete(a.id)).toBe(true)
      const rows = indexRows(yield* raw.dump)
      expect(rows).toHaveLength(1)
      expect(rows[0]).toContain(b.id)
    })))

  it.scoped("two instances on one namespace see each other's writes at once (memory holds no copy of what KV took)", () =>
    Effect.gen(function*() {
      const keyPrefix = nextPrefix()
      const crypto = WebCrypto.layer({ activeKey: yield* generateKey })
      const instance = () =>
        Layer.build(KvStore.layer({ namespace, keyPrefix, sweepInterval: "1 day" }).pipe(Layer.provide(Layer.orDie(crypto))))
      const a = yield* instance()
      const b = yield* instance()
      const tokensA = Context.get(a, TokenStore)
      const tokensB = Context.get(b, TokenStore)
      yield* tokensA.saveCode("shared-code", F.code("g1"))
      expect((yield* tokensB.consumeCode("shared-code"))._tag).toBe("Consumed")
      expect((yield* tokensA.consumeCode("shared-code"))._tag).toBe("Replayed")
      const sessionsA = Context.get(a, SessionStore)
      const sessionsB = Context.get(b, SessionStore)
      const { session } = yield* sessionsA.create({ apiKey: "key-a" })
      expect(Option.isSome(yield* sessionsB.get(session.id))).toBe(true)
      expect(yield* sessionsB.delete(session.id)).toBe(true)
      expect(Option.isNone(yield* sessionsA.get(session.id))).toBe(true)
    }))

  it.effect("a key longer than KV accepts is refused as Invalid", () =>
    using(kv)(Effect.gen(function*() {
      const store = yield* TokenStore
      const exit = yield* Effect.exit(store.saveTransaction(F.transaction("x".repeat(600))))
      expect(failure(exit)).toContain("Invalid")
    })))

  it.effect("layerEnv takes the binding from a Worker's env (TOKENS by default)", () =>
    Effect.gen(function*() {
      const build = (env: object, options?: KvStore.KvEnvOptions) =>
        Effect.scoped(Layer.build(KvStore.layerEnv(env, options).pipe(Layer.provide(WebCrypto.layerEphemeral))))
      const missing = yield* Effect.exit(build({}))
      expect(Exit.isFailure(missing) && JSON.stringify(missing.cause)).toContain("TOKENS")
      const wrong = yield* Effect.exit(build({ TOKENS: "not a namespace" }))
      expect(Exit.isFailure(wrong) && JSON.stringify(wrong.cause)).toContain("not a KV namespace binding")
      const context = yield* build({ SESSIONS: namespace }, { binding: "SESSIONS", keyPrefix: nextPrefix() })
      expect(Context.get(context, TokenStore)).toBeDefined()
      const fromConfig = KvStore.layerConfig({ TOKENS: namespace }, Config.succeed({ keyPrefix: nextPrefix() }))
      yield* Effect.scoped(Layer.build(fromConfig.pipe(Layer.provide(WebCrypto.layerEphemeral))))
    }))
})
