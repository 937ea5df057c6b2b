import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterAll, describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Cause, ConfigProvider, Effect, Exit, Layer, Option, Redacted, Tracer } from "effect"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { createInterface } from "node:readline"
import { Keys } from "../src/internal/keys.ts"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { generateKey } from "../src/layers/crypto/keyring.ts"
import { SqliteStore } from "../src/exports/sqlite.ts"
import { SWEEP_BATCH } from "../src/layers/sqlite/sweep.ts"
import { type Db, makeDb } from "../src/layers/sqlite/db.ts"
import { makeRateLimiter } from "../src/layers/sqlite/rateLimiter.ts"
import { tablesFor } from "../src/layers/sqlite/tables.ts"
import { ClientStore } from "../src/services/ClientStore.ts"
import { Crypto } from "../src/services/Crypto.ts"
import { ProviderTokenStore } from "../src/services/ProviderTokenStore.ts"
import { type RateLimitPolicy, RateLimiter } from "../src/services/RateLimiter.ts"
import { RawStorage } from "../src/services/RawStorage.ts"
import { ReplayCache } from "../src/services/ReplayCache.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { SigningKeyStore } from "../src/services/SigningKeyStore.ts"
import { StoreError } from "../src/services/StoreError.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { storeContract, type StoreOptions } from "./contract/index.ts"
import { mcpEventBusContract } from "./contract/McpEventBus.contract.ts"
import { mcpEventStoreContract } from "./contract/McpEventStore.contract.ts"
import * as F from "./contract/fixtures.ts"
import { advance } from "./contract/harness.ts"

const dir = mkdtempSync(join(tmpdir(), "mcp-sqlite-test-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
/** A fresh database file for each build. */
const freshFile = () => join(dir, `store-${++files}.db`)

const sqlite = {
  name: "sqlite",
  make: (options?: StoreOptions) =>
    SqliteStore.layer({ filename: freshFile(), ...options }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
}

storeContract(sqlite)
mcpEventStoreContract({ ...sqlite, boundsStreams: false })
mcpEventBusContract(sqlite)

/** The stores on `filename` under a given key (the same key reopens what was sealed before). */
const storesOn = (filename: string, key: Redacted.Redacted<string>, options: Omit<SqliteStore.SqliteOptions, "filename"> = {}) =>
  SqliteStore.layer({ sweepInterval: "1 day", ...options, filename }).pipe(
    Layer.provideMerge(Layer.orDie(NodeCrypto.layer({ activeKey: key })))
  )

/** Run `body` on a fresh build of `layer`, released when it ends. */
const using = <ROut, E>(layer: Layer.Layer<ROut, E>) => <A, E2>(body: Effect.Effect<A, E2, ROut>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(layer)))

/** Every value of every row of every table, read with plain better-sqlite3, and the raw bytes of the files. */
const rawContents = (filename: string): { readonly rows: string; readonly bytes: Buffer } => {
  const db = new Database(filename, { readonly: true })
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>
    const rows = tables.flatMap(({ name }) =>
      (db.prepare(`SELECT * FROM "${name}"`).all() as Array<Record<string, unknown>>).map((row) => JSON.stringify(row))
    )
    const bytes = Buffer.concat(
      [filename, `${filename}-wal`].filter((path) => existsSync(path)).map((path) => readFileSync(path))
    )
    return { rows: rows.join("\n"), bytes }
  } finally {
    db.close()
  }
}

const storeErrorOf = <A, E>(exit: Exit.Exit<A, E>): StoreError | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof StoreError ? failure.value : undefined
}

/** The policy the primitives' race fixture uses. */
const raceLimit: RateLimitPolicy = { bucket: "race", limit: 10, window: "1 hour" }

describe("sqlite backend", () => {
  it.effect("survives a restart: everything present and decryptable, expired rows gone after the first sweep", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      const options = { tokens: { refreshGraceWindow: "1 hour" } } as const
      const secrets = { clientSecret: F.secret("client"), apiKey: F.secret("api-key") }

      const sessionId = yield* using(storesOn(filename, key, options))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const providers = yield* ProviderTokenStore
        yield* tokens.saveGrant(F.grant("g1"))
        yield* tokens.saveTransaction({ ...F.transaction("tx-keep"), upstream: { state: "s", codeVerifier: Redacted.make("verifier-secret") } })
        yield* tokens.saveTransaction({ ...F.transaction("tx-short"), ttl: "1 minute" })
        yield* tokens.saveCode("code-keep", { ...F.code("g1"), ttl: "1 hour" })
        yield* tokens.saveCode("code-short", F.code("g1"))
        yield* tokens.saveAccessToken("at-keep", F.accessToken("g1"))
        yield* tokens.saveAccessToken("at-short", { ...F.accessToken("g1"), ttl: "1 minute" })
        yield* tokens.saveRefreshToken("rt-0", F.refreshToken("g1"))
        yield* tokens.rotateRefreshToken("rt-0", F.pair(1))
        yield* providers.storeTokens("g1", "github", F.providerTokens(1))
        yield* providers.storeTokens("g-short", "github", F.providerTokens(2, { refreshExpiresAt: 60_000 }))
        const { session } = yield* (yield* SessionStore).create({ apiKey: secrets.apiKey, clientInfo: { name: "c", version: "1" } })
        yield* (yield* ClientStore).register({ clientId: "c1", clientSecret: secrets.clientSecret, metadata: F.clientMetadata })
        expect(yield* (yield* SigningKeyStore).compareAndSet(undefined, F.keySet(1, "restart"))).toBe(true)
        return session.id
      }))

      yield* advance("2 minutes")

      yield* using(storesOn(filename, key, options))(Effect.gen(function*() {
        const crypto = yield* Crypto
        const tokens = yield* TokenStore
        yield* advance(0) // the sweeper's first run, at startup
        const rows = (yield* (yield* RawStorage).dump).join("\n")
        expect(rows).not.toContain("tx-short")
        expect(rows).not.toContain(Keys.code(yield* crypto.hash("code-short")))
        expect(rows).not.toContain(Keys.accessToken(yield* crypto.hash("at-short")))
        expect(rows).not.toContain("g-short")

        const transaction = Option.getOrThrow(yield* tokens.getTransaction("tx-keep"))
        expect(transaction.upstream && Redacted.value(transaction.upstream.codeVerifier)).toBe("verifier-secret")
        expect((yield* tokens.consumeCode("code-keep"))._tag).toBe("Consumed")
        expect(Option.isSome(yield* tokens.getAccessToken("at-keep"))).toBe(true)
        expect(Option.getOrThrow(yield* tokens.getRefreshToken("rt-0")).rotatedAt).toBe(0)
        const replay = yield* tokens.rotateRefreshToken("rt-0", F.pair("retry"))
        expect(replay._tag === "GraceReplay" && Redacted.value(replay.pair.refreshToken)).toBe(Redacted.value(F.pair(1).refreshToken))
        const provider = Option.getOrThrow(yield* (yield* ProviderTokenStore).getTokens("g1", "github"))
        expect(Redacted.value(provider.accessToken)).toBe("gho_provider_access_1_secret")
        const session = Option.getOrThrow(yield* (yield* SessionStore).get(sessionId))
        expect(session.clientInfo).toEqual({ name: "c", version: "1" })
        expect(Option.isSome(yield* (yield* ClientStore).authenticate("c1", secrets.clientSecret))).toBe(true)
        const keys = Option.getOrThrow(yield* (yield* SigningKeyStore).get)
        expect(keys.keys.map((k) => Redacted.value(k.privateJwk)["d"])).toEqual(["private-d-restart-secret"])
      }))

      // Another key opens nothing sealed under the first.
      const other = yield* generateKey
      const exit = yield* Effect.exit(using(storesOn(filename, other))(Effect.flatMap(TokenStore, (s) => s.getTransaction("tx-keep"))))
      expect(storeErrorOf(exit)?.reason).toBe("DecryptFailed")
    }))

  it.effect("DPoP bindings survive a restart; records written before DPoP (no jkt) still read", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveGrant(F.grant("g1"))
        yield* tokens.saveAccessToken("at-bound", { ...F.accessToken("g1"), jkt })
        yield* tokens.saveRefreshToken("rt-bound", { ...F.refreshToken("g1"), jkt })
        yield* tokens.rotateRefreshToken("rt-bound", { ...F.pair(1), jkt })
        yield* tokens.saveRefreshToken("rt-old", F.refreshToken("g1"))
      }))
      // A row as the backend wrote it before the jkt existed: the body without the member.
      const db = new Database(filename)
      const bodies = db.prepare("SELECT body FROM mcp_refresh_tokens").all() as Array<{ body: string }>
      expect(bodies.filter((row) => row.body.includes(jkt))).toHaveLength(2)
      expect(bodies.some((row) => !row.body.includes("jkt"))).toBe(true)
      db.close()
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        expect(Option.getOrThrow(yield* tokens.getAccessToken("at-bound")).jkt).toBe(jkt)
        expect(Option.getOrThrow(yield* tokens.getRefreshToken(Redacted.value(F.pair(1).refreshToken))).jkt).toBe(jkt)
        const replay = yield* tokens.rotateRefreshToken("rt-bound", F.pair("retry"))
        expect(replay._tag === "GraceReplay" && replay.pair.jkt).toBe(jkt)
        const old = Option.getOrThrow(yield* tokens.getRefreshToken("rt-old"))
        expect(old.jkt).toBeUndefined()
        expect((yield* tokens.rotateRefreshToken("rt-old", F.pair(2)))._tag).toBe("Rotated")
      }))
    }))

  it.live("two OS processes racing on one file: one winner per code, transaction and rotation; the session limit holds", () =>
    Effect.gen(function*() {
      const count = 200
      const filename = freshFile()
      const key = yield* generateKey
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveGrant(F.grant("g-rt"))
        for (let i = 0; i < count; i++) {
          yield* tokens.saveCode(`race-code-${i}`, { ...F.code(`g-${i}`), ttl: "1 hour" })
          yield* tokens.saveTransaction(F.transaction(`race-tx-${i}`))
          if (i < count / 4) yield* tokens.saveRefreshToken(`race-rt-${i}`, F.refreshToken("g-rt"))
        }
      }))

      const racers = 2
      const outcomes = yield* Effect.promise(() => race(filename, key, count, racers))
      for (const outcome of outcomes) expect(outcome.error).toBeUndefined()
      const consumed = outcomes.flatMap((o) => o.consumed ?? [])
      const taken = outcomes.flatMap((o) => o.taken ?? [])
      expect(consumed.length).toBe(count)
      expect(new Set(consumed).size).toBe(count)
      expect(taken.length).toBe(count)
      expect(new Set(taken).size).toBe(count)
      expect(outcomes.reduce((n, o) => n + (o.replayed ?? 0), 0)).toBe(count * (racers - 1))
      expect(outcomes.reduce((n, o) => n + (o.notFound ?? 0), 0)).toBe(0)
      const rotated = outcomes.flatMap((o) => o.rotated ?? [])
      expect(rotated.length).toBe(count / 4)
      expect(new Set(rotated).size).toBe(count / 4)
      expect(outcomes.reduce((n, o) => n + (o.graceReplays ?? 0), 0)).toBe((count / 4) * (racers - 1))
      expect(outcomes.reduce((n, o) => n + (o.otherRotations ?? 1), 0)).toBe(0)
      expect(outcomes.reduce((n, o) => n + (o.evicted ?? 0), 0)).toBe(SESSIONS_PER_RACER * racers - 5)

      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        expect(yield* tokens.consumeCode("race-code-7")).toEqual({ _tag: "Replayed", grantId: "g-7" })
        expect(Option.isNone(yield* tokens.getTransaction("race-tx-7"))).toBe(true)
        expect((yield* (yield* SessionStore).listByApiKey("race-api-key")).length).toBe(5)
      }))
    }), 60_000)

  it.live("two OS processes on one file: exactly 10 of 100 concurrent consumes pass, exactly 1 of 100 sightings is first", () =>
    Effect.gen(function*() {
      const rounds = 20
      const callers = 50 // per process: 100 per round in all
      const filename = freshFile()
      const key = yield* generateKey
      // Create the file and its schema first, so the racers only race on the primitives.
      yield* using(storesOn(filename, key))(Effect.flatMap(RateLimiter, (limiter) => limiter.check(raceLimit, "warm-up")))
      type Outcome = { readonly [K in "allowed" | "first" | "firstOfDistinct"]?: ReadonlyArray<number> } & {
        readonly error?: string
      }
      const outcomes = yield* Effect.promise(() =>
        // The `go` line is when round 0 starts (wall clock): both racers start every round together.
        runRacers<Outcome>("sqlite-primitives-race.ts", [filename, String(rounds), String(callers)], key, 2, String(Date.now() + 300))
      )
      for (const outcome of outcomes) expect(outcome.error).toBeUndefined()
      const perRound = (pick: (o: Outcome) => ReadonlyArray<number> | undefined) =>
        Array.from({ length: rounds }, (_, round) => outcomes.reduce((n, o) => n + (pick(o)?.[round] ?? 0), 0))
      expect(perRound((o) => o.allowed)).toEqual(Array.from({ length: rounds }, () => 10))
      expect(perRound((o) => o.first)).toEqual(Array.from({ length: rounds }, () => 1))
      // 50 ids each sighted once by each racer at about the same moment: each is first exactly once.
      expect(perRound((o) => o.firstOfDistinct)).toEqual(Array.from({ length: rounds }, () => callers))
      // Both processes really took part (each won some tokens over the rounds).
      for (const outcome of outcomes) expect((outcome.allowed ?? []).reduce((a, b) => a + b, 0)).toBeGreaterThan(0)

      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        expect((yield* (yield* RateLimiter).check(raceLimit, "race-address-7")).remaining).toBe(0)
        expect(yield* (yield* ReplayCache).remember("dpop", "race-jti-7", "1 hour")).toBe("Replayed")
      }))
    }), 120_000)

  it.effect("a database from the first release is migrated in place (rate limiter, replay cache, client expiry), its records kept", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        yield* (yield* TokenStore).saveGrant(F.grant("g-old"))
        yield* (yield* ClientStore).register({ clientId: "old-client", metadata: F.clientMetadata })
      }))
      // Turn it back into what the first release wrote: nothing of the later migrations, no record of them.
      const db = new Database(filename)
      db.exec(
        "DROP TABLE mcp_rate_limits; DROP TABLE mcp_replay_ids; DROP TABLE mcp_streams; DROP TABLE mcp_stream_events; " +
          "DROP INDEX mcp_clients_expires_at; ALTER TABLE mcp_clients DROP COLUMN expires_at; " +
          "DELETE FROM mcp_migrations WHERE migration_id >= 2"
      )
      db.close()
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        expect(Option.isSome(yield* (yield* TokenStore).getGrant("g-old"))).toBe(true)
        expect((yield* (yield* RateLimiter).consume(raceLimit, "a")).allowed).toBe(true)
        expect(yield* (yield* ReplayCache).remember("dpop", "jti", "1 minute")).toBe("First")
        const clients = yield* ClientStore
        expect(Option.isSome(yield* clients.get("old-client"))).toBe(true)
        yield* clients.register({ clientId: "https://app.example/client.json", metadata: F.clientMetadata, ttl: "1 minute" })
        expect(Option.isSome(yield* clients.get("https://app.example/client.json"))).toBe(true)
      }))
      const check = new Database(filename, { readonly: true })
      const applied = check.prepare("SELECT migration_id, name FROM mcp_migrations ORDER BY migration_id").all()
      check.close()
      expect(applied).toEqual([
        { migration_id: 1, name: "initial" },
        { migration_id: 2, name: "rate_limits_and_replay_ids" },
        { migration_id: 3, name: "mcp_streams" },
        { migration_id: 4, name: "client_expiry" }
      ])
    }))

  it.effect("the file holds no raw bearer secret, API key, client secret, provider token or private key", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      const secrets = {
        code: F.secret("code"),
        access: F.secret("access"),
        refresh: F.secret("refresh"),
        apiKey: F.secret("api-key"),
        clientSecret: F.secret("client-secret"),
        verifier: F.secret("pkce-verifier")
      }
      const hashes = yield* using(storesOn(filename, key))(Effect.gen(function*() {
        const crypto = yield* Crypto
        const tokens = yield* TokenStore
        yield* tokens.saveGrant(F.grant("g1"))
        yield* tokens.saveTransaction({ ...F.transaction("tx-1"), upstream: { state: "s", codeVerifier: Redacted.make(secrets.verifier) } })
        yield* tokens.saveCode(secrets.code, F.code("g1"))
        yield* tokens.saveAccessToken(secrets.access, F.accessToken("g1"))
        yield* tokens.saveRefreshToken(secrets.refresh, F.refreshToken("g1"))
        yield* tokens.rotateRefreshToken(secrets.refresh, F.pair("sealed"))
        yield* (yield* ProviderTokenStore).storeTokens("g1", "github", F.providerTokens("raw"))
        yield* (yield* SessionStore).create({ apiKey: secrets.apiKey })
        yield* (yield* ClientStore).register({ clientId: "c1", clientSecret: secrets.clientSecret, metadata: F.clientMetadata })
        yield* (yield* SigningKeyStore).compareAndSet(undefined, F.keySet(1, "raw"))
        return yield* Effect.forEach([secrets.code, secrets.refresh, secrets.apiKey, secrets.clientSecret], crypto.hash)
      }))
      const { bytes, rows } = rawContents(filename)
      for (const hash of hashes) expect(rows).toContain(hash)
      const forbidden = [
        ...Object.values(secrets),
        Redacted.value(F.pair("sealed").refreshToken),
        Redacted.value(F.pair("sealed").accessToken),
        "gho_provider_access_raw_secret",
        "ghr_provider_refresh_raw_secret",
        "user@example.com",
        "private-d-raw-secret"
      ]
      for (const value of forbidden) {
        expect(rows).not.toContain(value)
        expect(bytes.includes(value)).toBe(false)
      }
    }))

  it.effect("creates the folder, the file with mode 0600, and runs in WAL mode", () =>
    Effect.gen(function*() {
      const filename = join(dir, "nested", "deeper", "store.db")
      const key = yield* generateKey
      yield* using(storesOn(filename, key))(Effect.gen(function*() {
        yield* (yield* TokenStore).saveGrant(F.grant("g1"))
        expect(statSync(filename).mode & 0o777).toBe(0o600)
        for (const sidecar of [`${filename}-wal`, `${filename}-shm`]) {
          if (existsSync(sidecar)) expect(statSync(sidecar).mode & 0o777).toBe(0o600)
        }
        const db = new Database(filename, { readonly: true })
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
        db.close()
      }))
    }))

  it.effect("a file that is not a SQLite database fails the layer with a typed error and is left untouched", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const garbage = "this is not a database, just some text\n".repeat(200)
      writeFileSync(filename, garbage)
      const exit = yield* Effect.exit(using(storesOn(filename, yield* generateKey))(Effect.void))
      const error = storeErrorOf(exit)
      expect(error?.reason).toBe("Corrupt")
      expect(error?.method).toBe("SqliteStore.layer")
      expect(readFileSync(filename, "utf8")).toBe(garbage)
    }))

  it.effect("a tampered row is StoreError Corrupt, a tampered envelope DecryptFailed: never a defect", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* using(storesOn(filename, yield* generateKey))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const providers = yield* ProviderTokenStore
        yield* tokens.saveAccessToken("at-1", F.accessToken("g1"))
        yield* providers.storeTokens("g1", "github", F.providerTokens(1))
        const db = new Database(filename)
        db.exec(`UPDATE mcp_access_tokens SET body = '{"grantId":42}'`)
        db.exec(`UPDATE mcp_provider_tokens SET authorization_id = 'g2'`)
        db.close()
        expect(storeErrorOf(yield* Effect.exit(tokens.getAccessToken("at-1")))).toMatchObject({
          reason: "Corrupt",
          method: "TokenStore.getAccessToken"
        })
        expect(storeErrorOf(yield* Effect.exit(providers.getTokens("g2", "github")))?.reason).toBe("DecryptFailed")
      }))
    }))

  it.effect("a session row with a column a session cannot hold is StoreError Corrupt, never a defect or a wrong session", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* using(storesOn(filename, yield* generateKey))(Effect.gen(function*() {
        const sessions = yield* SessionStore
        const tampered: ReadonlyArray<string> = [
          "created_at = -1",
          "last_accessed_at = last_accessed_at + 0.5",
          "subject = x'01'",
          "protocol_version = x'00'",
          "client_info = '{not json'",
          "client_info = '{\"name\":1}'",
          "absolute_expires_at = 'soon'"
        ]
        for (const [i, set] of tampered.entries()) {
          // A key of its own each: a later create must not evict (and so read) an earlier tampered row.
          const { session } = yield* sessions.create({ apiKey: `api-key-${i}`, initialized: true, protocolVersion: "2025-06-18" })
          const db = new Database(filename)
          // `expires_at` stays as it was, so the row is still found live.
          db.prepare(`UPDATE mcp_sessions SET ${set} WHERE id = ?`).run(session.id)
          db.close()
          expect(storeErrorOf(yield* Effect.exit(sessions.get(session.id))), set).toMatchObject({
            reason: "Corrupt",
            method: "SessionStore.get"
          })
        }
        // An untouched row with client info and a subject decodes as it was written.
        const { session } = yield* sessions.create({
          apiKey: "api-key-untouched",
          subject: "user-1",
          initialized: false,
          clientInfo: { name: "client", version: "1.0" }
        })
        expect(yield* sessions.get(session.id)).toEqual(Option.some(session))
      }))
    }))

  it.effect("operations are spans when the application installs a tracer, and only then", () =>
    Effect.gen(function*() {
      yield* using(storesOn(freshFile(), yield* generateKey))(Effect.gen(function*() {
        const sessions = yield* SessionStore
        const tokens = yield* TokenStore
        const native = yield* Effect.tracer
        const names: Array<string> = []
        const recording = Tracer.make({
          span: (...args: Parameters<typeof native.span>) => {
            names.push(args[0])
            return native.span(...args)
          },
          context: native.context
        })
        const { session } = yield* sessions.create({ apiKey: "api-key-1", initialized: true })
        yield* tokens.saveAccessToken("at-1", F.accessToken("g1"))
        yield* tokens.saveCode("code-1", F.code("g1"))
        yield* sessions.get(session.id)
        yield* tokens.getAccessToken("at-1")
        expect(names).toEqual([])
        const traced = Effect.gen(function*() {
          expect(Option.isSome(yield* sessions.get(session.id))).toBe(true)
          expect(Option.isSome(yield* tokens.getAccessToken("at-1"))).toBe(true)
          expect(Option.isNone(yield* tokens.getAccessToken("at-unknown"))).toBe(true)
          expect((yield* tokens.consumeCode("code-1"))._tag).toBe("Consumed")
          yield* sessions.create({ apiKey: "api-key-2", initialized: false })
        }).pipe(Effect.withTracer(recording))
        yield* traced
        expect(names).toEqual([
          "SessionStore.get",
          "TokenStore.getAccessToken",
          "TokenStore.getAccessToken",
          "TokenStore.consumeCode",
          "SessionStore.create"
        ])
      }))
    }))

  it.effect("one sweep deletes 2,000 expired rows in batches and keeps the live one", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* using(storesOn(filename, yield* generateKey, { sweepInterval: "60 seconds" }))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const raw = yield* RawStorage
        yield* tokens.saveAccessToken("at-live", F.accessToken("g1"))
        for (let i = 0; i < 2_000; i++) yield* tokens.saveAccessToken(`at-${i}`, { ...F.accessToken("g1"), ttl: "30 seconds" })
        const accessRows = Effect.map(raw.dump, (rows) => rows.filter((row) => row.startsWith("access:")).length)
        expect(yield* accessRows).toBe(2_001)
        expect(SWEEP_BATCH).toBeLessThan(2_000)
        yield* advance("60 seconds")
        expect(yield* accessRows).toBe(1)
        expect(Option.isSome(yield* tokens.getAccessToken("at-live"))).toBe(true)
      }))
    }))

  it.effect("a write lock held past the busy timeout is StoreError Unavailable, and the store recovers", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      yield* using(storesOn(filename, yield* generateKey, { busyTimeout: "100 millis" }))(Effect.gen(function*() {
        const tokens = yield* TokenStore
        const holder = new Database(filename)
        holder.exec("BEGIN IMMEDIATE")
        const exit = yield* Effect.exit(tokens.saveCode("code-1", F.code("g1")))
        holder.exec("ROLLBACK")
        holder.close()
        const error = storeErrorOf(exit)
        expect(error?.reason).toBe("Unavailable")
        expect(error?.method).toBe("TokenStore.saveCode")
        expect(error?.description).toBe("SQLITE_BUSY")
        yield* tokens.saveCode("code-1", F.code("g1"))
        expect((yield* tokens.consumeCode("code-1"))._tag).toBe("Consumed")
      }))
    }))

  it.effect("table prefixes keep two store sets apart in one file; an unsafe prefix is refused", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      yield* using(storesOn(filename, key, { tablePrefix: "a_" }))(
        Effect.flatMap(TokenStore, (s) => s.saveAccessToken("at-1", F.accessToken("g1")))
      )
      const seen = yield* using(storesOn(filename, key, { tablePrefix: "b_" }))(
        Effect.flatMap(TokenStore, (s) => s.getAccessToken("at-1"))
      )
      expect(Option.isNone(seen)).toBe(true)
      const db = new Database(filename, { readonly: true })
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>)
        .map((t) => t.name)
      db.close()
      expect(tables).toContain("a_access_tokens")
      expect(tables).toContain("b_access_tokens")
      expect(tables).toContain("a_migrations")
      const exit = yield* Effect.exit(using(storesOn(freshFile(), key, { tablePrefix: "x; DROP TABLE y" }))(Effect.void))
      expect(storeErrorOf(exit)?.reason).toBe("Invalid")
    }))

  it.effect("layerConfig reads the file from SQLITE_PATH", () =>
    Effect.gen(function*() {
      const filename = join(dir, "from-config", "store.db")
      const stores = SqliteStore.layerConfig().pipe(
        Layer.provideMerge(NodeCrypto.layerEphemeral),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["SQLITE_PATH", filename]]))))
      )
      yield* using(stores)(Effect.flatMap(TokenStore, (s) => s.saveGrant(F.grant("g1"))))
      expect(existsSync(filename)).toBe(true)
    }))

  it.effect("consume: when the state keeps changing between the upsert and its read, one transaction decides", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const key = yield* generateKey
      const once: RateLimitPolicy = { bucket: "signin-user", limit: 1, window: "1 hour" }
      yield* using(storesOn(filename, key))(Effect.flatMap(RateLimiter, (limiter) => limiter.consume(once, "alice")))
      // A Db whose first three reads of a bucket see it full, as if another process refunded it each time
      // just after our upsert found it empty (and took the token back before our next upsert).
      let reads = 0
      const flaky = (db: Db): Db => ({
        ...db,
        all: (method, text, params) => {
          if (!text.startsWith("SELECT expires_at FROM mcp_rate_limits")) return db.all(method, text, params)
          reads++
          return reads <= 3 ? Effect.succeed([]) : db.all(method, text, params)
        }
      })
      const decision = yield* Effect.gen(function*() {
        const sql = yield* SqliteClient.SqliteClient
        const t = yield* tablesFor("mcp_")
        const limiter = yield* makeRateLimiter(flaky(makeDb(sql)), t)
        return yield* limiter.consume(once, "alice")
      }).pipe(
        Effect.provide(Layer.merge(SqliteClient.layer({ filename }), Layer.orDie(NodeCrypto.layer({ activeKey: key })))),
        Effect.scoped
      )
      expect(reads).toBe(4) // three optimistic rounds, then the read inside the transaction
      expect(decision).toEqual({ allowed: false, limit: 1, remaining: 0, retryAfterMs: 3_600_000, resetAfterMs: 3_600_000 })
    }))

  it.effect("layerClient runs the stores on an existing SqlClient", () =>
    Effect.gen(function*() {
      const filename = freshFile()
      const stores = SqliteStore.layerClient({ tablePrefix: "app_" }).pipe(
        Layer.provideMerge(NodeCrypto.layerEphemeral),
        Layer.provide(SqliteClient.layer({ filename }))
      )
      yield* using(stores)(Effect.gen(function*() {
        const tokens = yield* TokenStore
        yield* tokens.saveCode("code-1", F.code("g1"))
        expect((yield* tokens.consumeCode("code-1"))._tag).toBe("Consumed")
        expect((yield* tokens.consumeCode("code-1"))._tag).toBe("Replayed")
      }))
    }))
})

interface RaceOutcome {
  readonly consumed?: ReadonlyArray<number>
  readonly replayed?: number
  readonly notFound?: number
  readonly taken?: ReadonlyArray<number>
  readonly missing?: number
  readonly rotated?: ReadonlyArray<number>
  readonly graceReplays?: number
  readonly otherRotations?: number
  readonly evicted?: number
  readonly error?: string
}

/** Sessions each racer creates for one API key (as the fixture does). */
const SESSIONS_PER_RACER = 20

/** Start `racers` processes on the file, release them together, and collect what each won. */
const race = (filename: string, key: Redacted.Redacted<string>, count: number, racers: number) =>
  runRacers<RaceOutcome>("sqlite-race.ts", [filename, String(count)], key, racers)

/**
 * Start `racers` processes of a fixture (`test/fixtures/<fixture> ...args`),
 * release them together (one line, `go`, on each stdin), collect their last lines.
 */
const runRacers = async <A>(fixture: string, args: ReadonlyArray<string>, key: Redacted.Redacted<string>, racers: number, go = "go") => {
  const here = fileURLToPath(new URL(".", import.meta.url))
  const children = Array.from({ length: racers }, () =>
    spawn(process.execPath, ["--import", "tsx", join(here, "fixtures", fixture), ...args], {
      cwd: join(here, ".."),
      env: { ...process.env, RACE_KEY: Redacted.value(key) },
      stdio: ["pipe", "pipe", "inherit"]
    }))
  const outputs = children.map((child) => {
    const lines = createInterface({ input: child.stdout })
    const all: Array<string> = []
    const ready = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => {
        all.push(line)
        if (line === "ready") resolve()
      })
      child.once("exit", (code) => reject(new Error(`racer exited with ${code} before it was ready`)))
    })
    const done = new Promise<A>((resolve, reject) =>
      child.once("exit", (code) =>
        code === 0 ? resolve(JSON.parse(all[all.length - 1] ?? "{}") as A) : reject(new Error(`racer exited with ${code}`))
      )
    )
    return { ready, done }
  })
  try {
    await Promise.all(outputs.map((o) => o.ready))
    for (const child of children) child.stdin.write(`${go}\n`)
    return await Promise.all(outputs.map((o) => o.done))
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill()
  }
}
