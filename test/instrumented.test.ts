/**
 * The instrumented stores (`Metrics.instrument`): every contract holds over
 * them as over the bare backend, and what they record is what happened:
 * calls and their durations, errors by reason, session evictions, code
 * replays, refresh reuse detections, compare-and-set conflicts, rate-limit
 * refusals, replayed ids and decrypt failures. Memory and SQLite (a real
 * temporary file); each test labels its series with a backend name of its
 * own, so counts are exact in the process-wide registry.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Metric } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { Metrics } from "../src/exports/index.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import * as SqliteStore from "../src/layers/sqlite/index.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { ProviderTokenStore } from "../src/services/ProviderTokenStore.ts"
import { type RateLimitPolicy, RateLimiter } from "../src/services/RateLimiter.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { SigningKeyStore } from "../src/services/SigningKeyStore.ts"
import { StoreError } from "../src/services/StoreError.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { storeContract, type StoreOptions } from "./contract/index.ts"
import * as F from "./contract/fixtures.ts"
import { advance } from "./contract/harness.ts"

const memory = (options?: StoreOptions) => MemoryStore.layer(options).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))

storeContract({
  name: "memory, instrumented",
  make: (options) => Metrics.instrument(memory({ sweepInterval: "1 day", ...options }), { backend: "contract-memory" })
})

const freshFile = () => join(mkdtempSync(join(tmpdir(), "instrumented-")), "store.db")

storeContract({
  name: "sqlite, instrumented",
  make: (options) =>
    Metrics.instrument(SqliteStore.layer({ filename: freshFile(), sweepInterval: "1 day", ...options }), { backend: "contract-sqlite" }).pipe(
      Layer.provideMerge(Metrics.instrument(NodeCrypto.layerEphemeral, { backend: "contract-sqlite" }))
    )
})

/** The value of one series in the process-wide registry (0 when it was never recorded). */
const valueOf = (name: string, labels: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    const found = pairs.find((pair) =>
      pair.metricKey.name === name &&
      pair.metricKey.tags.length === Object.keys(labels).length &&
      pair.metricKey.tags.every((tag) => labels[tag.key] === tag.value)
    )
    if (found === undefined) return 0
    const state = found.metricState as { count?: number }
    return state.count ?? 0
  })

let backends = 0
/** A backend label no other test uses. */
const label = (kind: string) => `${kind}-test-${++backends}`

const backendsUnderTest = [
  { kind: "memory", make: memory },
  { kind: "sqlite", make: (options?: StoreOptions) => SqliteStore.layer({ filename: freshFile(), ...options }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral)) }
] as const

for (const { kind, make } of backendsUnderTest) {
  describe(`instrumented ${kind} backend: what is recorded`, () => {
    const run = <A, E>(backend: string, body: Effect.Effect<A, E, TokenStore | SessionStore | SigningKeyStore | RateLimiter | ReplayCache>) =>
      Effect.scoped(Effect.provide(body, Layer.fresh(Metrics.instrument(make({ sweepInterval: "1 day" }), { backend }))))

    it.effect("counts every call and times it, by operation and backend", () => {
      const backend = label(kind)
      return run(backend, Effect.gen(function*() {
        const store = yield* TokenStore
        yield* store.saveGrant(F.grant("g1"))
        yield* store.saveGrant(F.grant("g2"))
        yield* store.getGrant("g1")
        const saves = { operation: "TokenStore.saveGrant", backend }
        expect(yield* valueOf("mcp_store_operations_total", saves)).toBe(2)
        expect(yield* valueOf("mcp_store_operation_duration_seconds", saves)).toBe(2)
        expect(yield* valueOf("mcp_store_operations_total", { operation: "TokenStore.getGrant", backend })).toBe(1)
        expect(yield* valueOf("mcp_store_errors_total", { ...saves, reason: "Invalid" })).toBe(0)
      }))
    })

    it.effect("counts failures by StoreError reason, and passes the error through unchanged", () => {
      const backend = label(kind)
      return run(backend, Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const exit = yield* Effect.exit(limiter.consume({ bucket: "bad", limit: 0, window: "1 minute" }, "k"))
        expect(Exit.isFailure(exit)).toBe(true)
        const failure = yield* Effect.flip(limiter.consume({ bucket: "bad", limit: 0, window: "1 minute" }, "k"))
        expect(failure).toBeInstanceOf(StoreError)
        expect(failure.reason).toBe("Invalid")
        const labels = { operation: "RateLimiter.consume", backend }
        expect(yield* valueOf("mcp_store_errors_total", { ...labels, reason: "Invalid" })).toBe(2)
        expect(yield* valueOf("mcp_store_operations_total", labels)).toBe(2)
      }))
    })

    it.effect("counts authorization-code replays and refresh-token reuse detections", () => {
      const backend = label(kind)
      return run(backend, Effect.gen(function*() {
        const store = yield* TokenStore
        yield* store.saveGrant(F.grant("g1"))
        yield* store.saveCode("code-1", F.code("g1"))
        expect((yield* store.consumeCode("code-1"))._tag).toBe("Consumed")
        expect((yield* store.consumeCode("code-1"))._tag).toBe("Replayed")
        expect(yield* valueOf("mcp_store_code_replays_total", { backend })).toBe(1)

        yield* store.saveRefreshToken("rt-0", F.refreshToken("g1"))
        yield* store.rotateRefreshToken("rt-0", F.pair(1))
        expect(yield* valueOf("mcp_store_refresh_reuse_detections_total", { backend })).toBe(0)
        yield* advance("31 seconds")
        expect((yield* store.rotateRefreshToken("rt-0", F.pair(2)))._tag).toBe("ReuseDetected")
        expect(yield* valueOf("mcp_store_refresh_reuse_detections_total", { backend })).toBe(1)
      }))
    })

    it.effect("counts session evictions by reason", () => {
      const backend = label(kind)
      return run(backend, Effect.gen(function*() {
        const sessions = yield* SessionStore
        for (let i = 0; i < 7; i++) yield* sessions.create({ apiKey: "one-key" })
        expect(yield* valueOf("mcp_store_session_evictions_total", { backend, reason: "PerKeyLimit" })).toBe(2)
        expect(yield* valueOf("mcp_store_session_evictions_total", { backend, reason: "GlobalLimit" })).toBe(0)
      }))
    })

    it.effect("counts compare-and-set conflicts, rate-limit refusals by bucket and replayed ids by scope", () => {
      const backend = label(kind)
      return run(backend, Effect.gen(function*() {
        const keys = yield* SigningKeyStore
        const set = { version: 1, keys: [] }
        expect(yield* keys.compareAndSet(undefined, set)).toBe(true)
        expect(yield* keys.compareAndSet(undefined, set)).toBe(false)
        expect(yield* valueOf("mcp_store_cas_conflicts_total", { operation: "SigningKeyStore.compareAndSet", backend })).toBe(1)

        const limiter = yield* RateLimiter
        const policy: RateLimitPolicy = { bucket: "signin-user", limit: 1, window: "1 hour" }
        expect((yield* limiter.consume(policy, "alice")).allowed).toBe(true)
        expect((yield* limiter.consume(policy, "alice")).allowed).toBe(false)
        expect((yield* limiter.consume(policy, "alice")).allowed).toBe(false)
        expect(yield* valueOf("mcp_store_rate_limit_refusals_total", { backend, bucket: "signin-user" })).toBe(2)

        const replay = yield* ReplayCache
        expect(yield* replay.remember("dpop", "jti-1", "1 minute")).toBe("First")
        expect(yield* replay.remember("dpop", "jti-1", "1 minute")).toBe("Replayed")
        expect(yield* valueOf("mcp_store_replays_detected_total", { backend, scope: "dpop" })).toBe(1)
      }))
    })

    it.effect("instrumenting twice records each call once", () => {
      const backend = label(kind)
      const twice = Metrics.instrument(Metrics.instrument(make({ sweepInterval: "1 day" }), { backend }), { backend })
      return Effect.scoped(Effect.provide(
        Effect.gen(function*() {
          yield* (yield* TokenStore).getGrant("none")
          expect(yield* valueOf("mcp_store_operations_total", { operation: "TokenStore.getGrant", backend })).toBe(1)
        }),
        Layer.fresh(twice)
      ))
    })
  })
}

describe("decrypt failures", () => {
  it.effect("a record sealed under a key the keyring lacks: counted as a decrypt failure and as a store error", () =>
    Effect.gen(function*() {
      const backend = label("sqlite")
      const filename = freshFile()
      const hashKey = yield* generateKey
      const write = SqliteStore.layer({ filename }).pipe(Layer.provideMerge(NodeCrypto.layer({ activeKey: yield* generateKey, hashKey })))
      yield* Effect.scoped(Effect.provide(
        Effect.flatMap(ProviderTokenStore, (store) => store.storeTokens("g1", "github", F.providerTokens(1))),
        Layer.fresh(write)
      ))
      const before = yield* valueOf("mcp_crypto_decrypt_failures_total", { reason: "DecryptFailed" })
      const otherKey = Metrics.instrument(NodeCrypto.layer({ activeKey: yield* generateKey, hashKey }), { backend })
      const read = Metrics.instrument(SqliteStore.layer({ filename }), { backend }).pipe(Layer.provideMerge(otherKey))
      const failure = yield* Effect.scoped(Effect.provide(
        Effect.flip(Effect.flatMap(ProviderTokenStore, (store) => store.getTokens("g1", "github"))),
        Layer.fresh(read)
      ))
      expect(failure.reason).toBe("DecryptFailed")
      expect(yield* valueOf("mcp_crypto_decrypt_failures_total", { reason: "DecryptFailed" })).toBe(before + 1)
      expect(yield* valueOf("mcp_store_errors_total", { operation: "ProviderTokenStore.getTokens", backend, reason: "DecryptFailed" })).toBe(1)
    }))

  it.effect("the instrumented Crypto opens what it sealed and passes every failure through", () =>
    Effect.gen(function*() {
      const crypto = yield* Crypto
      const sealed = yield* crypto.encrypt("hello", "record-1")
      expect(yield* crypto.decrypt(sealed, "record-1")).toBe("hello")
      const before = yield* valueOf("mcp_crypto_decrypt_failures_total", { reason: "DecryptFailed" })
      const failure = yield* Effect.flip(crypto.decrypt(sealed, "record-2"))
      expect(failure.reason).toBe("DecryptFailed")
      expect(yield* valueOf("mcp_crypto_decrypt_failures_total", { reason: "DecryptFailed" })).toBe(before + 1)
      expect(crypto.timingSafeEqual("a", "a")).toBe(true)
      expect(yield* crypto.hash("x")).toBe(yield* crypto.hash("x"))
    }).pipe(Effect.provide(Metrics.instrument(NodeCrypto.layerEphemeral, { backend: "crypto" }))))
})
