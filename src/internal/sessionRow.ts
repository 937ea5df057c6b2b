import { Effect } from "effect"
import { Session } from "../schema/session.ts"
import { StoreError } from "../services/StoreError.ts"
import { decodeRowSync } from "./jsonColumn.ts"
import { sessionExpiresAt } from "./sessionRecord.ts"

/**
 * A session as the SQL backends (SQLite, Durable Objects) keep it: one row,
 * columns named as below. Shared so both map rows the same way.
 */
export interface SessionRow {
  readonly id: string
  readonly api_key_hash: string
  readonly subject: string | null
  readonly initialized: number
  readonly protocol_version: string | null
  readonly client_info: string | null
  readonly created_at: number
  readonly last_accessed_at: number
  readonly idle_expires_at: number
  readonly absolute_expires_at: number
}

/** The columns of a `SessionRow`, in order (the tables also hold `expires_at`, the sweep's column). */
export const SESSION_COLUMNS =
  "id, api_key_hash, subject, initialized, protocol_version, client_info, created_at, last_accessed_at, idle_expires_at, absolute_expires_at"

/** Least recently accessed first; ties: the oldest, then the first inserted. */
export const SESSION_LRU_ORDER = "ORDER BY last_accessed_at, created_at, rowid"

const decodeSession = decodeRowSync(Session)

const isEpochMillis = (value: unknown): boolean => typeof value === "number" && Number.isSafeInteger(value) && value >= 0
const isNullOrString = (value: unknown): boolean => value === null || typeof value === "string"

/**
 * A row as a `Session`, synchronously: the session, or `Corrupt` when a column holds something a session cannot.
 * The common row (no client info) is checked column by column, exactly what decoding the `Session` built from it
 * would check (strings, `EpochMillis`); any other row goes through the `Session` Schema.
 */
export const sessionOfRow = (row: SessionRow, method: string): Session | StoreError => {
  if (
    row.client_info === null && typeof row.id === "string" && typeof row.api_key_hash === "string" &&
    isNullOrString(row.subject) && isNullOrString(row.protocol_version) && isEpochMillis(row.created_at) &&
    isEpochMillis(row.last_accessed_at) && isEpochMillis(row.idle_expires_at) && isEpochMillis(row.absolute_expires_at)
  ) {
    const initialized = row.initialized === 1
    if (row.subject === null) {
      return row.protocol_version === null
        ? {
          id: row.id,
          apiKeyHash: row.api_key_hash,
          initialized,
          createdAt: row.created_at,
          lastAccessedAt: row.last_accessed_at,
          idleExpiresAt: row.idle_expires_at,
          absoluteExpiresAt: row.absolute_expires_at
        }
        : {
          id: row.id,
          apiKeyHash: row.api_key_hash,
          initialized,
          protocolVersion: row.protocol_version,
          createdAt: row.created_at,
          lastAccessedAt: row.last_accessed_at,
          idleExpiresAt: row.idle_expires_at,
          absoluteExpiresAt: row.absolute_expires_at
        }
    }
    return {
      id: row.id,
      apiKeyHash: row.api_key_hash,
      subject: row.subject,
      initialized,
      ...(row.protocol_version === null ? {} : { protocolVersion: row.protocol_version }),
      createdAt: row.created_at,
      lastAccessedAt: row.last_accessed_at,
      idleExpiresAt: row.idle_expires_at,
      absoluteExpiresAt: row.absolute_expires_at
    }
  }
  return decodeSessionRow(row, method)
}

const decodeSessionRow = (row: SessionRow, method: string): Session | StoreError => {
  let clientInfo: unknown
  if (row.client_info !== null) {
    try {
      clientInfo = JSON.parse(row.client_info)
    } catch (cause) {
      return new StoreError({ reason: "Corrupt", method, description: "stored row does not decode", cause })
    }
  }
  return decodeSession({
    id: row.id,
    apiKeyHash: row.api_key_hash,
    ...(row.subject === null ? {} : { subject: row.subject }),
    initialized: row.initialized === 1,
    ...(row.protocol_version === null ? {} : { protocolVersion: row.protocol_version }),
    ...(clientInfo === undefined ? {} : { clientInfo }),
    createdAt: row.created_at,
    lastAccessedAt: row.last_accessed_at,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at
  }, method)
}

/** A row as a `Session`: `Corrupt` when a column holds something a session cannot. */
export const toSession = (row: SessionRow, method: string): Effect.Effect<Session, StoreError> => {
  const session = sessionOfRow(row, method)
  return session instanceof StoreError ? Effect.fail(session) : Effect.succeed(session)
}

/** A session as its row. */
export const sessionRowOf = (session: Session): SessionRow => ({
  id: session.id,
  api_key_hash: session.apiKeyHash,
  subject: session.subject ?? null,
  initialized: session.initialized ? 1 : 0,
  protocol_version: session.protocolVersion ?? null,
  client_info: session.clientInfo === undefined ? null : JSON.stringify(session.clientInfo),
  created_at: session.createdAt,
  last_accessed_at: session.lastAccessedAt,
  idle_expires_at: session.idleExpiresAt,
  absolute_expires_at: session.absoluteExpiresAt
})

/** A session's values in `SESSION_COLUMNS` order, then its `expires_at` (the earlier of its two expiries). */
export const sessionValues = (session: Session): Array<string | number | null> => {
  const row = sessionRowOf(session)
  return [
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
    sessionExpiresAt(session)
  ]
}
