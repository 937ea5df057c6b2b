import { Clock, Effect } from "effect"
import type { StoreError } from "../../services/StoreError.ts"
import type { Db } from "./db.ts"
import type { Tables } from "./tables.ts"

/** Rows deleted per statement: each batch is one short write, so other writers wait at most that long. */
export const SWEEP_BATCH = 500

const METHOD = "SqliteStore.sweep"

/**
 * Delete every expired row, table by table, in batches of `SWEEP_BATCH`
 * through the `expires_at` indexes, yielding between batches; and clear the
 * sealed successor pairs of refresh tokens rotated longer ago than the grace
 * window (nothing can open them any more). The number of rows deleted.
 */
export const makeSweep = (db: Db, t: Tables, graceWindow: number): Effect.Effect<number, StoreError> => {
  /** Repeat a batched statement until a batch comes back short; the total changed. */
  const drain = (text: string, bound: number): Effect.Effect<number, StoreError> =>
    Effect.gen(function*() {
      let total = 0
      for (;;) {
        const changed = yield* db.run(METHOD, text, [bound])
        total += changed
        if (changed < SWEEP_BATCH) return total
        yield* Effect.yieldNow()
      }
    })

  const expired = (table: string) =>
    `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`

  const tables = [
    t.transactions,
    t.codes,
    t.accessTokens,
    t.refreshTokens,
    t.grants,
    t.providerTokens,
    t.sessions,
    t.rateLimits,
    t.replayIds,
    // Clients without an expiry (registered ones) have a NULL `expires_at`, which `<=` never matches.
    t.clients
  ]

  return Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let removed = 0
    for (const table of tables) removed += yield* drain(expired(table), now)
    yield* drain(
      `UPDATE ${t.refreshTokens} SET successor_envelope = NULL WHERE rowid IN (SELECT rowid FROM ${t.refreshTokens}
        WHERE successor_envelope IS NOT NULL AND rotated_at < ? LIMIT ${SWEEP_BATCH})`,
      now - graceWindow
    )
    return removed
  })
}
