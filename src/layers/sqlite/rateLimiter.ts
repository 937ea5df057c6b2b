import { Clock, Effect } from "effect"
import { checkName, rateLimitKey } from "../../internal/primitiveInput.ts"
import { checkAt, consumeAt, type Gcra, makeBuckets } from "../../internal/rateLimit.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { RateLimitDecision, RateLimiter } from "../../services/RateLimiter.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { type Db, traced } from "./db.ts"
import type { Tables } from "./tables.ts"

interface StateRow {
  readonly expires_at: number
}

/** Upsert-then-read rounds before `consume` decides in a transaction instead. */
const ATTEMPTS = 3

/**
 * The SQLite `RateLimiter`: one row per bucket holding the instant it is full
 * again (`expires_at`). Atomic across processes sharing the file:
 * - `consume` is one upsert that takes a token only when the bucket has one
 *   (`ON CONFLICT ... DO UPDATE ... WHERE`, `RETURNING` the new state). When it
 *   returns nothing the bucket was empty at that instant: a read of the state
 *   then gives the refusal its retry-after. If that read finds a token after
 *   all (a refund or reset from another process came in between), the upsert
 *   is tried again; after `ATTEMPTS` such rounds the decision is made in one
 *   `BEGIN IMMEDIATE` transaction (read, decide, write). So a refusal costs two
 *   plain statements and never holds the write lock for a read;
 * - `refund` is one conditional `UPDATE`, `reset` one `DELETE`.
 * A row at or past its `expires_at` is a full bucket; the sweep removes it.
 */
export const makeRateLimiter = (db: Db, t: Tables) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const bucketOf = makeBuckets(crypto)

    const readState = (method: string, key: string, now: number): Effect.Effect<number | undefined, StoreError> =>
      Effect.map(
        db.all<StateRow>(method, `SELECT expires_at FROM ${t.rateLimits} WHERE key = ? AND expires_at > ?`, [key, now]),
        (rows) => rows[0]?.expires_at
      )

    const upsert = `INSERT INTO ${t.rateLimits} (key, expires_at) VALUES (?, ?)
      ON CONFLICT (key) DO UPDATE SET expires_at = max(expires_at, ?) + ?
      WHERE max(expires_at, ?) + ? <= ?
      RETURNING expires_at`

    /** The whole decision in one write transaction: read, decide, write. */
    const consumeInTransaction = (method: string, g: Gcra, key: string): Effect.Effect<RateLimitDecision, StoreError> =>
      db.write(
        method,
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const { decision, next } = consumeAt(g, yield* readState(method, key, now), now)
          if (next !== undefined) {
            yield* db.run(
              method,
              `INSERT INTO ${t.rateLimits} (key, expires_at) VALUES (?, ?)
                ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at`,
              [key, next]
            )
          }
          return decision
        })
      )

    const service: RateLimiter.Service = {
      consume: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.consume"
          const [g, storageKey] = yield* bucketOf(policy, key, method)
          for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
            const now = yield* Clock.currentTimeMillis
            const rows = yield* db.all<StateRow>(method, upsert, [
              storageKey,
              now + g.interval,
              now,
              g.interval,
              now,
              g.interval,
              now + g.capacity
            ])
            const next = rows[0]?.expires_at
            // Taken: the state before was `next - interval` (or now, for a full bucket).
            if (next !== undefined) return consumeAt(g, next - g.interval, now).decision
            const refused = checkAt(g, yield* readState(method, storageKey, now), now)
            if (!refused.allowed) return refused
          }
          return yield* consumeInTransaction(method, g, storageKey)
        }).pipe(traced("RateLimiter.consume")),

      check: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.check"
          const [g, storageKey] = yield* bucketOf(policy, key, method)
          const now = yield* Clock.currentTimeMillis
          return checkAt(g, yield* readState(method, storageKey, now), now)
        }).pipe(traced("RateLimiter.check")),

      refund: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.refund"
          const [g, storageKey] = yield* bucketOf(policy, key, method)
          const now = yield* Clock.currentTimeMillis
          // A state left at or before now is a full bucket: the sweep removes the row.
          yield* db.run(
            method,
            `UPDATE ${t.rateLimits} SET expires_at = expires_at - ? WHERE key = ? AND expires_at > ?`,
            [g.interval, storageKey, now]
          )
        }).pipe(traced("RateLimiter.refund")),

      reset: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.reset"
          yield* checkName("bucket", policy.bucket, method)
          const storageKey = yield* rateLimitKey(crypto, policy.bucket, key)
          yield* db.run(method, `DELETE FROM ${t.rateLimits} WHERE key = ?`, [storageKey])
        }).pipe(traced("RateLimiter.reset"))
    }

    return service
  })
