import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { DurableObjectId } from "@cloudflare/workers-types"
import { Cause, Config, Context, Effect, Exit, Layer, Option, Redacted } from "effect"
import { Miniflare } from "miniflare"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import * as WebCrypto from "../src/layers/crypto/web.ts"
import * as DurableStore from "../src/layers/durable/index.ts"
import type { StoreStub } from "../src/layers/durable/protocol.ts"
import { ClientStore } from "../src/services/ClientStore.ts"
import { ProviderTokenStore } from "../src/services/ProviderTokenStore.ts"
import { RateLimiter } from "../src/services/RateLimiter.ts"
import { RawStorage } from "../src/services/RawStorage.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { SigningKeyStore } from "../src/services/SigningKeyStore.ts"
import { StoreError } from "../src/services/StoreError.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { storeContract, type StoreOptions } from "./contract/index.ts"
import { rateLimiterContract } from "./contract/RateLimiter.contract.ts"
import { replayCacheContract } from "./contract/ReplayCache.contract.ts"
import * as F from "./contract/fixtures.ts"
import { bundleForWorkers, workerScript } from "./support/workerBundle.ts"

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/** What the probe class adds to `StoreObject` (test/fixtures/durableWorker.ts). */
interface ProbeStub extends StoreStub {
  probeRows(): Promise<number>
  probeDamage(table: string, body: string): Promise<number>
  probeAlarm(): Promise<number | null>
  probeRacyTake(id: string): Promise<boolean>
  probeExpiredCodes(n: number): Promise<number>
  probeSchemaVersion(version: string): Promise<number>
  probeSchemaV1(): Promise<number>
}

const durableObjects = {
  STORE: { className: "StoreObject", useSQLite: true },
  PROBE: { className: "ProbeStoreObject", useSQLite: true }
}

const startMiniflare = (script: string, persist?: string) =>
  new Miniflare({
    modules: true,
    script,
    compatibilityDate: "2025-01-01",
    durableObjects,
    ...(persist === undefined ? {} : { durableObjectsPersist: persist }),
    bindings: { RS_TOKENS_ENC_KEY: Redacted.value(Effect.runSync(generateKey)) }
  })

/**
 * A namespace of a running Miniflare, seen from Node as a `StoreNamespace`:
 * each method call on a stub is one request to the fixture Worker's `/rpc`
 * route, which makes the call on the real binding inside workerd (so the
 * object sees Worker-to-object RPC, concurrent calls included) and answers
 * with its result as JSON.
 */
const namespaceOf = (instance: Miniflare, binding: string) => {
  const call = async (name: string, method: string, args: ReadonlyArray<unknown>): Promise<unknown> => {
    const response = await instance.dispatchFetch("http://worker.test/rpc", {
      method: "POST",
      body: JSON.stringify({ binding, name, method, args }),
      headers: { "content-type": "application/json" }
    })
    const reply = await response.json() as { readonly result?: unknown; readonly error?: string }
    if (!response.ok) throw new Error(reply.error ?? `RPC failed with ${response.status}`)
    return reply.result
  }
  const stub = (name: string): ProbeStub =>
    new Proxy({} as ProbeStub, { get: (_, method: string) => (...args: Array<unknown>) => call(name, method, args) })
  const idOf = (name: string): DurableObjectId => ({ name, toString: () => name, equals: (other) => other.name === name })
  return {
    namespace: { idFromName: idOf, get: (id: DurableObjectId) => stub(id.name ?? "") } satisfies DurableStore.StoreNamespace,
    stub
  }
}

let mf: Miniflare
let script: string
let store: ReturnType<typeof namespaceOf>
let probe: ReturnType<typeof namespaceOf>
const dirs: Array<string> = []

beforeAll(async () => {
  script = await workerScript(here("./fixtures/durableWorker.ts"))
  mf = startMiniflare(script)
  await mf.ready
  store = namespaceOf(mf, "STORE")
  probe = namespaceOf(mf, "PROBE")
})

afterAll(async () => {
  await mf?.dispose()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** Each build gets store names of its own, so builds share no object. */
let builds = 0
const nextName = () => `build-${++builds}`

storeContract({
  name: "durable object (Miniflare)",
  capabilities: DurableStore.capabilities,
  make: (options?: StoreOptions) =>
    DurableStore.layer({ ...options, namespace: store.namespace, name: nextName() }).pipe(
      Layer.provideMerge(WebCrypto.layerEphemeral)
    )
})

// The primitives spread over several objects: every bucket and id still in exactly one.
const sharded = {
  name: "durable object (Miniflare), 4 primitive shards",
  capabilities: DurableStore.capabilities,
  make: (options?: StoreOptions) =>
    DurableStore.layer({ ...options, namespace: store.namespace, name: nextName(), primitiveShards: 4 }).pipe(
      Layer.provideMerge(WebCrypto.layerEphemeral)
    )
}
rateLimiterContract(sharded)
replayCacheContract(sharded)

const storeErrorOf = <A, E>(exit: Exit.Exit<A, E>): StoreError | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof StoreError ? failure.value : undefined
}

/** One action an hour. */
const onePerHour = { bucket: "signin-address", limit: 1, window: "1 hour" } as const

/** Run `body` on a fresh build of `layer`, released when it ends. */
const using = <ROut, E>(layer: Layer.Layer<ROut, E>) => <A, E2>(body: Effect.Effect<A, E2, ROut>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(layer)))

describe("durable object backend", () => {
  it.effect("declares no operation non-atomic", () =>
    Effect.sync(() => {
      expect(DurableStore.capabilities.nonAtomic).toEqual([])
    }))

  it.effect("the concurrency tests can fail: a take with a timer await between read and delete lets several win", () =>
    Effect.gen(function*() {
      const name = nextName()
      yield* using(
        DurableStore.layer({ namespace: probe.namespace, name }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
      )(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const object = probe.stub(DurableStore.objectNames(name).tokens)
        yield* tokens.saveTransaction(F.transaction("tx-racy"))
        const racy = yield* Effect.all(
          Array.from({ length: 50 }, () => Effect.promise(() => object.probeRacyTake("tx-racy"))),
          { concurrency: "unbounded" }
        )
        expect(racy.filter((won) => won).length).toBeGreaterThan(1)
        // The store's own take, on the same object and under the same load, lets exactly one win.
        yield* tokens.saveTransaction(F.transaction("tx-atomic"))
        const taken = yield* Effect.all(Array.from({ length: 50 }, () => tokens.takeTransaction("tx-atomic")), {
          concurrency: "unbounded"
        })
        expect(taken.filter(Option.isSome)).toHaveLength(1)
      }))
    }))

  it.effect("survives a restart of Miniflare with persisted storage: every record read back and usable", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "mcp-durable-test-"))
      dirs.push(dir)
      const key = yield* generateKey
      const name = nextName()
      const stores = (namespace: DurableStore.StoreNamespace) =>
        DurableStore.layer({ namespace, name, sweepInterval: "1 day" }).pipe(
          Layer.provideMerge(Layer.orDie(WebCrypto.layer({ activeKey: key })))
        )
      const secrets = { clientSecret: F.secret("client"), apiKey: F.secret("api-key") }

      const before = startMiniflare(script, dir)
      const written = yield* using(stores(namespaceOf(before, "STORE").namespace))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveGrant(F.grant("g1"))
        yield* tokens.saveTransaction(F.transaction("tx-1"))
        yield* tokens.saveCode("code-1", F.code("g1"))
        yield* tokens.saveAccessToken("at-1", F.accessToken("g1"))
        yield* tokens.saveRefreshToken("rt-0", F.refreshToken("g1"))
        expect((yield* tokens.rotateRefreshToken("rt-0", F.pair(1)))._tag).toBe("Rotated")
        yield* Effect.flatMap(ProviderTokenStore, (p) => p.storeTokens("g1", "github", F.providerTokens(1)))
        yield* Effect.flatMap(ClientStore, (c) => c.register({ clientId: "c1", clientSecret: secrets.clientSecret, metadata: F.clientMetadata }))
        yield* Effect.flatMap(SigningKeyStore, (k) => k.compareAndSet(undefined, F.keySet(1, "persisted")))
        expect((yield* Effect.flatMap(RateLimiter, (r) => r.consume(onePerHour, "203.0.113.7"))).allowed).toBe(true)
        expect(yield* Effect.flatMap(ReplayCache, (r) => r.remember("dpop", "jti-persisted", "1 hour"))).toBe("First")
        return (yield* Effect.flatMap(SessionStore, (s) => s.create({ apiKey: secrets.apiKey }))).session
      }))
      yield* Effect.promise(() => before.dispose())

      const after = startMiniflare(script, dir)
      yield* using(stores(namespaceOf(after, "STORE").namespace))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        expect(Option.isSome(yield* tokens.getGrant("g1"))).toBe(true)
        expect(Option.getOrThrow(yield* tokens.takeTransaction("tx-1")).state).toBe("state-tx-1")
        expect((yield* tokens.consumeCode("code-1"))._tag).toBe("Consumed")
        expect(Option.isSome(yield* tokens.getAccessToken("at-1"))).toBe(true)
        // The grace replay opens the pair sealed before the restart.
        const replay = yield* tokens.rotateRefreshToken("rt-0", F.pair("retry"))
        expect(replay._tag === "GraceReplay" && Redacted.value(replay.pair.refreshToken)).toBe(Redacted.value(F.pair(1).refreshToken))
        const provider = Option.getOrThrow(yield* Effect.flatMap(ProviderTokenStore, (p) => p.getTokens("g1", "github")))
        expect(Redacted.value(provider.accessToken)).toBe("gho_provider_access_1_secret")
        expect(Option.isSome(yield* Effect.flatMap(ClientStore, (c) => c.authenticate("c1", secrets.clientSecret)))).toBe(true)
        expect(Option.getOrThrow(yield* Effect.flatMap(SigningKeyStore, (k) => k.get)).keys[0]?.kid).toBe("kid-persisted")
        expect(Option.getOrThrow(yield* Effect.flatMap(SessionStore, (s) => s.get(written.id))).apiKeyHash).toBe(written.apiKeyHash)
        expect(yield* Effect.flatMap(SessionStore, (s) => s.listByApiKey(secrets.apiKey))).toHaveLength(1)
        expect((yield* Effect.flatMap(RateLimiter, (r) => r.consume(onePerHour, "203.0.113.7"))).allowed).toBe(false)
        expect(yield* Effect.flatMap(ReplayCache, (r) => r.remember("dpop", "jti-persisted", "1 hour"))).toBe("Replayed")
      }))
      yield* Effect.promise(() => after.dispose())
    }), 60_000)

  it.effect("an object of the first schema (no primitives tables, no client expiry) is migrated in place when it starts, its records kept", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "mcp-durable-test-"))
      dirs.push(dir)
      const key = yield* generateKey
      const name = nextName()
      const stores = (namespace: DurableStore.StoreNamespace) =>
        DurableStore.layer({ namespace, name }).pipe(Layer.provideMerge(Layer.orDie(WebCrypto.layer({ activeKey: key }))))
      const before = startMiniflare(script, dir)
      const names = DurableStore.objectNames(name)
      yield* using(stores(namespaceOf(before, "PROBE").namespace))(Effect.gen(function*() {
        yield* Effect.flatMap(TokenStore, (t) => t.saveCode("code-1", F.code("g1")))
        yield* Effect.flatMap(ClientStore, (c) => c.register({ clientId: "registered", metadata: F.clientMetadata }))
        // Touch the primitives object too, so it exists at the old schema.
        expect(yield* Effect.flatMap(ReplayCache, (r) => r.remember("dpop", "jti-before", "1 hour"))).toBe("First")
      }))
      for (const object of [names.tokens, ...names.primitives]) {
        expect(yield* Effect.promise(() => namespaceOf(before, "PROBE").stub(object).probeSchemaV1())).toBe(1)
      }
      yield* Effect.promise(() => before.dispose())

      const after = startMiniflare(script, dir)
      yield* using(stores(namespaceOf(after, "PROBE").namespace))(Effect.gen(function*() {
        expect((yield* Effect.flatMap(TokenStore, (t) => t.consumeCode("code-1")))._tag).toBe("Consumed")
        // The registered client (no expiry) is still served; a cached metadata document gets one.
        expect(Option.isSome(yield* Effect.flatMap(ClientStore, (c) => c.get("registered")))).toBe(true)
        yield* Effect.flatMap(ClientStore, (c) => c.register({ clientId: "https://app.example/c.json", metadata: F.clientMetadata, ttl: "1 minute" }))
        expect(Option.isSome(yield* Effect.flatMap(ClientStore, (c) => c.get("https://app.example/c.json")))).toBe(true)
        // The old object had no replay table: the id is new to the migrated one.
        expect(yield* Effect.flatMap(ReplayCache, (r) => r.remember("dpop", "jti-before", "1 hour"))).toBe("First")
        expect(yield* Effect.flatMap(ReplayCache, (r) => r.remember("dpop", "jti-before", "1 hour"))).toBe("Replayed")
        expect((yield* Effect.flatMap(RateLimiter, (r) => r.consume(onePerHour, "k"))).allowed).toBe(true)
        expect((yield* Effect.flatMap(RateLimiter, (r) => r.consume(onePerHour, "k"))).allowed).toBe(false)
        const meta = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).filter((row) => row.startsWith("mcp_meta:schema_version"))
        expect(meta).toHaveLength(3)
        expect(meta.every((row) => row.includes("\"value\":\"3\""))).toBe(true)
      }))
      yield* Effect.promise(() => after.dispose())
    }), 60_000)

  it.effect("primitives spread over their shards, each key in exactly one; a shard count out of range is Invalid", () =>
    Effect.gen(function*() {
      const name = nextName()
      const names = DurableStore.objectNames(name, 4)
      yield* using(
        DurableStore.layer({ namespace: store.namespace, name, primitiveShards: 4 }).pipe(
          Layer.provideMerge(WebCrypto.layerEphemeral)
        )
      )(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const replays = yield* ReplayCache
        for (let i = 0; i < 40; i++) {
          yield* limiter.consume(onePerHour, `203.0.113.${i}`)
          yield* replays.remember("dpop", `jti-${i}`, "1 hour")
        }
        const ctx = { now: 0, sweepEvery: 86_400_000, graceWindow: 30_000 }
        const perShard = yield* Effect.forEach(names.primitives, (object) =>
          Effect.promise(async () => {
            const rows = await store.stub(object).dump(ctx)
            return Array.isArray(rows) ? rows.filter((row) => /^(ratelimit|replay):/.test(row)) : []
          }))
        // 80 keys in all, none in two shards, every shard used, none in the token or session objects.
        expect(perShard.flat()).toHaveLength(80)
        expect(new Set(perShard.flat().map((row) => row.split(" ")[0])).size).toBe(80)
        expect(perShard.every((rows) => rows.length > 0)).toBe(true)
        const elsewhere = yield* Effect.promise(() => store.stub(names.tokens).dump(ctx))
        expect(Array.isArray(elsewhere) && elsewhere.some((row) => /^(ratelimit|replay):/.test(row))).toBe(false)
      }))
      for (const primitiveShards of [0, 65, 1.5, Number.NaN]) {
        const built = yield* Effect.exit(
          Effect.scoped(Layer.build(
            DurableStore.layer({ namespace: store.namespace, name, primitiveShards }).pipe(Layer.provide(WebCrypto.layerEphemeral))
          ))
        )
        expect(storeErrorOf(built)).toMatchObject({ reason: "Invalid", method: "DurableStore.layer" })
      }
    }))

  it.effect("the object refuses a rate-limit policy or an expiry no layer would send, and writes nothing", () =>
    Effect.gen(function*() {
      const object = store.stub(DurableStore.objectNames(nextName()).primitives[0] ?? "")
      const ctx = { now: 0, sweepEvery: 86_400_000, graceWindow: 30_000 }
      const bad = [
        { bucket: "b", limit: 0, interval: 1, capacity: 0 },
        { bucket: "b", limit: 2, interval: 10, capacity: 25 },
        { bucket: "b", limit: 1, interval: Number.NaN, capacity: 1 }
      ]
      for (const policy of bad) {
        expect(yield* Effect.promise(() => object.consumeToken(ctx, "ratelimit:b:x", policy))).toMatchObject({
          _tag: "Failure",
          reason: "Invalid"
        })
      }
      expect(yield* Effect.promise(() => object.rememberId(ctx, "replay:dpop:x", 1.5))).toMatchObject({ reason: "Invalid" })
      const rows = yield* Effect.promise(() => object.dump(ctx))
      expect(Array.isArray(rows) && rows.filter((row) => /^(ratelimit|replay):/.test(row))).toEqual([])
    }))

  it.live("an idle object's alarm sweeps expired rows with no call arriving", () =>
    Effect.gen(function*() {
      const name = nextName()
      yield* using(
        DurableStore.layer({ namespace: probe.namespace, name, sweepInterval: "1 second" }).pipe(
          Layer.provideMerge(WebCrypto.layerEphemeral)
        )
      )(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveAccessToken("at-short", { ...F.accessToken("g1"), ttl: "500 millis" })
        yield* tokens.saveCode("code-short", F.code("g1"))
      }))
      const object = probe.stub(DurableStore.objectNames(name).tokens)
      expect(yield* Effect.promise(() => object.probeRows())).toBe(2)
      expect(yield* Effect.promise(() => object.probeAlarm())).not.toBeNull()
      // The access token expires after 0.5 s; the alarm fires 1 s after the first call. No call reaches the
      // object in between (the probe reads storage directly, without a sweep).
      let rows = 2
      for (let waited = 0; waited < 10_000 && rows !== 1; waited += 250) {
        yield* Effect.sleep("250 millis")
        rows = yield* Effect.promise(() => object.probeRows())
      }
      expect(rows).toBe(1)
      // The code (60 s) is still there, and the next alarm is planned for it.
      expect(yield* Effect.promise(() => object.probeAlarm())).not.toBeNull()
    }), 30_000)

  it.effect("a backlog of expired rows is swept with no read: a batch on a call's way in, the rest by an alarm at once", () =>
    Effect.gen(function*() {
      const name = nextName()
      const object = probe.stub(DurableStore.objectNames(name).tokens)
      yield* Effect.promise(() => object.probeExpiredCodes(1_200))
      yield* using(
        DurableStore.layer({ namespace: probe.namespace, name }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
      )(Effect.gen(function*() {
        // The first call sweeps: 500 of the 1,200 expired codes (one batch), and plans an alarm for the rest.
        expect((yield* Effect.flatMap(TokenStore, (t) => t.consumeCode("nothing")))._tag).toBe("NotFound")
      }))
      const afterCall = yield* Effect.promise(() => object.probeRows())
      expect(afterCall).toBeGreaterThanOrEqual(0)
      expect(afterCall).toBeLessThanOrEqual(700)
      let rows = afterCall
      for (let waited = 0; waited < 10_000 && rows > 0; waited += 100) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
        rows = yield* Effect.promise(() => object.probeRows())
      }
      expect(rows).toBe(0)
    }), 30_000)

  it.effect("an object whose stored schema is newer than the code refuses every call as Corrupt and changes nothing", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "mcp-durable-test-"))
      dirs.push(dir)
      const name = nextName()
      const stores = (namespace: DurableStore.StoreNamespace) =>
        DurableStore.layer({ namespace, name }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
      const before = startMiniflare(script, dir)
      yield* using(stores(namespaceOf(before, "PROBE").namespace))(
        Effect.flatMap(TokenStore, (t) => t.saveCode("code-1", F.code("g1")))
      )
      expect(yield* Effect.promise(() => namespaceOf(before, "PROBE").stub(DurableStore.objectNames(name).tokens).probeSchemaVersion("99")))
        .toBe(1)
      yield* Effect.promise(() => before.dispose())

      const after = startMiniflare(script, dir)
      const object = namespaceOf(after, "PROBE").stub(DurableStore.objectNames(name).tokens)
      yield* using(stores(namespaceOf(after, "PROBE").namespace))(Effect.gen(function*() {
        const error = storeErrorOf(yield* Effect.exit(Effect.flatMap(TokenStore, (t) => t.consumeCode("code-1"))))
        expect(error).toMatchObject({ reason: "Corrupt", method: "TokenStore.consumeCode" })
        expect(error?.description).toContain("99")
      }))
      expect(yield* Effect.promise(() => object.probeRows())).toBe(1)
      yield* Effect.promise(() => after.dispose())
    }), 60_000)

  it.effect("a row that does not decode is Corrupt; a rotation over one changes nothing", () =>
    Effect.gen(function*() {
      const name = nextName()
      yield* using(
        DurableStore.layer({ namespace: probe.namespace, name }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
      )(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const object = probe.stub(DurableStore.objectNames(name).tokens)
        yield* tokens.saveAccessToken("at-1", F.accessToken("g1"))
        yield* tokens.saveRefreshToken("rt-0", F.refreshToken("g1"))
        expect(yield* Effect.promise(() => object.probeDamage("mcp_access_tokens", "{not json"))).toBe(1)
        expect(yield* Effect.promise(() => object.probeDamage("mcp_refresh_tokens", "{\"grantId\":1}"))).toBe(1)

        expect(storeErrorOf(yield* Effect.exit(tokens.getAccessToken("at-1")))).toMatchObject({
          reason: "Corrupt",
          method: "TokenStore.getAccessToken"
        })
        expect(storeErrorOf(yield* Effect.exit(tokens.rotateRefreshToken("rt-0", F.pair(1))))).toMatchObject({
          reason: "Corrupt",
          method: "TokenStore.rotateRefreshToken"
        })
        // Rolled back: the presented token is still unrotated, and no successor was written.
        expect(Option.isNone(yield* tokens.getRefreshToken(Redacted.value(F.pair(1).refreshToken)))).toBe(true)
        const dump = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).filter((row) => row.startsWith("refresh:"))
        expect(dump).toHaveLength(1)
        expect(dump[0]).toContain("\"rotated_at\":null")
      }))
    }))

  it.effect("an object that cannot be reached is Unavailable, and the error holds no secret", () =>
    Effect.gen(function*() {
      const gone = startMiniflare(script)
      const { namespace } = namespaceOf(gone, "STORE")
      yield* Effect.promise(() => gone.dispose())
      yield* using(
        DurableStore.layer({ namespace, name: nextName() }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
      )(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const code = F.secret("unreachable-code")
        const error = storeErrorOf(yield* Effect.exit(tokens.consumeCode(code)))
        expect(error).toMatchObject({ reason: "Unavailable", method: "TokenStore.consumeCode" })
        expect(JSON.stringify(error)).not.toContain(code)
        expect(storeErrorOf(yield* Effect.exit(Effect.flatMap(SessionStore, (s) => s.create({ apiKey: "k" })))))
          .toMatchObject({ reason: "Unavailable", method: "SessionStore.create" })
      }))
    }))

  it.effect("a store is two objects: its sessions in one, everything else in the other", () =>
    Effect.gen(function*() {
      const name = nextName()
      yield* using(
        DurableStore.layer({ namespace: store.namespace, name }).pipe(Layer.provideMerge(WebCrypto.layerEphemeral))
      )(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveCode("code-1", F.code("g1"))
        const { session } = yield* Effect.flatMap(SessionStore, (s) => s.create({ apiKey: "key-a" }))
        const names = DurableStore.objectNames(name)
        const ctx = { now: 0, sweepEvery: 86_400_000, graceWindow: 30_000 }
        const tokenRows = yield* Effect.promise(() => store.stub(names.tokens).dump(ctx))
        const sessionRows = yield* Effect.promise(() => store.stub(names.sessions).dump(ctx))
        expect(Array.isArray(tokenRows) && tokenRows.some((row) => row.startsWith("code:"))).toBe(true)
        expect(Array.isArray(sessionRows) && sessionRows.some((row) => row.startsWith(`session:${session.id}`))).toBe(true)
        expect(Array.isArray(tokenRows) && tokenRows.some((row) => row.startsWith("session:"))).toBe(false)
      }))
    }))

  it.effect("layerEnv takes the binding from a Worker's env (STORE by default)", () =>
    Effect.gen(function*() {
      const build = (env: object, options?: DurableStore.DurableEnvOptions) =>
        Effect.scoped(Layer.build(DurableStore.layerEnv(env, options).pipe(Layer.provide(WebCrypto.layerEphemeral))))
      const missing = yield* Effect.exit(build({}))
      expect(Exit.isFailure(missing) && JSON.stringify(missing.cause)).toContain("STORE")
      const wrong = yield* Effect.exit(build({ STORE: "not a namespace" }))
      expect(Exit.isFailure(wrong) && JSON.stringify(wrong.cause)).toContain("not a Durable Object namespace binding")
      const context = yield* build({ TOKENS_DO: store.namespace }, { binding: "TOKENS_DO", name: nextName() })
      expect(yield* Context.get(context, TokenStore).consumeCode("nothing")).toEqual({ _tag: "NotFound" })
      const fromConfig = DurableStore.layerConfig({ STORE: store.namespace }, Config.succeed({ name: nextName() }))
      yield* Effect.scoped(Layer.build(fromConfig.pipe(Layer.provide(WebCrypto.layerEphemeral))))
    }))
})

describe("durable object backend inside workerd (the layer in a Worker)", () => {
  const call = async (method: "GET" | "POST", path: string, body?: Record<string, string | number>) => {
    const response = await mf.dispatchFetch(`http://worker.test${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
    })
    return { status: response.status, body: await response.json() as unknown }
  }

  it("the bundle has no Node built-in, and bundling the node:crypto layer is refused", async () => {
    expect(script.length).toBeGreaterThan(0)
    await expect(bundleForWorkers(here("../src/exports/crypto/node.ts"))).rejects.toThrow(/node:crypto/)
  })

  it("request after request (a fresh stub each time): save, consume twice, sessions", async () => {
    expect((await call("POST", "/codes", { code: "worker-code", grantId: "g1" })).status).toBe(201)
    expect((await call("POST", "/codes/consume", { code: "worker-code" })).body).toMatchObject({ _tag: "Consumed" })
    expect((await call("POST", "/codes/consume", { code: "worker-code" })).body).toEqual({ _tag: "Replayed", grantId: "g1" })
    const created = await call("POST", "/sessions", { apiKey: "alice-api-key" })
    expect(created.status).toBe(201)
    const { session } = created.body as { session: { id: string } }
    expect(await call("GET", `/sessions/${session.id}`)).toMatchObject({ status: 200, body: { id: session.id } })
  })

  it("50 concurrent consumes of one code from inside the Worker: exactly one Consumed", async () => {
    expect((await call("POST", "/codes", { code: "raced-in-worker", grantId: "g2" })).status).toBe(201)
    const raced = await call("POST", "/codes/race", { code: "raced-in-worker", n: 50 })
    const tags = raced.body as Array<string>
    expect(tags.filter((t) => t === "Consumed")).toHaveLength(1)
    expect(tags.filter((t) => t === "Replayed")).toHaveLength(49)
  })
})
