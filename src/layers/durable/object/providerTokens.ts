/**
 * The `ProviderTokenStore`'s rows inside the object: one envelope per
 * (authorization, provider), sealed and bound to that pair by the layer, beside
 * its plaintext expiry. In the same object as the grants, so revoking a grant
 * deletes its provider tokens in the same transaction.
 */
import type { ProviderMove, ProviderRow } from "../protocol.ts"
import type { Db } from "./db.ts"
import { T } from "./schema.ts"

const upsert = `INSERT INTO ${T.providerTokens} (authorization_id, provider_id, envelope, expires_at) VALUES (?, ?, ?, ?)
  ON CONFLICT (authorization_id, provider_id) DO UPDATE SET envelope = excluded.envelope, expires_at = excluded.expires_at`

export const getProviderTokens = (db: Db, now: number, authorizationId: string, providerId: string): string | null =>
  db.first<{ readonly envelope: string }>(
    `SELECT envelope FROM ${T.providerTokens} WHERE authorization_id = ? AND provider_id = ? AND expires_at > ?`,
    authorizationId,
    providerId,
    now
  )?.envelope ?? null

export const putProviderTokens = (db: Db, authorizationId: string, row: ProviderRow): null => {
  db.run(upsert, authorizationId, row.providerId, row.envelope, row.expiresAt)
  return null
}

export const deleteProviderTokens = (db: Db, authorizationId: string, providerId: string): boolean =>
  db.count(
    `DELETE FROM ${T.providerTokens} WHERE authorization_id = ? AND provider_id = ? RETURNING 1`,
    authorizationId,
    providerId
  ) > 0

/** The live rows of an authorization id, in the order they were first stored. */
export const listProviderTokens = (db: Db, now: number, authorizationId: string): Array<ProviderRow> =>
  db.all<{ readonly provider_id: string; readonly envelope: string; readonly expires_at: number }>(
    `SELECT provider_id, envelope, expires_at FROM ${T.providerTokens}
      WHERE authorization_id = ? AND expires_at > ? ORDER BY rowid`,
    authorizationId,
    now
  ).map((row) => ({ providerId: row.provider_id, envelope: row.envelope, expiresAt: row.expires_at }))

/** Move what the layer read and resealed; a row changed since (a concurrent store under `from`) stays where it is. */
export const moveProviderTokens = (db: Db, from: string, to: string, moves: ReadonlyArray<ProviderMove>): null =>
  db.transaction(() => {
    for (const move of moves) {
      const deleted = db.count(
        `DELETE FROM ${T.providerTokens} WHERE authorization_id = ? AND provider_id = ? AND envelope = ? RETURNING 1`,
        from,
        move.providerId,
        move.fromEnvelope
      )
      if (deleted > 0) db.run(upsert, to, move.providerId, move.envelope, move.expiresAt)
    }
    return null
  })

export const deleteAllProviderTokens = (db: Db, authorizationId: string): null => {
  db.run(`DELETE FROM ${T.providerTokens} WHERE authorization_id = ?`, authorizationId)
  return null
}
