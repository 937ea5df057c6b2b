/**
 * The `StoreMaintenance` contract (and re-keying over it) on every backend
 * that provides it: memory, SQLite (a real temporary file), the encrypted
 * file, and Redis (a real `redis-server`). Cloudflare KV does not provide it
 * (no compare-and-set for the re-seal).
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Redacted, Stream } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { rekey } from "../src/cli/rekey.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import * as FileStore from "../src/layers/file/index.ts"
import * as MemoryStore from "../src/layers/memory/index.ts"
import * as RedisStore from "../src/layers/redis/index.ts"
import * as SqliteStore from "../src/layers/sqlite/index.ts"
import { Keys } from "../src/internal/keys.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { ProviderTokenStore } from "../src/services/ProviderTokenStore.ts"
import { RateLimiter } from "../src/services/RateLimiter.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { StoreMaintenance } from "../src/services/StoreMaintenance.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { storeMaintenanceContract } from "./contract/StoreMaintenance.contract.ts"
import { cleanupPrefix, freshPrefix, useRedis } from "./support/redis.ts"

const dir = mkdtempSync(join(tmpdir(), "mcp-maintenance-test-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
const fresh = (name: string) => join(dir, `${name}-${++files}`)

storeMaintenanceContract({ name: "memory", make: (options) => MemoryStore.layer(options) })
storeMaintenanceContract({ name: "sqlite", make: (options) => SqliteStore.layer({ ...options, filename: fresh("store.db") }) })
storeMaintenanceContract({ name: "file", make: (options) => FileStore.layer({ ...options, path: fresh("tokens.enc") }) })

const server = useRedis()
storeMaintenanceContract({
  name: "redis",
  make: (options) => {
    const keyPrefix = freshPrefix()
    const stores = RedisStore.layer({ ...options, url: server.url(), keyPrefix })
    return server.external ? Layer.merge(stores, cleanupPrefix(server.url(), keyPrefix)) : stores
  }
})

describe("file backend: the snapshot is a sealed container of its own", () => {
  it.effect("rekey seals the snapshot again even when no record inside holds a sealed value", () =>
    Effect.gen(function*() {
      const path = fresh("container.enc")
      const [oldKey, newKey] = yield* Effect.all([generateKey, generateKey])
      const open = (keys: Layer.Layer<Crypto>) => <A, E>(body: Effect.Effect<A, E, FileStore.FileStores | Crypto>) =>
        Effect.scoped(Effect.provide(body, Layer.fresh(FileStore.layer({ path, sweepInterval: "1 day" }).pipe(Layer.provideMerge(keys)))))
      const old = Layer.orDie(NodeCrypto.layer({ activeKey: oldKey, hashKey: oldKey }))
      const keyring = Layer.orDie(NodeCrypto.layer({ activeKey: newKey, previousKeys: [oldKey], hashKey: oldKey }))
      const fresh2 = Layer.orDie(NodeCrypto.layer({ activeKey: newKey, hashKey: oldKey }))
      const oldKid = yield* open(old)(Effect.gen(function*() {
        yield* Effect.flatMap(TokenStore, (tokens) => tokens.saveGrant({ id: "g", clientId: "c", subject: "s", scopes: [] }))
        return (yield* Crypto).activeKeyId
      }))
      const progress = () => Effect.succeed({ advance: () => Effect.void, finish: Effect.void })
      const report = yield* open(keyring)(Effect.gen(function*() {
        const maintenance = yield* StoreMaintenance
        expect((yield* maintenance.containers).map((c) => c.keyId)).toEqual([oldKid])
        const done = yield* rekey({ dryRun: false, batchSize: 10, progress })
        expect((yield* maintenance.containers).map((c) => c.keyId)).toEqual([(yield* Crypto).activeKeyId])
        return done
      }))
      expect(report).toMatchObject({ resealed: 0, containersResealed: 1 })
      // The old key can go: the file opens with the new one alone.
      const found = yield* open(fresh2)(Effect.flatMap(TokenStore, (tokens) => tokens.getGrant("g")))
      expect(Option.isSome(found)).toBe(true)
    }))
})

describe("memory and file: maintenance leaves the rate-limit buckets and replay ids as they were", () => {
  const backends = [
    ["memory", () => MemoryStore.layer({ sweepInterval: "1 day" })],
    ["file", () => FileStore.layer({ path: fresh("ephemeral.enc"), sweepInterval: "1 day" })]
  ] as const
  for (const [name, make] of backends) {
    it.effect(`${name}: after a re-seal, an import and a container re-seal, a replayed id is still a replay and a spent budget still spent`, () =>
      Effect.gen(function*() {
        const replay = yield* ReplayCache
        const limiter = yield* RateLimiter
        const maintenance = yield* StoreMaintenance
        const crypto = yield* Crypto
        const policy = { bucket: "signin", limit: 1, window: "1 hour" } as const
        expect(yield* replay.remember("dpop", "jti-1", "1 hour")).toBe("First")
        expect((yield* limiter.consume(policy, "alice")).allowed).toBe(true)
        yield* Effect.flatMap(ProviderTokenStore, (p) => p.storeTokens("g", "github", { accessToken: Redacted.make("at") }))
        const [listed] = Chunk.toReadonlyArray(yield* Stream.runCollect(maintenance.records())).filter((r) => r._tag === "ProviderTokens")
        if (listed?._tag !== "ProviderTokens") return expect.fail("no provider tokens")
        const recordKey = Keys.providerTokens("g", "github")
        const next = yield* crypto.encrypt(yield* crypto.decrypt(listed.envelope, recordKey), recordKey)
        const ref = { _tag: "ProviderTokens", authorizationId: "g", providerId: "github" } as const
        expect(yield* maintenance.reseal([{ ref, expected: listed.envelope, next }])).toEqual([true])
        yield* maintenance.importRecords([listed])
        yield* maintenance.resealContainers
        expect(yield* replay.remember("dpop", "jti-1", "1 hour")).toBe("Replayed")
        expect((yield* limiter.consume(policy, "alice")).allowed).toBe(false)
      }).pipe(Effect.scoped, Effect.provide(Layer.fresh(make().pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))))))
  }
})
