import { Clock, Effect, Option } from "effect"
import { isSessionLive, newSession, sessionExpiresAt, touchSession } from "../../internal/sessionRecord.ts"
import type { ResolvedSessionStoreOptions } from "../../schema/options.ts"
import type { Session, SessionEviction } from "../../schema/session.ts"
import { Crypto } from "../../services/Crypto.ts"
import { StoreError } from "../../services/StoreError.ts"
import type { CreatedSession, SessionStore } from "../../services/SessionStore.ts"
import { changes, type Db, type Program, rows, traced } from "./db.ts"
import {
  SESSION_COLUMNS as COLUMNS,
  SESSION_LRU_ORDER as LRU_ORDER,
  type SessionRow,
  sessionOfRow,
  sessionValues,
  toSession
} from "../../internal/sessionRow.ts"
import type { Tables } from "./tables.ts"

/** The row mapping is shared with the Durable Object backend (`internal/sessionRow.ts`). */
export { SESSION_COLUMNS as COLUMNS, type SessionRow, toSession } from "../../internal/sessionRow.ts"

const GET = "SessionStore.get"
const CREATE = "SessionStore.create"
const noSession = Effect.succeed(Option.none<Session>())

/**
 * The SQLite `SessionStore`. A session is one row, its sliding expiry in
 * `expires_at` (the earlier of the idle and the absolute expiry). `create`
 * enforces both limits inside one `BEGIN IMMEDIATE` transaction (count, delete
 * the least recently accessed, insert), so they hold across processes; `get`
 * writes the last access only when the touch interval has passed.
 */
export const makeSessionStore = (db: Db, t: Tables, options: ResolvedSessionStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto

    const selectLive = `SELECT ${COLUMNS} FROM ${t.sessions} WHERE id = ? AND expires_at > ?`
    const touch = `UPDATE ${t.sessions} SET last_accessed_at = ?, idle_expires_at = ?, expires_at = ?
      WHERE id = ? AND last_accessed_at <= ?`
    const deleteById = `DELETE FROM ${t.sessions} WHERE id = ?`
    // `create`'s statements, their text built once (a statement is found by its text).
    const deleteExpiredOfKey = `DELETE FROM ${t.sessions} WHERE api_key_hash = ? AND expires_at <= ?`
    const selectOfKey = `SELECT ${COLUMNS} FROM ${t.sessions} WHERE api_key_hash = ? ${LRU_ORDER}`
    const countAll = `SELECT count(*) AS n FROM ${t.sessions}`
    const selectOldest = `SELECT ${COLUMNS} FROM ${t.sessions} ${LRU_ORDER} LIMIT ?`
    const insert = `INSERT INTO ${t.sessions} (${COLUMNS}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

    /** `create`'s transaction: the limits, then the insert. */
    function* create(apiKeyHash: string, session: Session, now: number): Program<CreatedSession> {
      const method = CREATE
      const evicted: Array<SessionEviction> = []
      // The key's expired sessions go first (they no longer count), then its least recently accessed.
      yield* changes(deleteExpiredOfKey, [apiKeyHash, now])
      const ofKey = yield* rows<SessionRow>(selectOfKey, [apiKeyHash])
      for (const row of ofKey.slice(0, Math.max(0, ofKey.length - options.maxPerKey + 1))) {
        yield* changes(deleteById, [row.id])
        const victim = sessionOfRow(row, method)
        if (victim instanceof StoreError) return victim
        evicted.push({ session: victim, reason: "PerKeyLimit" })
      }
      const counted = yield* rows<{ readonly n: number }>(countAll, [])
      const excess = (counted[0]?.n ?? 0) - options.maxSessions + 1
      if (excess > 0) {
        for (const row of yield* rows<SessionRow>(selectOldest, [excess])) {
          yield* changes(deleteById, [row.id])
          const victim = sessionOfRow(row, method)
          if (victim instanceof StoreError) return victim
          if (isSessionLive(victim, now)) evicted.push({ session: victim, reason: "GlobalLimit" })
        }
      }
      yield* changes(insert, sessionValues(session))
      return { session, evicted }
    }

    const service: SessionStore.Service = {
      // The hash and the id, then the whole transaction in one step (`Db.transact`).
      create: (input) =>
        Effect.flatMap(crypto.hash(input.apiKey), (apiKeyHash) =>
          Effect.flatMap(crypto.randomToken(), (id) =>
            db.transact(CREATE, (now) => create(apiKeyHash, newSession(input, id, apiKeyHash, now, options), now)))).pipe(
            traced(CREATE)
          ),

      // The hot path: the clock, the statement, the row's mapping and the touch check in one step (`Db.read`).
      get: (id) =>
        db.tracedRead<SessionRow, Option.Option<Session>, StoreError>(GET, selectLive, id, (row, now) => {
          if (row === undefined) return noSession
          const session = sessionOfRow(row, GET)
          if (session instanceof StoreError) return Effect.fail(session)
          const touched = touchSession(session, now, options)
          if (touched === undefined) return Effect.succeed(Option.some(session))
          // Conditional: of several readers past the interval, the write lands once.
          return Effect.as(
            db.run(GET, touch, [
              touched.lastAccessedAt,
              touched.idleExpiresAt,
              sessionExpiresAt(touched),
              id,
              now - options.touchInterval
            ]),
            Option.some(touched)
          )
        }),

      update: (id, patch) =>
        Effect.gen(function*() {
          const method = "SessionStore.update"
          const now = yield* Clock.currentTimeMillis
          const rows = yield* db.all<SessionRow>(
            method,
            `UPDATE ${t.sessions} SET initialized = coalesce(?, initialized),
              protocol_version = coalesce(?, protocol_version), client_info = coalesce(?, client_info)
              WHERE id = ? AND expires_at > ? RETURNING ${COLUMNS}`,
            [
              patch.initialized === undefined ? null : patch.initialized ? 1 : 0,
              patch.protocolVersion ?? null,
              patch.clientInfo === undefined ? null : JSON.stringify(patch.clientInfo),
              id,
              now
            ]
          )
          return rows[0] === undefined ? Option.none() : Option.some(yield* toSession(rows[0], method))
        }),

      delete: (id) => Effect.map(db.run("SessionStore.delete", deleteById, [id]), (changes) => changes > 0),

      listByApiKey: (apiKey) =>
        Effect.gen(function*() {
          const method = "SessionStore.listByApiKey"
          const apiKeyHash = yield* crypto.hash(apiKey)
          const now = yield* Clock.currentTimeMillis
          const rows = yield* db.all<SessionRow>(
            method,
            `SELECT ${COLUMNS} FROM ${t.sessions} WHERE api_key_hash = ? AND expires_at > ? ${LRU_ORDER}`,
            [apiKeyHash, now]
          )
          return yield* Effect.forEach(rows, (row) => toSession(row, method))
        })
    }

    return service
  })

