/**
 * Migration: copy every live record from one backend to another, as stored.
 *
 * Bearer secrets exist only as lookup hashes, so records cannot be re-issued:
 * they are copied with their hashes, and the servers on the target must use
 * the same lookup-hash key (`RS_TOKENS_HASH_KEY`, or the same
 * `RS_TOKENS_ENC_KEY` it derives from) or no code, token, API key or client
 * secret matches again. Sealed values are bound to record keys that are the
 * same on every backend, so they are copied unchanged (and open on the
 * target with the same keyring); pending authorizations, kept open inside the
 * file backend's sealed snapshot, are sealed or opened at that boundary.
 *
 * After the copy, the target is read back: its counts must match what was
 * copied (less what expired since), every sealed value must open with the
 * keyring, and a sample of records must be there exactly as in the source.
 */
import { Chunk, Clock, Effect, Stream } from "effect"
import { emptyCounts, expiresAtOf, recordKeyOf, sealedRecordKey, sealedValuesOf, totalOf } from "../internal/storedRecords.ts"
import { RECORD_KINDS, type RecordKind, type StoredRecord } from "../schema/storedRecord.ts"
import type { Crypto } from "../services/Crypto.ts"
import type { StoreMaintenance } from "../services/StoreMaintenance.ts"
import type { StoreError } from "../services/StoreError.ts"
import { KeyMismatch, TargetNotEmpty, VerificationFailed } from "./errors.ts"
import { formatCount, type Progress } from "./progress.ts"
import { keyIdOf } from "../layers/crypto/envelope.ts"

export interface MigrateOptions {
  /** Write into a target that already holds records (same keys are replaced). */
  readonly force: boolean
  /** Records per page read and per import batch. */
  readonly batchSize: number
  /** Records compared one by one after the copy (default 200). */
  readonly sampleSize?: number
  readonly progress: (label: string, total: number) => Effect.Effect<Progress>
}

export interface MigrateReport {
  /** Records copied, by kind. */
  readonly copied: { readonly [K in RecordKind]: number }
  /** Records found on the target afterwards, by kind. */
  readonly found: { readonly [K in RecordKind]: number }
  /** Records compared one by one. */
  readonly sampled: number
  /** Sealed values on the target, every one opened. */
  readonly sealedChecked: number
}

/** Records equal as stored; envelopes of pending authorizations compared by content (memory seals them when listed). */
const sameRecord = (crypto: Crypto.Service, a: StoredRecord, b: StoredRecord): Effect.Effect<boolean, StoreError> =>
  a._tag === "Transaction" && b._tag === "Transaction"
    ? Effect.map(
      Effect.all([
        crypto.decrypt(a.envelope, recordKeyOf(a)),
        crypto.decrypt(b.envelope, recordKeyOf(b))
      ]),
      // Compared as values: a backend that keeps them open (file) writes its own JSON of the same record.
      ([left, right]) => a.expiresAt === b.expiresAt && deepEqual(parseJson(left), parseJson(right))
    )
    : Effect.succeed(deepEqual(a, b))

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** Structural equality of plain JSON-like values (key order ignored). */
const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const keysA = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const keysB = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  if (keysA.length !== keysB.length) return false
  return keysA.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

/** Copy every live record of `source` into `target`, then check the target (see the module comment). */
export const migrate = (
  source: StoreMaintenance.Service,
  target: StoreMaintenance.Service,
  crypto: Crypto.Service,
  options: MigrateOptions
): Effect.Effect<MigrateReport, StoreError | TargetNotEmpty | VerificationFailed | KeyMismatch> =>
  Effect.gen(function*() {
    const existing = totalOf(yield* target.counts)
    if (existing > 0 && !options.force) return yield* new TargetNotEmpty({ target: target.description, records: existing })

    const sampleSize = Math.max(0, options.sampleSize ?? 200)
    const copied = emptyCounts()
    /** Expiry instants of what was copied, per kind, to know what should still be there when checking. */
    const expiries = new Map<RecordKind, Array<number>>()
    const sample: Array<StoredRecord> = []
    let seen = 0

    const progress = yield* options.progress("migrate", totalOf(yield* source.counts))
    yield* source.records({ pageSize: options.batchSize }).pipe(
      Stream.chunks,
      Stream.runForEach((chunk) =>
        Effect.gen(function*() {
          const records = Chunk.toReadonlyArray(chunk)
          yield* target.importRecords(records)
          for (const record of records) {
            copied[record._tag]++
            const expiresAt = expiresAtOf(record)
            if (expiresAt !== undefined) {
              const list = expiries.get(record._tag) ?? []
              list.push(expiresAt)
              expiries.set(record._tag, list)
            }
            // Reservoir sampling: every record equally likely to be checked.
            seen++
            if (sample.length < sampleSize) sample.push(record)
            else {
              const slot = Math.floor(Math.random() * seen)
              if (slot < sampleSize) sample[slot] = record
            }
          }
          yield* progress.advance(records.length, `copied ${formatCount(seen)}`)
        })
      )
    )
    yield* progress.finish

    // Read the target back.
    const found = emptyCounts()
    const wanted = new Map(sample.map((record) => [recordKeyOf(record), record]))
    const matched = new Set<string>()
    const problems: Array<string> = []
    let sealedChecked = 0
    let unopened = 0
    const unopenedKeyIds = new Set<string>()
    const check = yield* options.progress("verify", totalOf(copied) + (options.force ? existing : 0))
    yield* target.records({ pageSize: options.batchSize }).pipe(
      Stream.chunks,
      Stream.runForEach((chunk) =>
        Effect.gen(function*() {
          for (const record of chunk) {
            found[record._tag]++
            for (const value of sealedValuesOf(record)) {
              const opened = yield* Effect.either(crypto.decrypt(value.envelope, sealedRecordKey(value.ref)))
              if (opened._tag === "Left") {
                if (opened.left.reason !== "DecryptFailed") return yield* opened.left
                unopened++
                unopenedKeyIds.add(keyIdOf(value.envelope) ?? "(unreadable)")
              } else sealedChecked++
            }
            const key = recordKeyOf(record)
            const expected = wanted.get(key)
            if (expected !== undefined) {
              if (yield* sameRecord(crypto, expected, record)) matched.add(key)
              else problems.push(`${record._tag} ${key.slice(0, 32)}… differs from the source`)
            }
          }
          yield* check.advance(Chunk.size(chunk), `sealed values opened ${formatCount(sealedChecked)}`)
        })
      )
    )
    yield* check.finish
    if (unopened > 0) return yield* new KeyMismatch({ keyIds: [...unopenedKeyIds], count: unopened, stoppedEarly: false })

    const now = yield* Clock.currentTimeMillis
    for (const kind of RECORD_KINDS) {
      const stillLive = expiries.has(kind)
        ? (expiries.get(kind) ?? []).filter((expiresAt) => now < expiresAt).length
        : copied[kind]
      const tooFew = found[kind] < stillLive
      const tooMany = !options.force && found[kind] > copied[kind]
      if (tooFew || tooMany) {
        problems.push(`${kind}: copied ${copied[kind]}${stillLive === copied[kind] ? "" : ` (${stillLive} still live)`}, the target holds ${found[kind]}`)
      }
    }
    for (const [key, record] of wanted) {
      const expiresAt = expiresAtOf(record)
      if (!matched.has(key) && (expiresAt === undefined || now < expiresAt)) {
        problems.push(`${record._tag} ${key.slice(0, 32)}… is missing on the target`)
      }
    }
    if (problems.length > 0) return yield* new VerificationFailed({ problems: problems.slice(0, 10) })
    return { copied, found, sampled: matched.size, sealedChecked }
  })
