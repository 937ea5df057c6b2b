import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Redacted, Stream } from "effect"
import { rekey } from "../../src/cli/rekey.ts"
import { Keys } from "../../src/internal/keys.ts"
import { recordKeyOf, sealedRecordKey, sealedValuesOf } from "../../src/internal/storedRecords.ts"
import { keyIdOf } from "../../src/layers/crypto/envelope.ts"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import { generateKey } from "../../src/layers/crypto/keyring.ts"
import type { StoredRecord } from "../../src/schema/storedRecord.ts"
import { ClientStore } from "../../src/services/ClientStore.ts"
import { Crypto } from "../../src/services/Crypto.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { SessionStore } from "../../src/services/SessionStore.ts"
import { SigningKeyStore } from "../../src/services/SigningKeyStore.ts"
import { StoreMaintenance } from "../../src/services/StoreMaintenance.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import * as F from "./fixtures.ts"
import { advance, concurrently, type StoreOptions, type Stores } from "./harness.ts"

/** The stores of a backend that provides `StoreMaintenance`, over a `Crypto` the test chooses. */
export type MaintainedStores = Exclude<Stores, Crypto> | StoreMaintenance

/** A backend under the maintenance contract: fresh builds over the `Crypto` given (so two builds share keys). */
export interface MaintainedBackend {
  readonly name: string
  readonly make: (options?: StoreOptions) => Layer.Layer<MaintainedStores, unknown, Crypto>
}

const secrets = {
  code: F.secret("maint-code"),
  usedCode: F.secret("maint-used-code"),
  access: F.secret("maint-access"),
  refresh: F.secret("maint-refresh"),
  apiKey: F.secret("maint-api-key"),
  client: F.secret("maint-client"),
  verifier: F.secret("maint-pkce-verifier")
}

/** One record of every kind, through the stores' own operations. */
const populate = Effect.gen(function*() {
  const tokens = yield* TokenStore
  const providers = yield* ProviderTokenStore
  const sessions = yield* SessionStore
  yield* tokens.saveGrant(F.grant("g1"))
  yield* tokens.saveTransaction({
    ...F.transaction("tx-1"),
    upstream: { state: "upstream-state", codeVerifier: Redacted.make(secrets.verifier) }
  })
  yield* tokens.saveCode(secrets.code, F.code("g1"))
  yield* tokens.saveCode(secrets.usedCode, F.code("g1"))
  yield* tokens.consumeCode(secrets.usedCode)
  yield* tokens.saveAccessToken(secrets.access, F.accessToken("g1"))
  yield* tokens.saveRefreshToken(secrets.refresh, F.refreshToken("g1"))
  yield* tokens.rotateRefreshToken(secrets.refresh, F.pair("maint"))
  yield* providers.storeTokens("g1", "github", F.providerTokens("maint"))
  const { session } = yield* sessions.create({
    apiKey: secrets.apiKey,
    subject: "user-1",
    protocolVersion: "2025-06-18",
    clientInfo: { name: "client", version: "1.0" }
  })
  yield* Effect.flatMap(ClientStore, (clients) =>
    clients.register({ clientId: "client-1", clientSecret: secrets.client, metadata: F.clientMetadata }))
  yield* Effect.flatMap(SigningKeyStore, (keys) => keys.compareAndSet(undefined, F.keySet(1, "maint")))
  return session.id
})

const EXPECTED = {
  Transaction: 1,
  Code: 2,
  AccessToken: 1,
  RefreshToken: 2,
  Grant: 1,
  ProviderTokens: 1,
  Session: 1,
  Client: 1,
  SigningKeys: 1
}

const listAll = (pageSize?: number) =>
  Effect.flatMap(StoreMaintenance, (m) =>
    Effect.map(Stream.runCollect(m.records(pageSize === undefined ? undefined : { pageSize })), Chunk.toReadonlyArray))

const countByKind = (records: ReadonlyArray<StoredRecord>) => {
  const counts: Record<string, number> = {}
  for (const record of records) counts[record._tag] = (counts[record._tag] ?? 0) + 1
  return counts
}

/** Open a record's sealed values with the keyring: the plaintexts. */
const openAll = (record: StoredRecord) =>
  Effect.flatMap(Crypto, (crypto) =>
    Effect.forEach(sealedValuesOf(record), (value) => crypto.decrypt(value.envelope, sealedRecordKey(value.ref))))

/** Run `body` on a fresh build of the backend over `crypto`. */
const on = (backend: MaintainedBackend, crypto: Layer.Layer<Crypto>, options: StoreOptions = {}) =>
<A, E>(body: Effect.Effect<A, E, MaintainedStores | Crypto>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(backend.make({ sweepInterval: "1 day", ...options }).pipe(Layer.provideMerge(crypto)))))

const cryptoWith = (activeKey: Redacted.Redacted<string>, previousKeys: ReadonlyArray<Redacted.Redacted<string>> = []) =>
  Layer.orDie(NodeCrypto.layer({ activeKey, previousKeys, hashKey: HASH_KEY }))

/** One lookup-hash key for every build: hashes must match across builds and keyrings. */
const HASH_KEY = Effect.runSync(generateKey)

/** The `StoreMaintenance` contract, and re-keying over it. */
export const storeMaintenanceContract = (backend: MaintainedBackend) =>
  describe(`StoreMaintenance contract: ${backend.name}`, () => {
    it.effect("lists every kind of record as stored: hashes, envelopes that open, no secret in the clear", () =>
      Effect.gen(function*() {
        const key = yield* generateKey
        yield* on(backend, cryptoWith(key))(Effect.gen(function*() {
          yield* populate
          const crypto = yield* Crypto
          const maintenance = yield* StoreMaintenance
          const records = yield* listAll(2)
          expect(countByKind(records)).toEqual(EXPECTED)
          expect(yield* maintenance.counts).toEqual(EXPECTED)
          expect(new Set(records.map(recordKeyOf)).size).toBe(records.length)
          const all = JSON.stringify(records)
          for (const secret of Object.values(secrets)) expect(all).not.toContain(secret)
          for (const plain of ["gho_provider_access_maint_secret", "private-d-maint-secret", "rt-successor-maint"]) {
            expect(all).not.toContain(plain)
          }
          expect(all).toContain(yield* crypto.hash(secrets.code))
          expect(all).toContain(yield* crypto.hash(secrets.apiKey))
          const opened = (yield* Effect.forEach(records, openAll)).flat().join("\n")
          for (const plain of [secrets.verifier, "gho_provider_access_maint_secret", "private-d-maint-secret", "rt-successor-maint"]) {
            expect(opened).toContain(plain)
          }
          for (const record of records) {
            for (const value of sealedValuesOf(record)) expect(keyIdOf(value.envelope)).toBe(crypto.activeKeyId)
          }
          const consumed = records.filter((r) => r._tag === "Code" && r.consumed)
          expect(consumed).toHaveLength(1)
          const rotated = records.find((r) => r._tag === "RefreshToken" && r.sealedSuccessor !== undefined)
          expect(rotated?._tag === "RefreshToken" && rotated.record.rotatedAt !== undefined).toBe(true)
        }))
      }))

    it.effect("expired records are neither listed nor counted", () =>
      Effect.gen(function*() {
        const key = yield* generateKey
        yield* on(backend, cryptoWith(key))(Effect.gen(function*() {
          yield* populate
          // Codes live 60 s, pending authorizations 10 minutes; the rest lives for days.
          yield* advance("11 minutes")
          const records = yield* listAll()
          expect(countByKind(records)).toEqual({ ...EXPECTED, Transaction: undefined, Code: undefined })
          expect(yield* Effect.flatMap(StoreMaintenance, (m) => m.counts)).toEqual({ ...EXPECTED, Transaction: 0, Code: 0 })
        }))
      }))

    it.effect("a re-seal replaces a value only while it still holds the envelope expected", () =>
      Effect.gen(function*() {
        const key = yield* generateKey
        yield* on(backend, cryptoWith(key))(Effect.gen(function*() {
          const crypto = yield* Crypto
          const maintenance = yield* StoreMaintenance
          const providers = yield* ProviderTokenStore
          yield* providers.storeTokens("g1", "github", F.providerTokens("one"))
          const [listed] = (yield* listAll()).filter((r) => r._tag === "ProviderTokens")
          if (listed?._tag !== "ProviderTokens") return expect.fail("no provider tokens listed")
          const ref = { _tag: "ProviderTokens", authorizationId: "g1", providerId: "github" } as const
          const json = yield* crypto.decrypt(listed.envelope, Keys.providerTokens("g1", "github"))
          const next = yield* crypto.encrypt(json, Keys.providerTokens("g1", "github"))
          expect(yield* maintenance.reseal([{ ref, expected: "v1.AAAAAAAA.not-it", next }])).toEqual([false])
          expect(yield* maintenance.reseal([{ ref, expected: listed.envelope, next }])).toEqual([true])
          expect(yield* maintenance.reseal([{ ref, expected: listed.envelope, next: listed.envelope }])).toEqual([false])
          const after = (yield* listAll()).find((r) => r._tag === "ProviderTokens")
          expect(after?._tag === "ProviderTokens" && after.envelope).toBe(next)
          const read = Option.getOrThrow(yield* providers.getTokens("g1", "github"))
          expect(Redacted.value(read.accessToken)).toBe("gho_provider_access_one_secret")
          // A value that does not exist is not created.
          const missing = { _tag: "ProviderTokens", authorizationId: "nobody", providerId: "github" } as const
          expect(yield* maintenance.reseal([{ ref: missing, expected: next, next }])).toEqual([false])
          expect(Option.isNone(yield* providers.getTokens("nobody", "github"))).toBe(true)
        }))
      }))

    it.effect("20 concurrent re-seals of one value from the same read: exactly one applies", () =>
      Effect.gen(function*() {
        const key = yield* generateKey
        yield* on(backend, cryptoWith(key))(Effect.gen(function*() {
          const crypto = yield* Crypto
          const maintenance = yield* StoreMaintenance
          yield* populate
          const rotated = (yield* listAll()).find((r) => r._tag === "RefreshToken" && r.sealedSuccessor !== undefined)
          if (rotated?._tag !== "RefreshToken" || rotated.sealedSuccessor === undefined) return expect.fail("no successor pair")
          const ref = { _tag: "RefreshSuccessor", hash: rotated.hash } as const
          const json = yield* crypto.decrypt(rotated.sealedSuccessor, sealedRecordKey(ref))
          const results = yield* concurrently(20, () =>
            Effect.flatMap(crypto.encrypt(json, sealedRecordKey(ref)), (next) =>
              maintenance.reseal([{ ref, expected: rotated.sealedSuccessor ?? "", next }])))
          expect(results.flat().filter((applied) => applied)).toHaveLength(1)
          // The pair still opens where rotation looks for it: a grace replay hands it out.
          const replay = yield* Effect.flatMap(TokenStore, (tokens) => tokens.rotateRefreshToken(secrets.refresh, F.pair("other")))
          expect(replay._tag === "GraceReplay" && Redacted.value(replay.pair.refreshToken)).toBe(Redacted.value(F.pair("maint").refreshToken))
        }))
      }))

    it.effect("a re-seal racing writers never puts back the value they replaced", () =>
      Effect.gen(function*() {
        const key = yield* generateKey
        yield* on(backend, cryptoWith(key))(Effect.gen(function*() {
          const crypto = yield* Crypto
          const maintenance = yield* StoreMaintenance
          const providers = yield* ProviderTokenStore
          const ids = Array.from({ length: 40 }, (_, i) => `race-${i}`)
          yield* Effect.forEach(ids, (id) => providers.storeTokens(id, "github", F.providerTokens(`old-${id}`)))
          const listed = (yield* listAll()).filter((r) => r._tag === "ProviderTokens")
          const batch = yield* Effect.forEach(listed, (record) =>
            Effect.gen(function*() {
              const recordKey = Keys.providerTokens(record.authorizationId, record.providerId)
              const json = yield* crypto.decrypt(record.envelope, recordKey)
              return {
                ref: { _tag: "ProviderTokens", authorizationId: record.authorizationId, providerId: record.providerId } as const,
                expected: record.envelope,
                next: yield* crypto.encrypt(json, recordKey)
              }
            }))
          // Writers replace every value while re-seals of the old ones go in, in batches of 5.
          const chunks = Array.from({ length: 8 }, (_, i) => batch.slice(i * 5, i * 5 + 5))
          yield* Effect.all([
            Effect.forEach(ids, (id) => providers.storeTokens(id, "github", F.providerTokens(`new-${id}`)), { concurrency: 8 }),
            Effect.forEach(chunks, (chunk) => maintenance.reseal(chunk), { concurrency: 8 })
          ], { concurrency: "unbounded" })
          for (const id of ids) {
            const read = Option.getOrThrow(yield* providers.getTokens(id, "github"))
            expect(Redacted.value(read.accessToken)).toBe(`gho_provider_access_new-${id}_secret`)
          }
        }))
      }))

    it.effect("records imported into a fresh build work as they did: replay detection, grace replay, sessions, clients, keys", () =>
      Effect.gen(function*() {
        const key = yield* generateKey
        const crypto = cryptoWith(key)
        const { exported, sessionId } = yield* on(backend, crypto)(Effect.gen(function*() {
          const sessionId = yield* populate
          return { exported: yield* listAll(3), sessionId }
        }))
        yield* on(backend, crypto)(Effect.gen(function*() {
          const maintenance = yield* StoreMaintenance
          expect(yield* maintenance.counts).toEqual(Object.fromEntries(Object.keys(EXPECTED).map((k) => [k, 0])))
          for (let i = 0; i < exported.length; i += 4) yield* maintenance.importRecords(exported.slice(i, i + 4))
          const imported = yield* listAll()
          expect(countByKind(imported)).toEqual(EXPECTED)
          const byKey = new Map(imported.map((record) => [recordKeyOf(record), record]))
          for (const record of exported) {
            const copy = byKey.get(recordKeyOf(record))
            expect(copy).toBeDefined()
            if (record._tag === "Transaction" || copy === undefined) continue
            expect(JSON.parse(JSON.stringify(copy))).toEqual(JSON.parse(JSON.stringify(record)))
          }

          const tokens = yield* TokenStore
          const taken = Option.getOrThrow(yield* tokens.takeTransaction("tx-1"))
          expect(taken.upstream === undefined ? undefined : Redacted.value(taken.upstream.codeVerifier)).toBe(secrets.verifier)
          expect(yield* tokens.consumeCode(secrets.usedCode)).toEqual({ _tag: "Replayed", grantId: "g1" })
          expect((yield* tokens.consumeCode(secrets.code))._tag).toBe("Consumed")
          expect(Option.isSome(yield* tokens.getAccessToken(secrets.access))).toBe(true)
          expect(Option.isSome(yield* tokens.getGrant("g1"))).toBe(true)
          const replay = yield* tokens.rotateRefreshToken(secrets.refresh, F.pair("other"))
          expect(replay._tag === "GraceReplay" && Redacted.value(replay.pair.accessToken)).toBe(Redacted.value(F.pair("maint").accessToken))
          const rotated = yield* tokens.rotateRefreshToken(Redacted.value(F.pair("maint").refreshToken), F.pair("next"))
          expect(rotated._tag).toBe("Rotated")
          const tokensRead = Option.getOrThrow(yield* Effect.flatMap(ProviderTokenStore, (p) => p.getTokens("g1", "github")))
          expect(Redacted.value(tokensRead.accessToken)).toBe("gho_provider_access_maint_secret")
          const sessions = yield* SessionStore
          expect(Option.getOrThrow(yield* sessions.get(sessionId)).subject).toBe("user-1")
          expect((yield* sessions.listByApiKey(secrets.apiKey)).map((s) => s.id)).toEqual([sessionId])
          expect(Option.isSome(yield* Effect.flatMap(ClientStore, (c) => c.authenticate("client-1", secrets.client)))).toBe(true)
          const keySet = Option.getOrThrow(yield* Effect.flatMap(SigningKeyStore, (k) => k.get))
          expect(keySet.version).toBe(1)
          expect(keySet.keys.map((k) => Redacted.value(k.privateJwk)["d"])).toEqual(["private-d-maint-secret"])
        }))
      }))

    it.effect("an import replaces records under the same key, skips expired ones and keeps each expiry", () =>
      Effect.gen(function*() {
        const key = yield* generateKey
        yield* on(backend, cryptoWith(key))(Effect.gen(function*() {
          const maintenance = yield* StoreMaintenance
          const tokens = yield* TokenStore
          const grant = yield* tokens.saveGrant({ ...F.grant("g-imp"), ttl: "2 hours" })
          const record = { ...grant, subject: "replaced", expiresAt: grant.createdAt + 3_600_000 }
          yield* maintenance.importRecords([
            { _tag: "Grant", record },
            { _tag: "Grant", record: { ...grant, id: "g-expired", expiresAt: grant.createdAt } }
          ])
          expect(Option.getOrThrow(yield* tokens.getGrant("g-imp")).subject).toBe("replaced")
          expect(Option.isNone(yield* tokens.getGrant("g-expired"))).toBe(true)
          expect((yield* maintenance.counts).Grant).toBe(1)
          yield* advance("61 minutes")
          expect(Option.isNone(yield* tokens.getGrant("g-imp"))).toBe(true)
          expect((yield* listAll()).filter((r) => r._tag === "Grant")).toEqual([])
        }))
      }))

    it.effect("rekey: values sealed by an older key end under the active one, still readable; a second run has nothing to do", () =>
      Effect.gen(function*() {
        const oldKey = yield* generateKey
        const newKey = yield* generateKey
        const { exported, sessionId } = yield* on(backend, cryptoWith(oldKey))(Effect.gen(function*() {
          const sessionId = yield* populate
          return { exported: yield* listAll(), sessionId }
        }))
        yield* on(backend, cryptoWith(newKey, [oldKey]))(Effect.gen(function*() {
          const crypto = yield* Crypto
          const maintenance = yield* StoreMaintenance
          yield* maintenance.importRecords(exported)
          const stale = (yield* listAll()).flatMap(sealedValuesOf).filter((v) => keyIdOf(v.envelope) !== crypto.activeKeyId)
          expect(stale.length).toBeGreaterThanOrEqual(3)
          const progress = () => Effect.succeed({ advance: () => Effect.void, finish: Effect.void })
          const first = yield* rekey({ dryRun: true, batchSize: 2, progress })
          expect(first.resealed).toBe(stale.length)
          expect((yield* listAll()).flatMap(sealedValuesOf).filter((v) => keyIdOf(v.envelope) !== crypto.activeKeyId)).toHaveLength(stale.length)
          const done = yield* rekey({ dryRun: false, batchSize: 2, progress })
          expect(done.resealed).toBe(stale.length)
          expect(done.changedMeanwhile).toBe(0)
          const after = yield* listAll()
          for (const value of after.flatMap(sealedValuesOf)) expect(keyIdOf(value.envelope)).toBe(crypto.activeKeyId)
          for (const container of yield* maintenance.containers) expect(container.keyId).toBe(crypto.activeKeyId)
          expect((yield* rekey({ dryRun: false, batchSize: 2, progress })).resealed).toBe(0)
          // Everything still reads through the stores.
          const tokens = yield* TokenStore
          const replay = yield* tokens.rotateRefreshToken(secrets.refresh, F.pair("other"))
          expect(replay._tag).toBe("GraceReplay")
          const read = Option.getOrThrow(yield* Effect.flatMap(ProviderTokenStore, (p) => p.getTokens("g1", "github")))
          expect(Redacted.value(read.accessToken)).toBe("gho_provider_access_maint_secret")
          expect(Option.isSome(yield* Effect.flatMap(SessionStore, (s) => s.get(sessionId)))).toBe(true)
          expect(Option.isSome(yield* Effect.flatMap(SigningKeyStore, (k) => k.get))).toBe(true)
          // Without the old key, every value still opens.
          const onlyNew = yield* Effect.provide(Crypto, cryptoWith(newKey))
          for (const value of after.flatMap(sealedValuesOf)) {
            expect((yield* Effect.either(onlyNew.decrypt(value.envelope, sealedRecordKey(value.ref))))._tag).toBe("Right")
          }
        }))
      }))
  })
