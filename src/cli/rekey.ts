/**
 * Re-keying: seal every sealed value again under the keyring's active key.
 *
 * A pass lists the records a page at a time; values whose envelope already
 * names the active key are left alone (the key id is in the envelope's
 * header, no decryption needed); the others are opened with whichever key of
 * the keyring sealed them, sealed under the active key for the same record
 * key, and written back by compare-and-set on the envelope read
 * (`StoreMaintenance.reseal`, one atomic step per page). So:
 * - a kill at any instant leaves every value under its old key or its new
 *   one, both in the keyring: everything stays readable;
 * - running it again resumes: what is done is skipped;
 * - a value a server rewrote meanwhile is never overwritten with the stale
 *   one; a pass that met such values is followed by another.
 */
import { Chunk, Effect, Stream } from "effect"
import { keyIdOf } from "../layers/crypto/envelope.ts"
import { sealedRecordKey, sealedValuesOf, totalOf } from "../internal/storedRecords.ts"
import type { Reseal } from "../schema/storedRecord.ts"
import { Crypto } from "../services/Crypto.ts"
import { StoreMaintenance } from "../services/StoreMaintenance.ts"
import type { StoreError } from "../services/StoreError.ts"
import { KeyMismatch } from "./errors.ts"
import { formatCount, type Progress } from "./progress.ts"

export interface RekeyOptions {
  /** Count and check (every value is opened), write nothing. */
  readonly dryRun: boolean
  /** Records per page (and per atomic re-seal batch). */
  readonly batchSize: number
  /** At most this many passes while servers keep rewriting values (default 3). */
  readonly maxPasses?: number
  /** The display, created for a pass over `total` records. */
  readonly progress: (label: string, total: number) => Effect.Effect<Progress>
}

export interface RekeyReport {
  readonly activeKeyId: string
  /** Records listed, over every pass. */
  readonly records: number
  /** Sealed values seen in the first pass, by the key id that sealed them. */
  readonly byKeyId: ReadonlyMap<string, number>
  /** Values sealed again under the active key (would be, with `dryRun`). */
  readonly resealed: number
  /** Sealed values seen in the first pass. */
  readonly sealed: number
  /** Values already under the active key in the first pass. */
  readonly current: number
  /** Values a server rewrote between the tool's read and its write, over every pass (left as the server wrote them, looked at again). */
  readonly rewrittenMeanwhile: number
  /** Of those, the ones the last pass still met: servers still write under another key. */
  readonly changedMeanwhile: number
  /** Containers (the file's snapshot) sealed again. */
  readonly containersResealed: number
  readonly passes: number
  readonly dryRun: boolean
}

interface PassTotals {
  records: number
  resealed: number
  current: number
  changedMeanwhile: number
  unopened: number
  opened: number
  readonly unopenedKeyIds: Set<string>
  readonly byKeyId: Map<string, number>
}

const describeTotals = (t: PassTotals, dryRun: boolean) =>
  `${dryRun ? "to re-seal" : "re-sealed"} ${formatCount(t.resealed)}, current ${formatCount(t.current)}` +
  (t.changedMeanwhile > 0 ? `, changed meanwhile ${formatCount(t.changedMeanwhile)}` : "") +
  (t.unopened > 0 ? `, unopened ${formatCount(t.unopened)}` : "")

/** Values that failed to open before any opened: the keyring is plainly not the store's, stop there. */
const HOPELESS = 100

/** One pass over every record. */
const pass = (label: string, options: RekeyOptions) =>
  Effect.gen(function*() {
    const maintenance = yield* StoreMaintenance
    const crypto = yield* Crypto
    const active = crypto.activeKeyId
    const total = totalOf(yield* maintenance.counts)
    const progress = yield* options.progress(label, total)
    const totals: PassTotals = {
      records: 0,
      resealed: 0,
      current: 0,
      changedMeanwhile: 0,
      unopened: 0,
      opened: 0,
      unopenedKeyIds: new Set(),
      byKeyId: new Map()
    }

    const page = (records: Chunk.Chunk<Parameters<typeof sealedValuesOf>[0]>): Effect.Effect<void, StoreError | KeyMismatch> =>
      Effect.gen(function*() {
        const batch: Array<Reseal> = []
        for (const record of records) {
          for (const value of sealedValuesOf(record)) {
            const kid = keyIdOf(value.envelope) ?? "(unreadable)"
            totals.byKeyId.set(kid, (totals.byKeyId.get(kid) ?? 0) + 1)
            if (kid === active) {
              totals.current++
              continue
            }
            const recordKey = sealedRecordKey(value.ref)
            const opened = yield* Effect.either(crypto.decrypt(value.envelope, recordKey))
            if (opened._tag === "Left") {
              if (opened.left.reason !== "DecryptFailed") return yield* opened.left
              totals.unopened++
              totals.unopenedKeyIds.add(kid)
              if (totals.unopened >= HOPELESS && totals.opened === 0) {
                return yield* new KeyMismatch({ keyIds: [...totals.unopenedKeyIds], count: totals.unopened, stoppedEarly: true })
              }
              continue
            }
            totals.opened++
            batch.push({ ref: value.ref, expected: value.envelope, next: yield* crypto.encrypt(opened.right, recordKey) })
          }
        }
        if (options.dryRun) {
          totals.resealed += batch.length
        } else if (batch.length > 0) {
          const applied = yield* maintenance.reseal(batch)
          for (const ok of applied) {
            if (ok) totals.resealed++
            else totals.changedMeanwhile++
          }
        }
        totals.records += Chunk.size(records)
        yield* progress.advance(Chunk.size(records), describeTotals(totals, options.dryRun))
      })

    yield* maintenance.records({ pageSize: options.batchSize }).pipe(
      Stream.chunks,
      Stream.runForEach(page)
    )
    yield* progress.finish
    return totals
  })

/**
 * Re-seal every sealed value of the store under the active key (see the
 * module comment). Fails with `KeyMismatch` when some values open with no key
 * of the keyring (the others are re-sealed all the same).
 */
export const rekey = (options: RekeyOptions): Effect.Effect<RekeyReport, StoreError | KeyMismatch, StoreMaintenance | Crypto> =>
  Effect.gen(function*() {
    const maintenance = yield* StoreMaintenance
    const crypto = yield* Crypto
    const maxPasses = Math.max(1, options.maxPasses ?? 3)
    const first = yield* pass(options.dryRun ? "rekey (dry run)" : "rekey", options)
    let records = first.records
    let resealed = first.resealed
    let rewrittenMeanwhile = first.changedMeanwhile
    let changedMeanwhile = first.changedMeanwhile
    let passes = 1
    let last = first
    // Values a server rewrote under the old key while we ran: look again.
    while (!options.dryRun && last.changedMeanwhile > 0 && passes < maxPasses) {
      passes++
      last = yield* pass(`rekey (pass ${passes})`, options)
      records += last.records
      resealed += last.resealed
      rewrittenMeanwhile += last.changedMeanwhile
      changedMeanwhile = last.changedMeanwhile
    }

    let containersResealed = 0
    const stale = (yield* maintenance.containers).filter((container) => container.keyId !== crypto.activeKeyId)
    if (stale.length > 0 && !options.dryRun) yield* maintenance.resealContainers
    containersResealed = stale.length

    const unopened = last.unopened
    if (unopened > 0) return yield* new KeyMismatch({ keyIds: [...last.unopenedKeyIds], count: unopened, stoppedEarly: false })
    return {
      activeKeyId: crypto.activeKeyId,
      records,
      byKeyId: first.byKeyId,
      resealed,
      sealed: [...first.byKeyId.values()].reduce((sum, n) => sum + n, 0),
      current: first.current,
      rewrittenMeanwhile,
      changedMeanwhile,
      containersResealed,
      passes,
      dryRun: options.dryRun
    }
  })
