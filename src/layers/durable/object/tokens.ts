/**
 * The `TokenStore`'s steps inside the object, each one synchronous call (no
 * other request to the object runs until it returns), the multi-statement
 * ones in one `transactionSync`:
 * - take: `DELETE ... RETURNING`;
 * - consume: `UPDATE ... WHERE consumed_at IS NULL ... RETURNING`, then a read
 *   tells a replay from an unknown code;
 * - rotation: a conditional `UPDATE` of the presented row and the successor's
 *   `INSERT`; a presented row already rotated is judged (grace replay or
 *   reuse, which deletes the grant) from the rows in the same transaction;
 * - grant revocation: every row of the grant, provider tokens included.
 */
import { decideRotation, stampRefreshToken, successorOf } from "../../../internal/records.ts"
import type { ConsumeReply, NewRefreshTokenData, RefreshRow, RotateReply, Successor } from "../protocol.ts"
import { Abort, type Db } from "./db.ts"
import { readRefresh, writeRefresh } from "./refreshRecord.ts"
import { T } from "./schema.ts"

interface BodyRow {
  readonly body: string
}
interface EnvelopeRow {
  readonly envelope: string
}
interface PresentedRow {
  readonly body: string
  readonly rotated_at: number | null
  readonly successor_envelope: string | null
  readonly s_body: string | null
  readonly s_rotated_at: number | null
}

const bodyOf = (row: BodyRow | undefined): string | null => row === undefined ? null : row.body

/** Remove a grant and everything issued under it; `true` when the grant or any token of it existed. Run inside a transaction. */
export const deleteGrantRows = (db: Db, grantId: string): boolean => {
  const grants = db.count(`DELETE FROM ${T.grants} WHERE id = ? RETURNING 1`, grantId)
  const codes = db.count(`DELETE FROM ${T.codes} WHERE grant_id = ? RETURNING 1`, grantId)
  const access = db.count(`DELETE FROM ${T.accessTokens} WHERE grant_id = ? RETURNING 1`, grantId)
  const refresh = db.count(`DELETE FROM ${T.refreshTokens} WHERE grant_id = ? RETURNING 1`, grantId)
  db.run(`DELETE FROM ${T.providerTokens} WHERE authorization_id = ?`, grantId)
  return grants + codes + access + refresh > 0
}

export const saveTransaction = (db: Db, id: string, envelope: string, expiresAt: number): null => {
  db.run(`INSERT OR REPLACE INTO ${T.transactions} (id, envelope, expires_at) VALUES (?, ?, ?)`, id, envelope, expiresAt)
  return null
}

export const getTransaction = (db: Db, now: number, id: string): string | null =>
  db.first<EnvelopeRow>(`SELECT envelope FROM ${T.transactions} WHERE id = ? AND expires_at > ?`, id, now)?.envelope ??
    null

export const takeTransaction = (db: Db, now: number, id: string): string | null =>
  db.first<EnvelopeRow>(`DELETE FROM ${T.transactions} WHERE id = ? AND expires_at > ? RETURNING envelope`, id, now)
    ?.envelope ?? null

export const saveCode = (db: Db, hash: string, grantId: string, body: string, expiresAt: number): null => {
  db.run(
    `INSERT OR REPLACE INTO ${T.codes} (hash, grant_id, body, expires_at, consumed_at) VALUES (?, ?, ?, ?, NULL)`,
    hash,
    grantId,
    body,
    expiresAt
  )
  return null
}

export const consumeCode = (db: Db, now: number, hash: string): ConsumeReply => {
  const consumed = db.first<BodyRow>(
    `UPDATE ${T.codes} SET consumed_at = ? WHERE hash = ? AND consumed_at IS NULL AND expires_at > ? RETURNING body`,
    now,
    hash,
    now
  )
  if (consumed !== undefined) return { _tag: "Consumed", body: consumed.body }
  const replayed = db.first<{ readonly grant_id: string }>(
    `SELECT grant_id FROM ${T.codes} WHERE hash = ? AND expires_at > ?`,
    hash,
    now
  )
  return replayed === undefined ? { _tag: "NotFound" } : { _tag: "Replayed", grantId: replayed.grant_id }
}

export const saveAccessToken = (db: Db, hash: string, grantId: string, body: string, expiresAt: number): null => {
  db.run(
    `INSERT OR REPLACE INTO ${T.accessTokens} (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`,
    hash,
    grantId,
    body,
    expiresAt
  )
  return null
}

export const getAccessToken = (db: Db, now: number, hash: string): string | null =>
  bodyOf(db.first<BodyRow>(`SELECT body FROM ${T.accessTokens} WHERE hash = ? AND expires_at > ?`, hash, now))

export const revokeAccessToken = (db: Db, hash: string): boolean =>
  db.count(`DELETE FROM ${T.accessTokens} WHERE hash = ? RETURNING 1`, hash) > 0

/** Stamp and save the first refresh token of a grant: its chain ends with the grant, read in the same step. */
export const saveRefreshToken = (db: Db, now: number, hash: string, input: NewRefreshTokenData, ttl: number): string => {
  const grant = db.first<{ readonly expires_at: number }>(`SELECT expires_at FROM ${T.grants} WHERE id = ?`, input.grantId)
  const record = stampRefreshToken(input, now, ttl, grant?.expires_at)
  const body = writeRefresh(record)
  db.run(
    `INSERT OR REPLACE INTO ${T.refreshTokens} (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`,
    hash,
    record.grantId,
    body,
    record.expiresAt
  )
  return body
}

export const getRefreshToken = (db: Db, now: number, hash: string): RefreshRow | null => {
  const row = db.first<{ readonly body: string; readonly rotated_at: number | null }>(
    `SELECT body, rotated_at FROM ${T.refreshTokens} WHERE hash = ? AND expires_at > ?`,
    hash,
    now
  )
  return row === undefined ? null : { body: row.body, rotatedAt: row.rotated_at }
}

export const rotateRefreshToken = (
  db: Db,
  now: number,
  graceWindow: number,
  hash: string,
  successor: Successor
): RotateReply =>
  db.transaction((): RotateReply => {
    const rotated = db.first<BodyRow>(
      `UPDATE ${T.refreshTokens} SET rotated_at = ?, successor_hash = ?, successor_envelope = ?
        WHERE hash = ? AND rotated_at IS NULL AND expires_at > ? RETURNING body`,
      now,
      successor.hash,
      successor.envelope,
      hash,
      now
    )
    if (rotated !== undefined) {
      const next = successorOf(readRefresh(rotated.body, null), now, successor.ttl)
      const current = writeRefresh(next)
      db.run(
        `INSERT OR REPLACE INTO ${T.refreshTokens} (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`,
        successor.hash,
        next.grantId,
        current,
        next.expiresAt
      )
      return { _tag: "Rotated", previous: rotated.body, current }
    }
    // Not rotatable: unknown, expired, or rotated before. Judge from the rows.
    const row = db.first<PresentedRow>(
      `SELECT p.body, p.rotated_at, p.successor_envelope, s.body AS s_body, s.rotated_at AS s_rotated_at
        FROM ${T.refreshTokens} p LEFT JOIN ${T.refreshTokens} s ON s.hash = p.successor_hash
        WHERE p.hash = ?`,
      hash
    )
    if (row === undefined || row.rotated_at === null) return { _tag: "NotFound" }
    const presented = readRefresh(row.body, row.rotated_at)
    const current = row.s_body === null ? undefined : readRefresh(row.s_body, row.s_rotated_at)
    switch (decideRotation(presented, current, now, graceWindow)) {
      case "GraceReplay":
        if (row.successor_envelope === null || row.s_body === null) {
          throw new Abort({ _tag: "Failure", reason: "Corrupt", description: "the sealed successor pair is missing" })
        }
        return {
          _tag: "GraceReplay",
          current: { body: row.s_body, rotatedAt: row.s_rotated_at },
          envelope: row.successor_envelope
        }
      case "Reuse":
        deleteGrantRows(db, presented.grantId)
        return { _tag: "ReuseDetected", grantId: presented.grantId }
      default:
        return { _tag: "NotFound" }
    }
  })

export const saveGrant = (db: Db, id: string, body: string, expiresAt: number): null => {
  db.run(`INSERT OR REPLACE INTO ${T.grants} (id, body, expires_at) VALUES (?, ?, ?)`, id, body, expiresAt)
  return null
}

export const getGrant = (db: Db, now: number, id: string): string | null =>
  bodyOf(db.first<BodyRow>(`SELECT body FROM ${T.grants} WHERE id = ? AND expires_at > ?`, id, now))

export const revokeGrant = (db: Db, id: string): boolean => db.transaction(() => deleteGrantRows(db, id))
