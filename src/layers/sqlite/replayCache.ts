import { Clock, Effect } from "effect"
import { replayEntry } from "../../internal/primitiveInput.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ReplayCache, ReplaySighting } from "../../services/ReplayCache.ts"
import { type Db, traced } from "./db.ts"
import type { Tables } from "./tables.ts"

/**
 * The SQLite `ReplayCache`: one row per id (its lookup hash) and its expiry.
 * `remember` is one statement, so exactly one caller across every process
 * sharing the file inserts a given id: an upsert that replaces the row only
 * when it has expired, and returns a row only when it wrote one (`First`).
 */
export const makeReplayCache = (db: Db, t: Tables) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const method = "ReplayCache.remember"
    const statement = `INSERT INTO ${t.replayIds} (key, expires_at) VALUES (?, ?)
      ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE expires_at <= ?
      RETURNING expires_at`

    const service: ReplayCache.Service = {
      remember: (scope, id, ttl) =>
        Effect.gen(function*() {
          const [key, millis] = yield* replayEntry(crypto, scope, id, ttl, method)
          const now = yield* Clock.currentTimeMillis
          const written = yield* db.all(method, statement, [key, now + millis, now])
          return (written.length > 0 ? "First" : "Replayed") satisfies ReplaySighting
        }).pipe(traced("ReplayCache.remember"))
    }

    return service
  })
