/**
 * The `RateLimiter` and the `ReplayCache` inside the object. Each step reads
 * and writes with no `await` in between, so one object's calls never
 * interleave within it: the read of a bucket's state, the decision and its
 * write are one step, as are "seen before?" and "remember it". The decisions
 * are the shared pure functions (`internal/rateLimit.ts`), so this backend
 * decides exactly as the others do. Rows are keyed by the storage key the
 * layer computed (`ratelimit:{bucket}:{hash}`, `replay:{scope}:{hash}`): the
 * object never sees a client address, a user name or an id.
 */
import { checkAt, consumeAt, type Gcra, refundAt } from "../../../internal/rateLimit.ts"
import type { RateLimitDecision } from "../../../services/RateLimiter.ts"
import type { Db } from "./db.ts"
import { T } from "./schema.ts"

/** A bucket's live state (the instant it is full again); `undefined` for a full bucket. */
const stateOf = (db: Db, now: number, key: string): number | undefined =>
  db.first<{ readonly expires_at: number }>(`SELECT expires_at FROM ${T.rateLimits} WHERE key = ? AND expires_at > ?`, key, now)
    ?.expires_at

const store = (db: Db, key: string, state: number): void => {
  db.run(
    `INSERT INTO ${T.rateLimits} (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at`,
    key,
    state
  )
}

/** Take a token if the bucket has one: read, decide, write, in one synchronous step. */
export const consumeToken = (db: Db, now: number, key: string, g: Gcra): RateLimitDecision => {
  const { decision, next } = consumeAt(g, stateOf(db, now, key), now)
  if (next !== undefined) store(db, key, next)
  return decision
}

/** What `consumeToken` would decide now; writes nothing. */
export const checkTokens = (db: Db, now: number, key: string, g: Gcra): RateLimitDecision =>
  checkAt(g, stateOf(db, now, key), now)

/** Give one token back; a bucket that becomes full is no row at all. */
export const refundToken = (db: Db, now: number, key: string, g: Gcra): null => {
  const state = stateOf(db, now, key)
  if (state === undefined) return null
  const back = refundAt(g, state, now)
  if (back === undefined) db.run(`DELETE FROM ${T.rateLimits} WHERE key = ?`, key)
  else store(db, key, back)
  return null
}

/** Forget a bucket (full again). */
export const resetBucket = (db: Db, key: string): null => {
  db.run(`DELETE FROM ${T.rateLimits} WHERE key = ?`, key)
  return null
}

/**
 * Remember `key` until `expiresAt` unless it is remembered already: one
 * statement that writes only when there is no row or the row has expired,
 * and returns a row only when it wrote (the first sighting).
 */
export const rememberId = (db: Db, now: number, key: string, expiresAt: number): boolean =>
  db.count(
    `INSERT INTO ${T.replayIds} (key, expires_at) VALUES (?, ?)
      ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE expires_at <= ?
      RETURNING 1`,
    key,
    expiresAt,
    now
  ) === 1

/** Whether a policy sent by a caller is one the layer could have worked out (whole, positive, consistent). */
export const isGcra = (g: Gcra): boolean =>
  typeof g === "object" && g !== null && typeof g.bucket === "string" &&
  [g.limit, g.interval, g.capacity].every((n) => Number.isSafeInteger(n) && n > 0) && g.capacity === g.interval * g.limit
