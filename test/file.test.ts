import { afterAll, describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Logger, Option, Redacted, Schema, TestClock } from "effect"
import { build } from "esbuild"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { FileStore } from "../src/exports/file.ts"
import { pathConfig } from "../src/layers/file/config.ts"
import { decodeFile, encodeFile, FORMAT, FORMAT_VERSION } from "../src/layers/file/format.ts"
import { lockPathOf } from "../src/layers/file/lock.ts"
import { MemorySnapshot } from "../src/layers/memory/state.ts"
import { ClientStore } from "../src/services/ClientStore.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { ProviderTokenStore } from "../src/services/ProviderTokenStore.ts"
import { type RateLimitPolicy, RateLimiter } from "../src/services/RateLimiter.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { SigningKeyStore } from "../src/services/SigningKeyStore.ts"
import { StoreError } from "../src/services/StoreError.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { storeContract, type StoreOptions } from "./contract/index.ts"
import { mcpEventBusContract } from "./contract/McpEventBus.contract.ts"
import { mcpEventStoreContract } from "./contract/McpEventStore.contract.ts"
import * as F from "./contract/fixtures.ts"

const root = mkdtempSync(join(tmpdir(), "file-store-test-"))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let counter = 0
/** A path no other test uses, in a folder that does not exist yet. */
const freshPath = (label = "store") => join(root, `${label}-${counter++}`, "tokens.enc")

const fileBackend = {
  name: "file",
  make: (options?: StoreOptions) =>
    FileStore.layer({ ...options, path: freshPath("contract") }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
}

storeContract(fileBackend)
mcpEventStoreContract({ ...fileBackend, boundsStreams: true })
mcpEventBusContract(fileBackend)

const HOUR = 3_600_000
const DAY = 24 * HOUR

const newKey = () => randomBytes(32).toString("base64url")
const keyA = newKey()
const keyB = newKey()

const cryptoWith = (key: string) => Layer.orDie(NodeCrypto.layer({ activeKey: Redacted.make(key) }))

/** The file backend at `path` with `key` (the sweeper daily, so long clock moves stay cheap). */
const fileLayer = (path: string, options: Omit<FileStore.FileOptions, "path"> = {}, key = keyA) =>
  FileStore.layer({ sweepInterval: "1 day", ...options, path }).pipe(Layer.provideMerge(cryptoWith(key)))

type Services = Layer.Layer.Success<ReturnType<typeof fileLayer>>

/** Build the layer, run `body`, release the layer (pending writes go to disk, the lock is released). */
const opened = (path: string, options: Omit<FileStore.FileOptions, "path"> = {}, key = keyA) =>
<A, E>(body: Effect.Effect<A, E, Services>) => Effect.provide(body, Layer.fresh(fileLayer(path, options, key)))

/** The error a layer build fails with. */
const buildError = (path: string, key = keyA) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Effect.scoped(Layer.build(Layer.fresh(fileLayer(path, {}, key)))))
    if (Exit.isSuccess(exit)) return yield* Effect.dieMessage(`the store at ${path} opened`)
    const error = Cause.failureOption(exit.cause)
    if (Option.isNone(error) || !(error.value instanceof StoreError)) return yield* Effect.dieMessage(`not a StoreError: ${Cause.pretty(exit.cause)}`)
    return error.value
  })

/** Wait (in real time, polling) until `check` holds; fails after ~5 s. */
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      const value = yield* read
      if (check(value)) return value
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    }
    return yield* Effect.dieMessage("condition not reached")
  })

/** Every secret `writeEverything` hands to the stores. */
const secrets = {
  code: F.secret("code-kept"),
  consumedCode: F.secret("code-consumed"),
  accessToken: F.secret("access-token"),
  refreshToken: F.secret("refresh-token"),
  successorRefresh: "rt-successor-1-xxxxxxxxxxxxxxxxxxxxxxxx",
  successorAccess: "at-successor-1-yyyyyyyyyyyyyyyyyyyyyyyy",
  apiKey: F.secret("api-key"),
  clientSecret: F.secret("client-secret"),
  providerAccess: "gho_provider_access_persisted_secret",
  providerRefresh: "ghr_provider_refresh_persisted_secret",
  privateKey: "private-d-persisted-secret",
  codeVerifier: F.secret("upstream-verifier")
}

/** One record of every kind, through the public services; the session id comes back. */
const writeEverything = Effect.gen(function*() {
  const tokens = yield* TokenStore
  const providers = yield* ProviderTokenStore
  const sessions = yield* SessionStore
  const clients = yield* ClientStore
  const signingKeys = yield* SigningKeyStore
  yield* tokens.saveTransaction({
    ...F.transaction("tx-1"),
    upstream: { state: "upstream-state", codeVerifier: Redacted.make(secrets.codeVerifier) }
  })
  yield* tokens.saveGrant(F.grant("g1"))
  yield* tokens.saveCode(secrets.code, F.code("g1"))
  yield* tokens.saveCode(secrets.consumedCode, F.code("g1"))
  expect((yield* tokens.consumeCode(secrets.consumedCode))._tag).toBe("Consumed")
  yield* tokens.saveAccessToken(secrets.accessToken, F.accessToken("g1"))
  yield* tokens.saveRefreshToken(secrets.refreshToken, F.refreshToken("g1"))
  expect((yield* tokens.rotateRefreshToken(secrets.refreshToken, F.pair(1)))._tag).toBe("Rotated")
  yield* providers.storeTokens("g1", "github", F.providerTokens("persisted"))
  const { session } = yield* sessions.create({ apiKey: secrets.apiKey, clientInfo: { name: "inspector", version: "1" } })
  yield* clients.register({ clientId: "c1", clientSecret: secrets.clientSecret, metadata: F.clientMetadata })
  expect(yield* signingKeys.compareAndSet(undefined, F.keySet(1, "persisted"))).toBe(true)
  return session.id
})

describe("file backend: persistence", () => {
  it.effect("everything written is there, and decryptable, after the layer is released and reopened", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const sessionId = yield* opened(path)(writeEverything)
      yield* TestClock.adjust(10_000)
      yield* opened(path)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const transaction = Option.getOrThrow(yield* tokens.getTransaction("tx-1"))
        expect(transaction.upstream && Redacted.value(transaction.upstream.codeVerifier)).toBe(secrets.codeVerifier)
        expect(Option.isSome(yield* tokens.getGrant("g1"))).toBe(true)
        expect((yield* tokens.consumeCode(secrets.consumedCode))).toEqual({ _tag: "Replayed", grantId: "g1" })
        expect((yield* tokens.consumeCode(secrets.code))._tag).toBe("Consumed")
        expect(Option.getOrThrow(yield* tokens.getAccessToken(secrets.accessToken)).grantId).toBe("g1")
        // The predecessor within the grace window: the sealed successor pair opens after the restart.
        const replay = yield* tokens.rotateRefreshToken(secrets.refreshToken, F.pair(2))
        expect(replay._tag).toBe("GraceReplay")
        if (replay._tag === "GraceReplay") {
          expect(Redacted.value(replay.pair.refreshToken)).toBe(secrets.successorRefresh)
          expect(Redacted.value(replay.pair.accessToken)).toBe(secrets.successorAccess)
        }
        const provider = Option.getOrThrow(yield* (yield* ProviderTokenStore).getTokens("g1", "github"))
        expect(Redacted.value(provider.accessToken)).toBe(secrets.providerAccess)
        expect(provider.refreshToken && Redacted.value(provider.refreshToken)).toBe(secrets.providerRefresh)
        const session = Option.getOrThrow(yield* (yield* SessionStore).get(sessionId))
        expect(session.clientInfo).toEqual({ name: "inspector", version: "1" })
        expect((yield* (yield* SessionStore).listByApiKey(secrets.apiKey)).map((s) => s.id)).toEqual([sessionId])
        expect(Option.isSome(yield* (yield* ClientStore).authenticate("c1", secrets.clientSecret))).toBe(true)
        const keys = Option.getOrThrow(yield* (yield* SigningKeyStore).get)
        expect(keys.keys.map((k) => Redacted.value(k.privateJwk)["d"])).toEqual([secrets.privateKey])
        expect(yield* (yield* SigningKeyStore).compareAndSet(1, F.keySet(2, "next"))).toBe(true)
      }))
    }))

  it.effect("DPoP bindings (jkt) survive a restart", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
      yield* opened(path)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveGrant(F.grant("g1"))
        yield* tokens.saveAccessToken("at-bound", { ...F.accessToken("g1"), jkt })
        yield* tokens.saveRefreshToken("rt-bound", { ...F.refreshToken("g1"), jkt })
        yield* tokens.rotateRefreshToken("rt-bound", { ...F.pair(1), jkt })
      }))
      yield* opened(path)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        expect(Option.getOrThrow(yield* tokens.getAccessToken("at-bound")).jkt).toBe(jkt)
        expect(Option.getOrThrow(yield* tokens.getRefreshToken(Redacted.value(F.pair(1).refreshToken))).jkt).toBe(jkt)
        const replay = yield* tokens.rotateRefreshToken("rt-bound", F.pair("retry"))
        expect(replay._tag === "GraceReplay" && replay.pair.jkt).toBe(jkt)
      }))
    }))

  it.effect("rate-limit buckets and remembered ids survive a restart, each by its own expiry", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const signIn: RateLimitPolicy = { bucket: "signin-user", limit: 2, window: "10 minutes" }
      yield* opened(path)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const cache = yield* ReplayCache
        yield* limiter.consume(signIn, "alice")
        yield* limiter.consume(signIn, "alice")
        expect((yield* limiter.consume(signIn, "alice")).allowed).toBe(false)
        expect(yield* cache.remember("dpop", "jti-long", "1 hour")).toBe("First")
        expect(yield* cache.remember("dpop", "jti-short", "1 minute")).toBe("First")
      }))
      yield* TestClock.adjust("2 minutes")
      yield* opened(path)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const cache = yield* ReplayCache
        // 2 minutes on, alice's bucket is still empty: the next token comes at 5 minutes.
        expect(yield* limiter.check(signIn, "alice")).toEqual({
          allowed: false,
          limit: 2,
          remaining: 0,
          retryAfterMs: 3 * 60_000,
          resetAfterMs: 8 * 60_000
        })
        expect(yield* cache.remember("dpop", "jti-long", "1 hour")).toBe("Replayed")
        expect(yield* cache.remember("dpop", "jti-short", "1 minute")).toBe("First")
      }))
    }))

  it.effect("a file written before the rate limiter and replay cache existed opens, with both empty", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)(writeEverything)
      // Rewrite the file as an earlier build wrote it: the same snapshot without the two new members.
      yield* opened(path)(Effect.gen(function*() {
        const crypto = yield* Crypto
        const current = Schema.encodeSync(MemorySnapshot)(yield* decodeFile(crypto, path, readFileSync(path)))
        const { rateLimits: _rateLimits, replayIds: _replayIds, ...older } = current
        expect(Object.keys(older).sort()).toEqual(["clients", "providerTokens", "sessions", "signingKeys", "tokens"])
        writeFileSync(path, yield* encodeFile(crypto, older))
      }).pipe(Effect.provide(cryptoWith(keyA))))
      yield* opened(path)(Effect.gen(function*() {
        expect((yield* (yield* TokenStore).consumeCode(secrets.consumedCode))._tag).toBe("Replayed")
        expect(yield* (yield* ReplayCache).remember("dpop", "jti", "1 minute")).toBe("First")
        expect((yield* (yield* RateLimiter).consume({ bucket: "register", limit: 1, window: "1 hour" }, "a")).allowed).toBe(true)
      }))
    }))

  it.effect("least-recently-used order survives a restart: the same record is evicted next", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const limits = { tokens: { maxTokenRecords: 3 }, sessions: { maxSessions: 3 } }
      const sessionIds = yield* opened(path, limits)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const sessions = yield* SessionStore
        for (const n of [1, 2, 3]) yield* tokens.saveAccessToken(`at-${n}`, F.accessToken("g1"))
        yield* tokens.getAccessToken("at-1") // now the most recent
        const ids = [] as Array<string>
        for (const n of [1, 2, 3]) ids.push((yield* sessions.create({ apiKey: `key-${n}` })).session.id)
        yield* TestClock.adjust(60_000)
        yield* sessions.get(ids[0] as string) // touched: now the most recent
        return ids
      }))
      yield* opened(path, limits)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveAccessToken("at-4", F.accessToken("g1"))
        expect(Option.isSome(yield* tokens.getAccessToken("at-1"))).toBe(true)
        expect(Option.isNone(yield* tokens.getAccessToken("at-2"))).toBe(true)
        const created = yield* (yield* SessionStore).create({ apiKey: "key-4" })
        expect(created.evicted.map((e) => e.session.id)).toEqual([sessionIds[1]])
      }))
    }))

  it.effect("on reopening, each record obeys its own expiry: refresh-token holders outlive their access tokens", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const providers = yield* ProviderTokenStore
        yield* tokens.saveAccessToken("at-1", { ...F.accessToken("g1"), ttl: "1 hour" })
        yield* tokens.saveRefreshToken("rt-1", F.refreshToken("g1"))
        yield* providers.storeTokens("g1", "github", F.providerTokens(1, { accessExpiresAt: HOUR, refreshExpiresAt: 30 * DAY }))
        const { refreshToken: _r, ...accessOnly } = F.providerTokens(2, { accessExpiresAt: HOUR })
        yield* providers.storeTokens("g1", "google", accessOnly)
      }))
      yield* TestClock.adjust(2 * HOUR)
      yield* opened(path)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const providers = yield* ProviderTokenStore
        expect(Option.isNone(yield* tokens.getAccessToken("at-1"))).toBe(true)
        expect(Option.isSome(yield* tokens.getRefreshToken("rt-1"))).toBe(true)
        const kept = Option.getOrThrow(yield* providers.getTokens("g1", "github"))
        expect(kept.refreshToken && Redacted.value(kept.refreshToken)).toBe("ghr_provider_refresh_1_secret")
        expect(yield* providers.getProviderIds("g1")).toEqual(["github"])
      }))
      yield* TestClock.adjust(30 * DAY)
      yield* opened(path)(Effect.gen(function*() {
        expect(Option.isNone(yield* (yield* TokenStore).getRefreshToken("rt-1"))).toBe(true)
        expect(Option.isNone(yield* (yield* ProviderTokenStore).getTokens("g1", "github"))).toBe(true)
      }))
    }))

  it.effect("the file holds no raw bearer secret, API key, client secret, provider token or private key", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)(writeEverything)
      const bytes = readFileSync(path).toString("latin1")
      expect(bytes.startsWith(`{"format":"${FORMAT}","version":${FORMAT_VERSION},"snapshot":"`)).toBe(true)
      for (const value of Object.values(secrets)) expect(bytes).not.toContain(value)
      // Not only the secrets: nothing of the content is readable without the key.
      // (Needles of 6+ characters: a shorter one turns up in any long base64 text by chance.)
      for (const plain of ["github", "inspector", "client-1", "user-1", "kid-persisted", "app.example", "E9Melhoa2Owv"]) {
        expect(bytes).not.toContain(plain)
      }
    }))

  it.effect("every-write: a call that changed something returns once the change is in the file", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)(Effect.gen(function*() {
        const crypto = yield* Crypto
        const tokens = yield* TokenStore
        yield* tokens.saveGrant(F.grant("g-durable"))
        const onDisk = yield* decodeFile(crypto, path, readFileSync(path))
        expect(onDisk.tokens.grants.map((g) => g.id)).toEqual(["g-durable"])
        const before = (yield* (yield* FileStore.StoreFile).stats).flushes
        yield* tokens.getGrant("g-durable") // a read writes nothing
        expect((yield* (yield* FileStore.StoreFile).stats).flushes).toBe(before)
      }))
    }))

  it.effect("every-write: concurrent writes coalesce into far fewer flushes, all durable", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* Effect.all(Array.from({ length: 100 }, (_, i) => tokens.saveGrant(F.grant(`g-${i}`))), { concurrency: "unbounded" })
        const stats = yield* (yield* FileStore.StoreFile).stats
        expect(stats.pending).toBe(false)
        expect(stats.flushes).toBeLessThan(10)
        const onDisk = yield* decodeFile(yield* Crypto, path, readFileSync(path))
        expect(onDisk.tokens.grants.length).toBe(100)
      }))
    }))

  it.effect("batched: writes coalesce, flushed after maxDelay and when the scope closes", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const batched = { flush: { batched: { maxDelay: "1 second" } } } as const
      yield* opened(path, batched)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const control = yield* FileStore.StoreFile
        for (let i = 0; i < 200; i++) yield* tokens.saveGrant(F.grant(`g-${i}`))
        expect(yield* control.stats).toMatchObject({ flushes: 0, pending: true })
        expect(existsSync(path)).toBe(false)
        yield* TestClock.adjust(999)
        expect((yield* control.stats).flushes).toBe(0)
        yield* TestClock.adjust(1)
        const stats = yield* eventually(control.stats, (s) => !s.pending)
        expect(stats.flushes).toBe(1)
        const onDisk = yield* decodeFile(yield* Crypto, path, readFileSync(path))
        expect(onDisk.tokens.grants.length).toBe(200)
        // Pending at close: written by the finalizer.
        for (let i = 200; i < 300; i++) yield* tokens.saveGrant(F.grant(`g-${i}`))
        expect(yield* control.stats).toMatchObject({ flushes: 1, pending: true })
      }))
      yield* opened(path)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        for (const i of [0, 199, 200, 299]) expect(Option.isSome(yield* tokens.getGrant(`g-${i}`))).toBe(true)
      }))
    }))

  it.effect("the file, its lock and its folder are the owner's only, from creation", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const previous = process.umask(0) // a file created without an explicit mode would be 0666
      try {
        yield* opened(path)(Effect.gen(function*() {
          yield* (yield* TokenStore).saveGrant(F.grant("g1"))
          expect(statSync(lockPathOf(path)).mode & 0o777).toBe(0o600)
        }))
      } finally {
        process.umask(previous)
      }
      // The file is the renamed temporary file, never chmod-ed: its mode is the one it was created with.
      expect(statSync(path).mode & 0o777).toBe(0o600)
      expect(statSync(dirname(path)).mode & 0o777).toBe(0o700)
    }))

  it.effect("a temporary file left behind by a crash does not stop the next open", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)((Effect.flatMap(TokenStore, (tokens) => tokens.saveGrant(F.grant("g1")))))
      writeFileSync(`${path}.tmp`, "half a snapsh")
      yield* opened(path)(Effect.gen(function*() {
        expect(existsSync(`${path}.tmp`)).toBe(false)
        expect(Option.isSome(yield* (yield* TokenStore).getGrant("g1"))).toBe(true)
        yield* (yield* TokenStore).saveGrant(F.grant("g2"))
      }))
      yield* opened(path)(Effect.flatMap(TokenStore, (tokens) => tokens.getGrant("g2")).pipe(Effect.map(Option.isSome), Effect.tap((found) => expect(found).toBe(true))))
    }))

  it.effect("layerConfig reads the path from RS_TOKENS_FILE; the default is seed 000's ./data/tokens.enc", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const provider = (map: Map<string, string>) => Layer.setConfigProvider(ConfigProvider.fromMap(map))
      expect(yield* Effect.provide(pathConfig, provider(new Map()))).toBe("./data/tokens.enc")
      const layer = FileStore.layerConfig().pipe(
        Layer.provideMerge(cryptoWith(keyA)),
        Layer.provide(provider(new Map([["RS_TOKENS_FILE", path]])))
      )
      yield* Effect.provide(Effect.flatMap(TokenStore, (tokens) => tokens.saveGrant(F.grant("g1"))), layer)
      yield* Effect.flatMap(FileStore.StoreFile, (control) => Effect.sync(() => expect(control.path).toBe(path))).pipe(
        Effect.provide(layer)
      )
      expect(existsSync(path)).toBe(true)
    }))
})

describe("file backend: a file that does not open fails at startup and is left untouched", () => {
  /** A store file with one grant in it, sealed with `keyA`. */
  const validFile = Effect.gen(function*() {
    const path = freshPath("broken")
    yield* opened(path)(Effect.flatMap(TokenStore, (tokens) => tokens.saveGrant(F.grant("g1"))))
    return path
  })

  const expectUntouchedFailure = (
    path: string,
    reason: StoreError["reason"],
    description: RegExp,
    key = keyA
  ) =>
    Effect.gen(function*() {
      const before = readFileSync(path)
      const error = yield* buildError(path, key)
      expect(error.reason).toBe(reason)
      expect(error.method).toBe("FileStore.load")
      expect(error.message).toContain(path)
      expect(error.message).toMatch(description)
      for (const key of [keyA, keyB]) expect(error.message).not.toContain(key)
      expect(readFileSync(path).equals(before)).toBe(true)
      expect(existsSync(lockPathOf(path))).toBe(false)
      expect(readdirSync(dirname(path))).toEqual(["tokens.enc"])
      return error
    })

  it.effect("truncated", () =>
    Effect.gen(function*() {
      const path = yield* validFile
      const bytes = readFileSync(path)
      writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)))
      yield* expectUntouchedFailure(path, "Corrupt", /header does not parse/)
      writeFileSync(path, "")
      yield* expectUntouchedFailure(path, "Corrupt", /empty/)
    }))

  it.effect("corrupt: not a store file, or a tampered snapshot", () =>
    Effect.gen(function*() {
      const path = yield* validFile
      const bytes = readFileSync(path)
      writeFileSync(path, randomBytes(256))
      yield* expectUntouchedFailure(path, "Corrupt", /not UTF-8|header does not parse/)
      writeFileSync(path, JSON.stringify({ tokens: [] }))
      yield* expectUntouchedFailure(path, "Corrupt", /not a store file/)
      const tampered = Buffer.from(bytes)
      const at = tampered.length - 40
      tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41
      writeFileSync(path, tampered)
      yield* expectUntouchedFailure(path, "DecryptFailed", /does not open with the configured keys/)
    }))

  it.effect("sealed with another key", () =>
    Effect.gen(function*() {
      const path = yield* validFile
      yield* expectUntouchedFailure(path, "DecryptFailed", /does not open with the configured keys/, keyB)
      // With the right key it opens as it was.
      yield* opened(path)(Effect.flatMap(TokenStore, (tokens) => tokens.getGrant("g1")).pipe(
        Effect.tap((grant) => expect(Option.isSome(grant)).toBe(true))
      ))
    }))

  it.effect("an unknown format version", () =>
    Effect.gen(function*() {
      const path = yield* validFile
      const header = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>
      writeFileSync(path, `${JSON.stringify({ ...header, version: 99 })}\n`)
      const error = yield* expectUntouchedFailure(path, "Corrupt", /format version 99 is not supported/)
      expect(error.message).toContain(`reads version ${FORMAT_VERSION}`)
    }))
})

describe("file backend: one writer", () => {
  it.effect("a second layer on the same file fails, naming the holder; after release it opens", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)(Effect.gen(function*() {
        const error = yield* buildError(path)
        expect(error.reason).toBe("Conflict")
        expect(error.method).toBe("FileStore.lock")
        expect(error.message).toContain(`pid ${process.pid} on host ${hostname()}`)
        expect(error.message).toContain(lockPathOf(path))
        const holder = JSON.parse(readFileSync(lockPathOf(path), "utf8")) as unknown
        expect(holder).toEqual({ pid: process.pid, hostname: hostname() })
      }))
      expect(existsSync(lockPathOf(path))).toBe(false)
      yield* opened(path)(Effect.void)
    }))

  it.effect("a lock left by a dead process on this host is taken over, with a log line", () =>
    Effect.gen(function*() {
      const path = freshPath()
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid
      yield* opened(path)(Effect.void) // creates the folder
      writeFileSync(lockPathOf(path), JSON.stringify({ pid: dead, hostname: hostname() }))
      const logs: Array<string> = []
      const capture = Logger.make(({ message }) => void logs.push(String(message)))
      yield* opened(path)(Effect.gen(function*() {
        const holder = JSON.parse(readFileSync(lockPathOf(path), "utf8")) as unknown
        expect(holder).toEqual({ pid: process.pid, hostname: hostname() })
      })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      expect(logs.some((line) => line.includes(`pid ${dead}`) && line.includes("taking over"))).toBe(true)
    }))

  it.effect("a lock held on another host is not taken over", () =>
    Effect.gen(function*() {
      const path = freshPath()
      yield* opened(path)(Effect.void)
      writeFileSync(lockPathOf(path), JSON.stringify({ pid: 1, hostname: "other-host.example" }))
      const error = yield* buildError(path)
      expect(error.reason).toBe("Conflict")
      expect(error.message).toContain("pid 1 on host other-host.example")
    }))
})

/**
 * The crash test. A child process writes in a loop under every-write and
 * prints each write's id once the call returned; it is SIGKILLed at a random
 * moment, and the file must then open (the dead writer's lock taken over, its
 * temporary file discarded) and hold every printed write, across all rounds
 * so far. The child is `test/fixtures/fileCrashWriter.ts` (it runs as is with
 * `node --import tsx`), bundled once with esbuild: under tsx a child needs
 * ~2 s of CPU to start here (the loader hooks over the effect barrel), which
 * would make 20+ rounds take ~50 s; the bundle starts in ~0.2 s.
 */
describe("file backend: crash safety", () => {
  const ROUNDS = 20
  const fixture = new URL("fixtures/fileCrashWriter.ts", import.meta.url).pathname
  const bundle = join(root, "fileCrashWriter.mjs")

  /** Start a writer, SIGKILL it `delayMs` after it is ready; the lines it printed completely. */
  const crashRound = (path: string, key: string, prefix: string, delayMs: number) =>
    new Promise<ReadonlyArray<string>>((resolve, reject) => {
      const child: ChildProcess = spawn(process.execPath, [bundle, prefix], {
        env: { ...process.env, RS_TOKENS_FILE: path, RS_TOKENS_ENC_KEY: key },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let out = ""
      let err = ""
      let armed = false
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk
        if (!armed && /^ready$/m.test(out)) {
          armed = true
          setTimeout(() => child.kill("SIGKILL"), delayMs)
        }
      })
      child.stderr?.setEncoding("utf8").on("data", (chunk: string) => void (err += chunk))
      child.on("error", reject)
      child.on("close", (code, signal) => {
        if (signal !== "SIGKILL") return reject(new Error(`the writer exited by itself (${code}): ${err}`))
        // Complete lines only (a line cut by the kill was not printed); the child's log lines are not writes.
        const complete = out.slice(0, out.lastIndexOf("\n") + 1).split("\n")
        resolve(complete.filter((line) => /^(grant|provider):/.test(line)))
      })
    })

  it.live(`${ROUNDS} SIGKILLs at random moments: the file always loads and holds every completed write`, () =>
    Effect.gen(function*() {
      yield* Effect.promise(() =>
        build({ entryPoints: [fixture], bundle: true, platform: "node", format: "esm", outfile: bundle, logLevel: "error" })
      )
      const path = freshPath("crash")
      const key = newKey()
      const printed: Array<string> = []
      for (let round = 0; round < ROUNDS; round++) {
        printed.push(...yield* Effect.promise(() => crashRound(path, key, `r${round}`, Math.floor(Math.random() * 100))))
        if (!existsSync(path)) {
          expect(printed).toEqual([])
          continue
        }
        yield* opened(path, {}, key)(Effect.gen(function*() {
          const tokens = yield* TokenStore
          const providers = yield* ProviderTokenStore
          for (const line of printed) {
            const [kind, id] = line.split(":") as [string, string]
            const found = kind === "grant"
              ? Option.isSome(yield* tokens.getGrant(id))
              : Option.isSome(yield* providers.getTokens(id, "github"))
            expect(found, `${line} was printed before the kill but is not in the file`).toBe(true)
          }
        })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none)))
      }
      expect(printed.length).toBeGreaterThan(ROUNDS)
    }), 120_000)
})
