/**
 * `rekey` as a process, on SQLite, the encrypted file and Redis: a store of
 * 10,000 records sealed under an old key; the tool (new key active, the old
 * one in the keyring) is SIGKILLed at a random moment of its run, ten times;
 * after every kill every sealed value still opens with the keyring; a SIGINT
 * stops it between batches with exit code 130. A last
 * run completes: every value is then under the new key and opens without the
 * old one, and every token, session, pending authorization and signing key
 * still works through the stores.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Layer, Option, Redacted, Scope, Stream } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { sealedRecordKey, sealedValuesOf } from "../../src/internal/storedRecords.ts"
import { keyIdOf } from "../../src/layers/crypto/envelope.ts"
import { NodeCrypto } from "../../src/exports/crypto/node.ts"
import { generateKey } from "../../src/layers/crypto/keyring.ts"
import * as FileStore from "../../src/layers/file/index.ts"
import * as RedisStore from "../../src/layers/redis/index.ts"
import * as SqliteStore from "../../src/layers/sqlite/index.ts"
import { Crypto } from "../../src/services/Crypto.ts"
import { ProviderTokenStore } from "../../src/services/ProviderTokenStore.ts"
import { StoreMaintenance } from "../../src/services/StoreMaintenance.ts"
import type { MaintainedStores } from "../contract/StoreMaintenance.contract.ts"
import { bundleCli, type CliCommand, type CliRun, runCli } from "../support/cli.ts"
import { acquireRedisServer, freshPrefix, hasRedisServer, type RedisServer } from "../support/redis.ts"
import * as F from "../contract/fixtures.ts"
import { checkSeeded, RECORDS, seedStore } from "../support/seedStore.ts"

const ROUNDS = 10

const dir = mkdtempSync(join(tmpdir(), "mcp-cli-rekey-"))
let cli: CliCommand
let redis: RedisServer | undefined
let scope: Scope.CloseableScope

beforeAll(async () => {
  cli = await bundleCli()
  scope = Effect.runSync(Scope.make())
  if (hasRedisServer) redis = await Effect.runPromise(Scope.extend(acquireRedisServer, scope))
}, 120_000)
afterAll(async () => {
  cli?.dispose()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  rmSync(dir, { recursive: true, force: true })
})

interface Backend {
  readonly name: string
  /** The store as the tool names it. */
  readonly store: () => string
  /** The stores in this process; `seeding` when written in bulk (the file then flushes in batches). */
  readonly layer: (seeding: boolean) => Layer.Layer<MaintainedStores, unknown, Crypto>
  /** Records per atomic re-seal; the kill comes up to `maxKillDelayMs` after a random batch's progress line. */
  readonly batchSize: number
  readonly maxKillDelayMs: number
  readonly seedConcurrency: number
}

const sqlitePath = join(dir, "store.db")
const filePath = join(dir, "tokens.enc")
const redisPrefix = freshPrefix()

const backends: ReadonlyArray<Backend> = [
  {
    name: "sqlite",
    store: () => `sqlite:${sqlitePath}`,
    layer: () => SqliteStore.layer({ filename: sqlitePath, sweepInterval: "1 day", tokens: { refreshGraceWindow: "1 day" } }),
    batchSize: 100,
    maxKillDelayMs: 15,
    seedConcurrency: 1
  },
  {
    name: "file",
    store: () => `file:${filePath}`,
    layer: (seeding) =>
      FileStore.layer({
        path: filePath,
        sweepInterval: "1 day",
        tokens: { refreshGraceWindow: "1 day" },
        ...(seeding ? { flush: { batched: { maxDelay: "1 second" } } } : {})
      }),
    // Each re-seal batch rewrites the whole file: fewer, larger batches.
    batchSize: 1_000,
    maxKillDelayMs: 100,
    seedConcurrency: 1
  },
  {
    name: "redis",
    store: () => `${redis?.url ?? "redis://127.0.0.1:1"}/0?prefix=${encodeURIComponent(redisPrefix)}`,
    layer: () =>
      RedisStore.layer({ url: redis?.url ?? "", keyPrefix: redisPrefix, sweepInterval: "1 day", tokens: { refreshGraceWindow: "1 day" } }),
    batchSize: 100,
    maxKillDelayMs: 15,
    seedConcurrency: 16
  }
]

/** Every sealed value of the store, opened with the keyring given: how many are under `kid`, and how many did not open. */
const census = (kid: string) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const maintenance = yield* StoreMaintenance
    const records = Chunk.toReadonlyArray(yield* Stream.runCollect(maintenance.records()))
    let underKid = 0
    let unopened = 0
    let values = 0
    for (const value of records.flatMap(sealedValuesOf)) {
      values++
      if (keyIdOf(value.envelope) === kid) underKid++
      const opened = yield* Effect.either(crypto.decrypt(value.envelope, sealedRecordKey(value.ref)))
      if (opened._tag === "Left") unopened++
    }
    const containers = yield* maintenance.containers
    return { records: records.length, values, underKid, unopened, containers }
  })

const using = <A, E>(layer: Layer.Layer<MaintainedStores, unknown, Crypto>, crypto: Layer.Layer<Crypto>, body: Effect.Effect<A, E, MaintainedStores | Crypto>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(layer.pipe(Layer.provideMerge(crypto)))))

for (const backend of backends) {
  describe.skipIf(backend.name === "redis" && !hasRedisServer)(`rekey as a process: ${backend.name}`, () => {
    it.live(`10,000 records, ${ROUNDS} SIGKILLs at random moments, resumed: all under the new key, every token valid`, () =>
      Effect.gen(function*() {
        const [oldKey, newKey, hashKey] = yield* Effect.all([generateKey, generateKey, generateKey])
        const oldCrypto = Layer.orDie(NodeCrypto.layer({ activeKey: oldKey, hashKey }))
        const keyring = Layer.orDie(NodeCrypto.layer({ activeKey: newKey, previousKeys: [oldKey], hashKey }))
        const newOnly = Layer.orDie(NodeCrypto.layer({ activeKey: newKey, hashKey }))
        const newKid = (yield* Effect.provide(Crypto, newOnly)).activeKeyId
        const oldKid = (yield* Effect.provide(Crypto, oldCrypto)).activeKeyId

        const seeded = yield* using(backend.layer(true), oldCrypto, seedStore(backend.seedConcurrency))
        const before = yield* using(backend.layer(false), oldCrypto, census(oldKid))
        expect(before.records).toBe(RECORDS)
        expect(before.underKid).toBe(before.values)
        expect(before.values).toBeGreaterThan(4_000)

        const env = {
          RS_TOKENS_ENC_KEY: Redacted.value(newKey),
          RS_TOKENS_ENC_KEYRING: Redacted.value(oldKey),
          RS_TOKENS_HASH_KEY: Redacted.value(hashKey),
          DATA_DIR: dir
        }
        // A progress line after every batch. Round r is killed a random moment after a random batch of
        // the r-th tenth of the run (every run lists every record again, skipping what is done), so the
        // kills fall all along the work instead of where an earlier round already went past.
        const args = ["rekey", "--store", backend.store(), "--batch-size", String(backend.batchSize), "--progress-interval", "0 seconds"]
        const batches = Math.ceil(RECORDS / backend.batchSize)
        const runs: Array<CliRun> = []
        const progress: Array<number> = []
        for (let round = 0; round < ROUNDS; round++) {
          const afterBatch = Math.min(batches - 1, Math.max(1, Math.floor(((round + Math.random()) * batches) / ROUNDS)))
          const delay = Math.floor(Math.random() * backend.maxKillDelayMs)
          let seen = 0
          const run = yield* Effect.promise(() =>
            runCli(cli, args, {
              env,
              onStderrLine: (line, child) => {
                if (/^rekey: [\d,]+\/[\d,]+ records/.test(line) && ++seen === afterBatch) setTimeout(() => child.kill("SIGKILL"), delay)
              }
            })
          )
          runs.push(run)
          expect(run.signal, `round ${round}: ${run.stderr}`).toBe("SIGKILL")
          const after = yield* using(backend.layer(false), keyring, census(newKid))
          expect(after.records).toBe(RECORDS)
          expect(after.unopened).toBe(0)
          progress.push(after.underKid)
        }
        // Progress only grows, and some kills landed in the middle of the work.
        for (let i = 1; i < progress.length; i++) expect(progress[i], progress.join(", ")).toBeGreaterThanOrEqual(progress[i - 1] ?? 0)
        expect(progress.filter((n) => n > 0 && n < before.values).length, progress.join(", ")).toBeGreaterThanOrEqual(ROUNDS / 2)

        // Ctrl-C (SIGINT) stops it between two batches: exit 130, everything still readable.
        let lines = 0
        const interrupted = yield* Effect.promise(() =>
          runCli(cli, args, {
            env,
            onStderrLine: (line, child) => {
              if (/^rekey: [\d,]+\/[\d,]+ records/.test(line) && ++lines === 2) child.kill("SIGINT")
            }
          })
        )
        runs.push(interrupted)
        expect(interrupted.code, interrupted.stderr).toBe(130)
        expect((yield* using(backend.layer(false), keyring, census(newKid))).unopened).toBe(0)

        const last = yield* Effect.promise(() => runCli(cli, args, { env }))
        runs.push(last)
        expect(last.code, last.stderr).toBe(0)
        expect(last.stdout).toContain(`every sealed value is under key ${newKid}`)

        // Without the old key: everything under the new one, everything opens, every token works.
        const final = yield* using(backend.layer(false), newOnly, census(newKid))
        expect(final).toMatchObject({ records: RECORDS, unopened: 0, underKid: before.values, values: before.values })
        for (const container of final.containers) expect(container.keyId).toBe(newKid)
        // (Sessions are touched on read: the bulk layer, so the file is not rewritten per session.)
        const checked = yield* using(backend.layer(true), newOnly, checkSeeded(seeded))
        expect(checked).toEqual({ failed: 0, examples: [] })

        // Nothing secret in anything the tool printed.
        const printed = runs.map((run) => run.stdout + run.stderr).join("\n")
        for (const key of [oldKey, newKey, hashKey]) expect(printed).not.toContain(Redacted.value(key))
        console.info(`${backend.name}: sealed values under the new key after each kill: ${progress.join(", ")} (of ${before.values})`)
      }), { timeout: 600_000 })
  })
}

/**
 * Safe while servers serve: a server midway through a rolling rotation (the
 * new key already in its keyring, the old one still active) rewrites every
 * provider token while the tool runs. No write is lost (a re-seal never puts back the
 * value it read over a newer one); what the server wrote under the old key
 * after the tool passed is re-sealed by running the tool again.
 */
for (const name of ["sqlite", "redis"] as const) {
  describe.skipIf(name === "redis" && !hasRedisServer)(`rekey as a process while a server writes: ${name}`, () => {
    it.live("no write is lost; a further run re-seals what the server wrote under the old key", () =>
      Effect.gen(function*() {
        const COUNT = 3_000
        const [oldKey, newKey, hashKey] = yield* Effect.all([generateKey, generateKey, generateKey])
        const oldCrypto = Layer.orDie(NodeCrypto.layer({ activeKey: oldKey, hashKey }))
        const keyring = Layer.orDie(NodeCrypto.layer({ activeKey: newKey, previousKeys: [oldKey], hashKey }))
        const serverKeys = Layer.orDie(NodeCrypto.layer({ activeKey: oldKey, previousKeys: [newKey], hashKey }))
        const newKid = (yield* Effect.provide(Crypto, keyring)).activeKeyId
        const filename = join(dir, "busy.db")
        const prefix = freshPrefix()
        const layer: Layer.Layer<MaintainedStores, unknown, Crypto> = name === "sqlite"
          ? SqliteStore.layer({ filename, sweepInterval: "1 day" })
          : RedisStore.layer({ url: redis?.url ?? "", keyPrefix: prefix, sweepInterval: "1 day" })
        const store = name === "sqlite" ? `sqlite:${filename}` : `${redis?.url ?? ""}/0?prefix=${encodeURIComponent(prefix)}`
        const ids = Array.from({ length: COUNT }, (_, i) => `busy-${i}`)
        yield* using(layer, oldCrypto, Effect.flatMap(ProviderTokenStore, (providers) =>
          Effect.forEach(ids, (id) => providers.storeTokens(id, "github", F.providerTokens(`v1-${id}`)), { concurrency: 8, discard: true })))

        const env = {
          RS_TOKENS_ENC_KEY: Redacted.value(newKey),
          RS_TOKENS_ENC_KEYRING: Redacted.value(oldKey),
          RS_TOKENS_HASH_KEY: Redacted.value(hashKey),
          DATA_DIR: dir
        }
        const args = ["rekey", "--store", store, "--batch-size", "50"]
        let started: () => void = () => undefined
        const begun = new Promise<void>((resolve) => (started = resolve))
        const tool = runCli(cli, args, { env, onStdoutLine: (line) => line.startsWith("rekey: ") && started() })
        // The "server": every value rewritten once, in a shuffled order, while the tool runs.
        const order = [...ids].sort(() => Math.random() - 0.5)
        yield* Effect.promise(() => begun)
        yield* using(layer, serverKeys, Effect.flatMap(ProviderTokenStore, (providers) =>
          Effect.forEach(order, (id) => providers.storeTokens(id, "github", F.providerTokens(`v2-${id}`)), { concurrency: 4, discard: true })))
        const first = yield* Effect.promise(() => tool)
        expect(first.code, first.stderr).toBe(0)

        const read = using(layer, keyring, Effect.flatMap(ProviderTokenStore, (providers) =>
          Effect.forEach(ids, (id) => Effect.map(providers.getTokens(id, "github"), (t) => Option.map(t, (v) => Redacted.value(v.accessToken))))))
        const values = yield* read
        expect(values.filter((v, i) => Option.getOrUndefined(v) !== `gho_provider_access_v2-${ids[i]}_secret`)).toEqual([])

        const second = yield* Effect.promise(() => runCli(cli, args, { env }))
        expect(second.code, second.stderr).toBe(0)
        const after = yield* using(layer, keyring, census(newKid))
        expect(after).toMatchObject({ values: COUNT, underKid: COUNT, unopened: 0 })
        expect((yield* read).every((v, i) => Option.getOrUndefined(v) === `gho_provider_access_v2-${ids[i]}_secret`)).toBe(true)
        console.info(`${name}: first run: ${first.stdout.split("\n").filter((l) => l.startsWith("re-sealed")).join(" ")}`)
      }), { timeout: 300_000 })
  })
}
