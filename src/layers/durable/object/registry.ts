/**
 * Registered clients and the signing key set inside the object. The key set
 * is one sealed row; compare-and-set is one statement (`INSERT ... ON CONFLICT
 * DO NOTHING` for the first set, `UPDATE ... WHERE version = ?` after).
 */
import { Keys } from "../../../internal/keys.ts"
import type { KeySetRow } from "../protocol.ts"
import type { Db } from "./db.ts"
import { T } from "./schema.ts"

/** The one row's name: the record key its envelope is bound to. */
const SIGNING_KEYS = Keys.signingKeys

/** Store a client, replacing one with the same id; `expiresAt` only for a cached metadata document. */
export const putClient = (db: Db, clientId: string, body: string, expiresAt: number | null): null => {
  db.run(`INSERT OR REPLACE INTO ${T.clients} (client_id, body, expires_at) VALUES (?, ?, ?)`, clientId, body, expiresAt)
  return null
}

/** A client still served at `now` (a registered one always is). */
export const getClient = (db: Db, now: number, clientId: string): string | null =>
  db.first<{ readonly body: string }>(
    `SELECT body FROM ${T.clients} WHERE client_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
    clientId,
    now
  )?.body ?? null

export const deleteClient = (db: Db, clientId: string): boolean =>
  db.count(`DELETE FROM ${T.clients} WHERE client_id = ? RETURNING 1`, clientId) > 0

export const getSigningKeys = (db: Db): KeySetRow | null =>
  db.first<KeySetRow>(`SELECT version, envelope FROM ${T.signingKeys} WHERE name = ?`, SIGNING_KEYS) ?? null

export const compareAndSetSigningKeys = (db: Db, expectedVersion: number | null, next: KeySetRow): boolean =>
  (expectedVersion === null
    ? db.count(
      `INSERT INTO ${T.signingKeys} (name, version, envelope) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING 1`,
      SIGNING_KEYS,
      next.version,
      next.envelope
    )
    : db.count(
      `UPDATE ${T.signingKeys} SET version = ?, envelope = ? WHERE name = ? AND version = ? RETURNING 1`,
      next.version,
      next.envelope,
      SIGNING_KEYS,
      expectedVersion
    )) === 1
