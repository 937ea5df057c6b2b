/**
 * The tool's commands as a user runs them (a process, its output and exit
 * code): keygen, stats, grants, sessions, rekey --dry-run, every --help, and
 * the errors: bad store names, missing files and keys, a wrong key, an
 * unreachable Redis, bad option values. Against a real SQLite file and a
 * real encrypted file seeded through the stores.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import { decodeKey, generateKey } from "../../src/layers/crypto/keyring.ts"
import * as FileStore from "../../src/layers/file/index.ts"
import * as SqliteStore from "../../src/layers/sqlite/index.ts"
import { Crypto } from "../../src/services/Crypto.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { SessionStore } from "../../src/services/SessionStore.ts"
import { TokenStore } from "../../src/services/TokenStore.ts"
import * as F from "../contract/fixtures.ts"
import { bundleCli, type CliCommand, runCli, sourceCli } from "../support/cli.ts"
import { freePort } from "../support/redis.ts"

const dir = mkdtempSync(join(tmpdir(), "mcp-cli-commands-"))
const BOB_KEY = "bob-api-key-0123456789"
let cli: CliCommand
let key: Redacted.Redacted<string>
let otherKey: Redacted.Redacted<string>
let bobHashPrefix: string
let counter = 0

const sqliteOf = (filename: string) =>
  SqliteStore.layer({ filename, sweepInterval: "1 day" }).pipe(Layer.provideMerge(Layer.orDie(NodeCrypto.layer({ activeKey: key }))))

/** A fresh SQLite store: grants of alice (one with a refresh token and provider tokens) and bob, sessions of both. */
const seededSqlite = async (): Promise<string> => {
  const filename = join(dir, `store-${++counter}.db`)
  await Effect.runPromise(Effect.scoped(Effect.provide(
    Effect.gen(function*() {
      const tokens = yield* TokenStore
      const sessions = yield* SessionStore
      yield* tokens.saveGrant({ ...F.grant("g-a1"), subject: "alice" })
      yield* tokens.saveGrant({ ...F.grant("g-a2"), subject: "alice" })
      yield* tokens.saveGrant({ ...F.grant("g-b1"), subject: "bob" })
      yield* tokens.saveRefreshToken(F.secret("alice-refresh"), { ...F.refreshToken("g-a1"), subject: "alice" })
      yield* Effect.flatMap(ProviderTokenStore, (p) => p.storeTokens("g-a1", "github", F.providerTokens("alice")))
      for (let i = 0; i < 2; i++) yield* sessions.create({ apiKey: "sub:alice", subject: "alice" })
      for (let i = 0; i < 3; i++) yield* sessions.create({ apiKey: BOB_KEY })
      bobHashPrefix = (yield* Effect.flatMap(Crypto, (c) => c.hash(BOB_KEY))).slice(0, 12)
    }),
    sqliteOf(filename)
  )))
  return filename
}

const on = <A>(filename: string, body: Effect.Effect<A, unknown, TokenStore | SessionStore | ProviderTokenStore>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(body, sqliteOf(filename))))

const envWith = (activeKey: Redacted.Redacted<string>) => ({ RS_TOKENS_ENC_KEY: Redacted.value(activeKey), DATA_DIR: dir })
const run = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = envWith(key)) => runCli(cli, args, { env })

beforeAll(async () => {
  cli = await bundleCli()
  key = Effect.runSync(generateKey)
  otherKey = Effect.runSync(generateKey)
}, 120_000)
afterAll(() => {
  cli?.dispose()
  rmSync(dir, { recursive: true, force: true })
})

describe("the command-line tool", () => {
  it("--help for every command, exit 0; migrate's says the hash key must stay the same", { timeout: 120_000 }, async () => {
    const commands = [[], ["keygen"], ["rekey"], ["migrate"], ["stats"], ["grants"], ["grants", "list"], ["grants", "revoke"], ["sessions"], [
      "sessions",
      "list"
    ], ["sessions", "revoke"]]
    for (const command of commands) {
      const result = await run([...command, "--help"])
      expect(result.code, command.join(" ")).toBe(0)
      expect(result.stdout).toContain("DESCRIPTION")
    }
    const migrate = await run(["migrate", "--help"])
    expect(migrate.stdout).toContain("RS_TOKENS_HASH_KEY")
    expect(migrate.stdout).toContain("--force")
    // The source itself runs too (as a user of the repository starts it).
    const source = await runCli(sourceCli, ["--version"], { env: envWith(key) })
    expect(source.code, source.stderr).toBe(0)
    expect(source.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it("keygen prints a new key once, or writes it with mode 0600 and never over an existing file", { timeout: 60_000 }, async () => {
    const printed = await run(["keygen"])
    expect(printed.code).toBe(0)
    const value = printed.stdout.trim()
    expect(Either.isRight(decodeKey("key", value))).toBe(true)
    expect(printed.stderr).toMatch(/key id [A-Za-z0-9_-]{8}/)
    expect(printed.stderr).not.toContain(value)
    expect((await run(["keygen"])).stdout.trim()).not.toBe(value)

    const path = join(dir, "new.key")
    const written = await run(["keygen", "--out", path])
    expect(written.code, written.stderr).toBe(0)
    expect(written.stdout).not.toContain(readFileSync(path, "utf8").trim())
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(Either.isRight(decodeKey("key", readFileSync(path, "utf8").trim()))).toBe(true)
    const before = readFileSync(path, "utf8")
    const again = await run(["keygen", "--out", path])
    expect(again.code).toBe(2)
    expect(again.stderr).toContain("already exists: refusing to overwrite")
    expect(readFileSync(path, "utf8")).toBe(before)
  })

  it("stats: counts, sessions per key as hash prefixes, sealed values per key id, size; never the key", { timeout: 60_000 }, async () => {
    const filename = await seededSqlite()
    const result = await run(["stats", "--store", `sqlite:${filename}`, "--top", "5"])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/grants\s+3\s+0/)
    expect(result.stdout).toMatch(/sessions\s+5\s+5/)
    expect(result.stdout).toMatch(/refresh tokens\s+1\s+0/)
    expect(result.stdout).toMatch(/provider tokens\s+1/)
    expect(result.stdout).toContain(`${bobHashPrefix}…  3`)
    expect(result.stdout).toMatch(/\(active\)/)
    expect(result.stdout).toMatch(/store size: \d/)
    expect(result.stdout + result.stderr).not.toContain(BOB_KEY)
    expect(result.stdout + result.stderr).not.toContain(Redacted.value(key))
  })

  it("grants list and revoke, by id and by subject", { timeout: 60_000 }, async () => {
    const filename = await seededSqlite()
    const store = `sqlite:${filename}`
    const listed = await run(["grants", "list", "--store", store, "--subject", "alice"])
    expect(listed.code, listed.stderr).toBe(0)
    const rows = listed.stdout.trim().split("\n")
    expect(rows[0]).toMatch(/^GRANT\s+CLIENT\s+SCOPES/)
    expect(rows.slice(1).map((row) => row.split(/\s+/)[0])).toEqual(["g-a1", "g-a2"])
    expect(rows[1]).toMatch(/\s1\s+0\s+github$/)

    const revoked = await run(["grants", "revoke", "--store", store, "g-a1"])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.stdout).toContain("revoked grant g-a1")
    const left = await on(filename, Effect.gen(function*() {
      const tokens = yield* TokenStore
      return {
        grant: Option.isSome(yield* tokens.getGrant("g-a1")),
        refresh: Option.isSome(yield* tokens.getRefreshToken(F.secret("alice-refresh"))),
        provider: Option.isSome(yield* Effect.flatMap(ProviderTokenStore, (p) => p.getTokens("g-a1", "github"))),
        other: Option.isSome(yield* tokens.getGrant("g-a2"))
      }
    }))
    expect(left).toEqual({ grant: false, refresh: false, provider: false, other: true })

    const missing = await run(["grants", "revoke", "--store", store, "g-a1"])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("no grant g-a1")
    const bySubject = await run(["grants", "revoke", "--store", store, "--subject", "bob"])
    expect(bySubject.stdout).toContain("1 grant(s) revoked")
    expect((await run(["grants", "list", "--store", store, "--subject", "bob"])).stdout).toContain("no live grants for bob")
    const both = await run(["grants", "revoke", "--store", store, "--subject", "alice", "g-a2"])
    expect(both.code).toBe(2)
  })

  it("sessions list and revoke by user, by key, by key-hash prefix and by id", { timeout: 60_000 }, async () => {
    const filename = await seededSqlite()
    const store = `sqlite:${filename}`
    const ofAlice = await run(["sessions", "list", "--store", store, "--subject", "alice"])
    expect(ofAlice.code, ofAlice.stderr).toBe(0)
    expect(ofAlice.stdout.trim().split("\n")).toHaveLength(3)
    const byKey = await run(["sessions", "list", "--store", store, "--key", BOB_KEY])
    expect(byKey.stdout.trim().split("\n")).toHaveLength(4)
    expect(byKey.stdout).not.toContain(BOB_KEY)
    const fromStdin = await runCli(cli, ["sessions", "list", "--store", store, "--key", "-"], { env: envWith(key), stdin: `${BOB_KEY}\n` })
    expect(fromStdin.stdout).toBe(byKey.stdout)
    const byHash = await run(["sessions", "list", "--store", store, "--key-hash", bobHashPrefix.slice(0, 8)])
    expect(byHash.stdout).toBe(byKey.stdout)

    const id = ofAlice.stdout.trim().split("\n")[1]?.split(/\s+/)[0] ?? ""
    const one = await run(["sessions", "revoke", "--store", store, id])
    expect(one.stdout).toContain(`ended session ${id}`)
    const all = await run(["sessions", "revoke", "--store", store, "--key-hash", bobHashPrefix])
    expect(all.stdout).toContain("3 session(s) ended")
    const remaining = await on(filename, Effect.flatMap(SessionStore, (s) =>
      Effect.all([s.listByApiKey("sub:alice"), s.listByApiKey(BOB_KEY)])))
    expect(remaining.map((list) => list.length)).toEqual([1, 0])
    const none = await run(["sessions", "list", "--store", store])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("one of --key, --subject or --key-hash")
  })

  it("rekey --dry-run counts and checks without writing", { timeout: 60_000 }, async () => {
    const filename = await seededSqlite()
    const env = { ...envWith(otherKey), RS_TOKENS_ENC_KEYRING: Redacted.value(key) }
    const dry = await run(["rekey", "--store", `sqlite:${filename}`, "--dry-run"], env)
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain("would re-seal: 1;")
    expect(dry.stdout).toContain("dry run: nothing written")
    // Still under the old key: a second dry run finds the same.
    expect((await run(["rekey", "--store", `sqlite:${filename}`, "--dry-run"], env)).stdout).toContain("would re-seal: 1;")
    const real = await run(["rekey", "--store", `sqlite:${filename}`], env)
    expect(real.stdout).toContain("re-sealed: 1;")
  })

  it("migrate SQLite -> file -> SQLite with every kind of record: pending authorizations keep their verifier, codes their consumption", { timeout: 120_000 }, async () => {
    const filename = await seededSqlite()
    await on(filename, Effect.gen(function*() {
      const tokens = yield* TokenStore
      yield* tokens.saveTransaction({ ...F.transaction("tx-m"), upstream: { state: "s", codeVerifier: Redacted.make("the-verifier-0123456789") } })
      yield* tokens.saveCode(F.secret("used"), F.code("g-a1"))
      yield* tokens.consumeCode(F.secret("used"))
      yield* tokens.saveCode(F.secret("fresh"), F.code("g-a1"))
    }))
    const file = join(dir, `migrated-${++counter}.enc`)
    const back = join(dir, `migrated-${++counter}.db`)
    const there = await run(["migrate", "--from", `sqlite:${filename}`, "--to", `file:${file}`])
    expect(there.code, there.stderr).toBe(0)
    expect(there.stdout).toMatch(/pending authorizations\s+1\s+1/)
    const again = await run(["migrate", "--from", `file:${file}`, "--to", `sqlite:${back}`])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/authorization codes\s+2\s+2/)
    const found = await on(back, Effect.gen(function*() {
      const tokens = yield* TokenStore
      const t = yield* tokens.takeTransaction("tx-m")
      return {
        verifier: Option.isSome(t) && t.value.upstream !== undefined ? Redacted.value(t.value.upstream.codeVerifier) : undefined,
        used: (yield* tokens.consumeCode(F.secret("used")))._tag,
        fresh: (yield* tokens.consumeCode(F.secret("fresh")))._tag,
        sessions: (yield* Effect.flatMap(SessionStore, (s) => s.listByApiKey(BOB_KEY))).length
      }
    }))
    expect(found).toEqual({ verifier: "the-verifier-0123456789", used: "Replayed", fresh: "Consumed", sessions: 3 })
  })

  it("migrate checks the target: a file store keeps at most 1,000 pending authorizations, so 1,200 fail the check (exit 1)", { timeout: 120_000 }, async () => {
    const filename = join(dir, `many-${++counter}.db`)
    await on(filename, Effect.flatMap(TokenStore, (tokens) =>
      Effect.forEach(Array.from({ length: 1_200 }, (_, i) => i), (i) => tokens.saveTransaction(F.transaction(`tx-${i}`)), { discard: true })))
    const result = await run(["migrate", "--from", `sqlite:${filename}`, "--to", `file:${join(dir, `many-${counter}.enc`)}`])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("verification failed: Transaction: copied 1200, the target holds 1000")
  })

  it("bad input: unknown or unusable store names, missing files, missing keys, bad values (exit 2)", { timeout: 120_000 }, async () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string, Record<string, string>?]> = [
      [["stats", "--store", "postgres://db/x"], "unknown store scheme \"postgres:\""],
      [["stats", "--store", "./data/store.db"], "unknown store name"],
      [["stats", "--store", "memory:"], "a memory store lives inside its server's process"],
      [["stats", "--store", "sqlite:"], "sqlite: names no file"],
      [["stats", "--store", `sqlite:${join(dir, "nope.db")}`], "no such file"],
      [["stats", "--store", "redis://127.0.0.1:6379/db"], "must be a database number"],
      [["rekey", "--store", `sqlite:${join(dir, "nope.db")}`, "--batch-size", "0"], "--batch-size must be a positive integer"],
      [["stats", "--store", `sqlite:${join(dir, "nope.db")}`, "--expiring-within", "soon"], "--expiring-within must be a duration"],
      [["stats", "--store", `sqlite:${join(dir, "x.db")}`], "no encryption key", { DATA_DIR: join(dir, "empty") }],
      [["stats"], "STORE=memory", { ...envWith(key), STORE: "memory" }],
      [["stats"], "invalid configuration", { ...envWith(key), STORE: "mongo" }]
    ]
    for (const [args, message, env] of cases) {
      const result = await run(args, env ?? envWith(key))
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2)
      expect(result.stderr, args.join(" ")).toContain(message)
    }
    const unknown = await run(["frobnicate"])
    expect(unknown.code).toBe(2)
    const missingValue = await run(["migrate", "--from", "sqlite:a.db"])
    expect(missingValue.code).toBe(2)
  })

  it("failures of the work (exit 1): a wrong key, an unreachable Redis; no secret in the message", { timeout: 120_000 }, async () => {
    const filename = await seededSqlite()
    const wrong = await run(["rekey", "--store", `sqlite:${filename}`], envWith(otherKey))
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain("no configured key opens these records")
    expect(wrong.stderr).toMatch(/sealed by key id [A-Za-z0-9_-]{8}/)

    const path = join(dir, `tokens-${++counter}.enc`)
    await Effect.runPromise(Effect.scoped(Effect.provide(
      Effect.flatMap(TokenStore, (t) => t.saveGrant(F.grant("g-file"))),
      FileStore.layer({ path }).pipe(Layer.provideMerge(Layer.orDie(NodeCrypto.layer({ activeKey: key }))))
    )))
    const fileWrong = await run(["stats", "--store", `file:${path}`], envWith(otherKey))
    expect(fileWrong.code).toBe(1)
    expect(fileWrong.stderr).toContain("no configured key opens these records")

    const port = await freePort()
    const down = await run(["stats", "--store", `redis://user:hunter2-password@127.0.0.1:${port}/3`])
    expect(down.code).toBe(1)
    expect(down.stderr).toContain(`cannot reach redis 127.0.0.1:${port}/3`)
    expect(down.stderr).not.toContain("hunter2")
    const hopeless = await run(["stats"], { ...envWith(key), STORE: "redis", REDIS_URL: `redis://:hunter2@127.0.0.1:${port}` })
    expect(hopeless.code).toBe(1)
    expect(hopeless.stderr).not.toContain("hunter2")

    // The key file in DATA_DIR stands in for RS_TOKENS_ENC_KEY, as for the server.
    const keyDir = mkdtempSync(join(dir, "keyfile-"))
    writeFileSync(join(keyDir, "encryption.key"), `${Redacted.value(key)}\n`, { mode: 0o600 })
    const fromFile = await run(["stats", "--store", `sqlite:${filename}`], { DATA_DIR: keyDir })
    expect(fromFile.code, fromFile.stderr).toBe(0)
  })
})
