/**
 * The file backend's hot writes, called the way a server calls them: one
 * `ManagedRuntime` over `FileStore.layer()` + `NodeCrypto`, one
 * `runtime.runPromise` per operation, under both flush policies.
 *
 * The raw baseline is what any crash-safe single-file store must do per
 * write, with nothing of ours: write the same bytes our store last wrote to
 * a temporary file in the same folder, fsync it, rename it over the target,
 * fsync the folder (`fs/promises`, as ours). So under every-write the ratio
 * is the cost of our work around the disk (the store operation, the snapshot,
 * `JSON.stringify`, AES-256-GCM over the whole snapshot, Effect): the overhead
 * table. The coalesced (16 writers sharing flushes) and batched (one flush
 * per 100 ms) rows measure a flush policy against one fsync per write: they
 * show what the policy saves, not what our code costs, so they get a table of
 * their own and no aim.
 *
 * The stores are bounded (10 or 1,000 access-token records and as many
 * sessions, filled before measuring), so the file keeps its size while a
 * case runs.
 */
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import { FileStore } from "../src/exports/file.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"
import { accessTokenInput, codeInput } from "./fixtures.ts"

const RECORDS = 1_000
const SMALL = 10
const options: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 200 }



/** The raw baseline: temp file, fsync, rename, fsync the folder. */
const rawReplace = async (path: string, data: Buffer, temp = `${path}.tmp`): Promise<void> => {
  const handle = await fs.open(temp, "w", 0o600)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await fs.rename(temp, path)
  const directory = await fs.open(dirname(path), "r")
  try {
    await directory.sync()
  } finally {
    await directory.close()
  }
}

interface Opened {
  readonly runtime: ManagedRuntime.ManagedRuntime<TokenStore | SessionStore | FileStore.StoreFile, unknown>
  readonly path: string
}

/** A store bounded at `records` access tokens and `records` sessions, filled to its bounds. */
const open = async (folder: string, name: string, flush: FileStore.FlushPolicy, records: number): Promise<Opened> => {
  const path = join(folder, name, "tokens.enc")
  const layer = FileStore.layer({
    path,
    flush,
    tokens: { maxTokenRecords: records },
    sessions: { maxSessions: records }
  }).pipe(Layer.provideMerge(NodeCrypto.layer({ activeKey: Redacted.make(randomBytes(32).toString("base64url")) })))
  const runtime = ManagedRuntime.make(layer)
  await runtime.runPromise(Effect.gen(function*() {
    const tokens = yield* TokenStore
    const sessions = yield* SessionStore
    for (let i = 0; i < records; i++) {
      yield* tokens.saveAccessToken(`prefill-${i}-${"t".repeat(32)}`, accessTokenInput(i))
      yield* sessions.create({ apiKey: `api-key-${i}`, initialized: true, protocolVersion: "2025-06-18" })
    }
    yield* Effect.flatMap(FileStore.StoreFile, (control) => control.flush)
  }))
  return { runtime: runtime as Opened["runtime"], path }
}

const saveAccessToken = (store: Opened, prefix: string) => (i: number) =>
  store.runtime.runPromise(Effect.flatMap(TokenStore, (tokens) =>
    tokens.saveAccessToken(`${prefix}-${i}-${"a".repeat(32)}`, accessTokenInput(i))))

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`

const run = async (): Promise<string> => {
  const folder = mkdtempSync(join(tmpdir(), "bench-file-"))
  const opened: Array<Opened> = []
  try {
    const small = await open(folder, "small", "every-write", SMALL)
    const full = await open(folder, "full", "every-write", RECORDS)
    const batched = await open(folder, "batched", { batched: { maxDelay: "100 millis" } }, RECORDS)
    opened.push(small, full, batched)

    const saveBatched = saveAccessToken(batched, "batched")
    let batchedOps = 0

    const rawPath = join(folder, "raw", "tokens.enc")
    await fs.mkdir(dirname(rawPath), { recursive: true })
    const smallBytes = readFileSync(small.path)
    const fullBytes = readFileSync(full.path)

    const overhead: Array<Case> = [
      {
        name: `every-write: TokenStore.saveAccessToken, ${SMALL} tokens + ${SMALL} sessions (${kib(smallBytes.length)})`,
        ours: saveAccessToken(small, "small"),
        baseline: () => rawReplace(rawPath, smallBytes)
      },
      {
        name: `every-write: TokenStore.saveAccessToken, ${RECORDS} tokens + ${RECORDS} sessions (${kib(fullBytes.length)})`,
        ours: saveAccessToken(full, "full"),
        baseline: () => rawReplace(rawPath, fullBytes)
      },
      {
        name: "every-write: TokenStore.saveCode + consumeCode (2 writes vs 2)",
        ours: async (i) => {
          const code = `code-${i}-Jx1uQeVh2hU0pQnSx7gkY3tAc9b`
          await full.runtime.runPromise(Effect.flatMap(TokenStore, (tokens) => tokens.saveCode(code, codeInput)))
          return full.runtime.runPromise(Effect.flatMap(TokenStore, (tokens) => tokens.consumeCode(code)))
        },
        baseline: async () => {
          await rawReplace(rawPath, fullBytes)
          await rawReplace(rawPath, fullBytes)
        }
      },
      {
        name: "every-write: SessionStore.create at capacity",
        ours: (i) =>
          full.runtime.runPromise(Effect.flatMap(SessionStore, (sessions) => sessions.create({ apiKey: `new-key-${i}` }))),
        baseline: () => rawReplace(rawPath, fullBytes)
      }
    ]
    const policy: Array<Case> = [
      {
        name: "every-write, 16 writers coalesced: TokenStore.saveAccessToken",
        concurrency: 16,
        ours: saveAccessToken(full, "concurrent"),
        baseline: (i) => rawReplace(rawPath, fullBytes, `${rawPath}.${i}.tmp`)
      },
      {
        name: "batched (100 ms): TokenStore.saveAccessToken",
        ours: (i) => {
          batchedOps++
          return saveBatched(i)
        },
        baseline: () => rawReplace(rawPath, fullBytes)
      }
    ]

    const overheadRows = await runCases(overhead, options)
    const policyRows = await runCases(policy, options)
    const stats = await batched.runtime.runPromise(Effect.flatMap(FileStore.StoreFile, (control) => control.stats))
    return [
      formatTable(
        "File store overhead: one ManagedRuntime, runPromise per op, vs temp file + fsync + rename + fsync folder of the same bytes",
        overheadRows,
        options
      ),
      "",
      formatTable(
        "File store flush policy (not overhead): coalesced or batched flushes vs one crash-safe replace per write",
        policyRows,
        options
      ),
      "",
      "Ours = the store operation, then per flush: snapshot + JSON.stringify + one AES-256-GCM seal of the whole " +
      "state + the same disk sequence (the whole file is rewritten on every flush). " +
      `Baseline: the bytes our store last wrote (${kib(smallBytes.length)} / ${kib(fullBytes.length)}), written crash-safely ` +
      "with fs/promises; under concurrency each baseline write has its own temp file (no coalescing). " +
      `Batched: ${batchedOps.toLocaleString("en-US")} writes in the batched case (warmup, calibration, rounds) ` +
      `made ${stats.flushes} flushes.`
    ].join("\n")
  } finally {
    for (const store of opened) await store.runtime.dispose()
    rmSync(folder, { recursive: true, force: true })
  }
}

register({ name: "file", run })
