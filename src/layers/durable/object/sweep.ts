/**
 * Expired rows out of the object's storage, in bounded batches so one sweep
 * never holds the object for long (every other request waits while it runs).
 * Reads never need it: every read filters on the caller's time. It frees
 * storage, and clears the sealed successor pairs of refresh tokens rotated
 * longer ago than the grace window (nothing can open them any more).
 */
import type { Db } from "./db.ts"
import { EXPIRING, T } from "./schema.ts"

/** Rows deleted per statement. */
export const SWEEP_BATCH = 500

export interface Swept {
  readonly removed: number
  /** A batch came back full: there is more to sweep. */
  readonly more: boolean
}

/** Up to `batches` batches per table at time `now`. */
export const sweep = (db: Db, now: number, graceWindow: number, batches: number): Swept => {
  let removed = 0
  let more = false
  const drain = (query: string, bound: number): number => {
    let total = 0
    for (let batch = 0; batch < batches; batch++) {
      const changed = db.count(query, bound)
      total += changed
      if (changed < SWEEP_BATCH) return total
    }
    more = true
    return total
  }
  for (const table of EXPIRING) {
    removed += drain(
      `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE expires_at <= ? LIMIT ${SWEEP_BATCH}) RETURNING 1`,
      now
    )
  }
  drain(
    `UPDATE ${T.refreshTokens} SET successor_envelope = NULL WHERE rowid IN (SELECT rowid FROM ${T.refreshTokens}
      WHERE successor_envelope IS NOT NULL AND rotated_at < ? LIMIT ${SWEEP_BATCH}) RETURNING 1`,
    now - graceWindow
  )
  return { removed, more }
}

/** The earliest instant (caller time) at which a sweep would find something to do; `undefined` when nothing expires. */
export const nextExpiry = (db: Db, graceWindow: number): number | undefined => {
  const instants: Array<number> = []
  for (const table of EXPIRING) {
    const row = db.first<{ readonly m: number | null }>(`SELECT min(expires_at) AS m FROM ${table}`)
    if (row !== undefined && row.m !== null) instants.push(row.m)
  }
  const sealed = db.first<{ readonly m: number | null }>(
    `SELECT min(rotated_at) AS m FROM ${T.refreshTokens} WHERE successor_envelope IS NOT NULL`
  )
  if (sealed !== undefined && sealed.m !== null) instants.push(sealed.m + graceWindow + 1)
  return instants.length === 0 ? undefined : Math.min(...instants)
}
