/**
 * The `SessionStore`'s steps inside the object. `create` enforces both limits
 * in one transaction (drop the key's expired sessions, evict its least
 * recently accessed beyond the per-key limit, then the least recently accessed
 * anywhere beyond the global one, insert); no other request to the object runs
 * in between, so concurrent creates for one key never keep more than the
 * limit. `get` writes the last access only when the touch interval has passed.
 */
import { SESSION_COLUMNS, SESSION_LRU_ORDER, type SessionRow } from "../../../internal/sessionRow.ts"
import type { EvictedRow, SessionLimits, SessionPatchRow, SessionTouch } from "../protocol.ts"
import type { Db } from "./db.ts"
import { T } from "./schema.ts"

const expiresAtOf = (row: SessionRow): number => Math.min(row.idle_expires_at, row.absolute_expires_at)

const deleteById = `DELETE FROM ${T.sessions} WHERE id = ?`

export const createSession = (db: Db, now: number, row: SessionRow, limits: SessionLimits): Array<EvictedRow> =>
  db.transaction(() => {
    const evicted: Array<EvictedRow> = []
    // The key's expired sessions go first (they no longer count), then its least recently accessed.
    db.run(`DELETE FROM ${T.sessions} WHERE api_key_hash = ? AND expires_at <= ?`, row.api_key_hash, now)
    const ofKey = db.all<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM ${T.sessions} WHERE api_key_hash = ? ${SESSION_LRU_ORDER}`,
      row.api_key_hash
    )
    for (const victim of ofKey.slice(0, Math.max(0, ofKey.length - limits.maxPerKey + 1))) {
      db.run(deleteById, victim.id)
      evicted.push({ row: victim, reason: "PerKeyLimit" })
    }
    const counted = db.first<{ readonly n: number }>(`SELECT count(*) AS n FROM ${T.sessions}`)
    const excess = (counted?.n ?? 0) - limits.maxSessions + 1
    if (excess > 0) {
      const oldest = db.all<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM ${T.sessions} ${SESSION_LRU_ORDER} LIMIT ?`, excess)
      for (const victim of oldest) {
        db.run(deleteById, victim.id)
        if (now < expiresAtOf(victim)) evicted.push({ row: victim, reason: "GlobalLimit" })
      }
    }
    db.run(
      `INSERT INTO ${T.sessions} (${SESSION_COLUMNS}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.api_key_hash,
      row.subject,
      row.initialized,
      row.protocol_version,
      row.client_info,
      row.created_at,
      row.last_accessed_at,
      row.idle_expires_at,
      row.absolute_expires_at,
      expiresAtOf(row)
    )
    return evicted
  })

export const getSession = (db: Db, now: number, id: string, touch: SessionTouch): SessionRow | null => {
  const row = db.first<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM ${T.sessions} WHERE id = ? AND expires_at > ?`, id, now)
  if (row === undefined) return null
  if (now - row.last_accessed_at < touch.touchInterval) return row
  const touched: SessionRow = {
    ...row,
    last_accessed_at: now,
    idle_expires_at: Math.min(now + touch.idleTtl, row.absolute_expires_at)
  }
  db.run(
    `UPDATE ${T.sessions} SET last_accessed_at = ?, idle_expires_at = ?, expires_at = ? WHERE id = ?`,
    touched.last_accessed_at,
    touched.idle_expires_at,
    expiresAtOf(touched),
    id
  )
  return touched
}

export const updateSession = (db: Db, now: number, id: string, patch: SessionPatchRow): SessionRow | null =>
  db.first<SessionRow>(
    `UPDATE ${T.sessions} SET initialized = coalesce(?, initialized),
      protocol_version = coalesce(?, protocol_version), client_info = coalesce(?, client_info)
      WHERE id = ? AND expires_at > ? RETURNING ${SESSION_COLUMNS}`,
    patch.initialized,
    patch.protocolVersion,
    patch.clientInfo,
    id,
    now
  ) ?? null

export const deleteSession = (db: Db, id: string): boolean => db.count(`${deleteById} RETURNING 1`, id) > 0

export const listSessions = (db: Db, now: number, apiKeyHash: string): Array<SessionRow> =>
  db.all<SessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM ${T.sessions} WHERE api_key_hash = ? AND expires_at > ? ${SESSION_LRU_ORDER}`,
    apiKeyHash,
    now
  )
