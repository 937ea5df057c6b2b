/**
 * The SQLite stores' hot operations, called the way a server calls them: one
 * `ManagedRuntime` over `SqliteStore.layer()` + `NodeCrypto`, one
 * `runtime.runPromise` per operation.
 *
 * Each sits beside a raw baseline: plain better-sqlite3 prepared statements
 * doing the same SQL on a second file with the same schema and pragmas (WAL,
 * the same busy timeout, SQLite's default synchronous level), the same
 * `node:crypto` HMAC-SHA256 lookup hash (and AES-256-GCM seal, for rotation),
 * `JSON.parse` of the stored body, and the same `Date.now()` expiry check. So
 * the ratio is the cost of Effect (the runtime entry, `runPromise`, and the
 * steps of the operation) and the stores' own checks (every record written
 * and every row read validated against its Schema, which the baseline does
 * not do), not of SQLite or hashing.
 */
import Database from "better-sqlite3"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { createCipheriv, createHmac, createSecretKey, randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeCrypto } from "../src/exports/crypto/node.ts"
import * as SqliteStore from "../src/layers/sqlite/index.ts"
import type { AuthorizationCode } from "../src/schema/code.ts"
import type { Session } from "../src/schema/session.ts"
import type { AccessTokenRecord, RefreshTokenRecord } from "../src/schema/token.ts"
import { SessionStore } from "../src/services/SessionStore.ts"
import { TokenStore } from "../src/services/TokenStore.ts"
import { type Case, formatTable, register, type RunOptions, runCases } from "./harness.ts"
import { accessTokenInput, at, codeInput, refreshInput, shuffled } from "./fixtures.ts"
import { COLUMNS, type SessionRow } from "../src/layers/sqlite/sessionStore.ts"

const SESSIONS = 10_000 // the default global session limit
const ACCESS_TOKENS = 10_000
const DAY = 86_400_000
/** Long enough that `get` stays a read for the whole run (a touch is a write; the store throttles it). */
const TOUCH_INTERVAL = 3_600_000
const IDLE_TTL = DAY
const ABSOLUTE_TTL = 7 * DAY

const options: RunOptions = { rounds: 7, roundMs: 300, warmupMs: 200 }
/** Issue 14's aims (ours/baseline ops/s). */
const READ_AIM = 0.5
const WRITE_AIM = 0.7

// ---------------------------------------------------------------------------
// The raw baseline's pieces

const hashKey = createSecretKey(randomBytes(32))
const sealKey = createSecretKey(randomBytes(32))
/** What `NodeCrypto`'s `hash` computes: HMAC-SHA256 under a 32-byte key, base64url. */
const rawHash = (secret: string): string => createHmac("sha256", hashKey).update(secret, "utf8").digest("base64url")
const rawRandomToken = (): string => randomBytes(32).toString("base64url")
/** An AES-256-GCM envelope of `plaintext` bound to `recordKey`, as `NodeCrypto.encrypt` makes one. */
const rawSeal = (plaintext: string, recordKey: string): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", sealKey, iv, { authTagLength: 16 })
  cipher.setAAD(Buffer.from(recordKey, "utf8"))
  const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()])
  return `v1.kid00000.${iv.toString("base64url")}.${sealed.toString("base64url")}`
}






const codeSecret = (side: string, i: number) => `code-${side}-${i}-Jx1uQeVh2hU0pQnSx7gkY3tAc9b`
const refreshSecret = (side: string, i: number) => `rt-${side}-${i}-Pq8vL2mZx0cW4nB7tY1uE6rKdA`
const accessSecret = (i: number) => `at-${i}-Mw3nR8bT1yQ6vX0cZ5kL9pJ2hF`



const toSession = (row: SessionRow): Session => ({
  id: row.id,
  apiKeyHash: row.api_key_hash,
  ...(row.subject === null ? {} : { subject: row.subject }),
  initialized: row.initialized === 1,
  ...(row.protocol_version === null ? {} : { protocolVersion: row.protocol_version }),
  ...(row.client_info === null ? {} : { clientInfo: JSON.parse(row.client_info) }),
  createdAt: row.created_at,
  lastAccessedAt: row.last_accessed_at,
  idleExpiresAt: row.idle_expires_at,
  absoluteExpiresAt: row.absolute_expires_at
})

/** The same statements as the store, prepared once on a plain better-sqlite3 connection. */
const rawStatements = (db: Database.Database) => {
  const p = "mcp_"
  const s = {
    sessionGet: db.prepare<[string, number], SessionRow>(`SELECT ${COLUMNS} FROM ${p}sessions WHERE id = ? AND expires_at > ?`),
    sessionTouch: db.prepare(
      `UPDATE ${p}sessions SET last_accessed_at = ?, idle_expires_at = ?, expires_at = ? WHERE id = ? AND last_accessed_at <= ?`
    ),
    sessionDeleteExpiredOfKey: db.prepare(`DELETE FROM ${p}sessions WHERE api_key_hash = ? AND expires_at <= ?`),
    sessionsOfKey: db.prepare<[string], SessionRow>(
      `SELECT ${COLUMNS} FROM ${p}sessions WHERE api_key_hash = ? ORDER BY last_accessed_at, created_at, rowid`
    ),
    sessionCount: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${p}sessions`),
    sessionsOldest: db.prepare<[number], SessionRow>(
      `SELECT ${COLUMNS} FROM ${p}sessions ORDER BY last_accessed_at, created_at, rowid LIMIT ?`
    ),
    sessionDelete: db.prepare(`DELETE FROM ${p}sessions WHERE id = ?`),
    sessionInsert: db.prepare(`INSERT INTO ${p}sessions (${COLUMNS}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    accessGet: db.prepare<[string, number], { body: string }>(
      `SELECT body FROM ${p}access_tokens WHERE hash = ? AND expires_at > ?`
    ),
    codeInsert: db.prepare(
      `INSERT OR REPLACE INTO ${p}codes (hash, grant_id, body, expires_at, consumed_at) VALUES (?, ?, ?, ?, NULL)`
    ),
    codeConsume: db.prepare<[number, string, number], { body: string }>(
      `UPDATE ${p}codes SET consumed_at = ? WHERE hash = ? AND consumed_at IS NULL AND expires_at > ? RETURNING body`
    ),
    codeReplay: db.prepare<[string, number], { grant_id: string }>(
      `SELECT grant_id FROM ${p}codes WHERE hash = ? AND expires_at > ?`
    ),
    refreshInsert: db.prepare(
      `INSERT OR REPLACE INTO ${p}refresh_tokens (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`
    ),
    refreshRotate: db.prepare<[number, string, string, string, number], { body: string }>(
      `UPDATE ${p}refresh_tokens SET rotated_at = ?, successor_hash = ?, successor_envelope = ?
        WHERE hash = ? AND rotated_at IS NULL AND expires_at > ? RETURNING body`
    ),
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT")
  }
  return s
}

const run = async (): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-sqlite-bench-"))
  const ourFile = join(dir, "ours.db")
  const rawFile = join(dir, "raw.db")
  const layer = (filename: string) =>
    SqliteStore.layer({ filename, sweepInterval: "1 day", sessions: { touchInterval: TOUCH_INTERVAL } }).pipe(Layer.provideMerge(NodeCrypto.layerEphemeral))
  // The raw side's schema is the store's own: build the layer on its file once, then use plain better-sqlite3.
  const schemaRuntime = ManagedRuntime.make(layer(rawFile))
  await schemaRuntime.runPromise(TokenStore)
  await schemaRuntime.dispose()
  const db = new Database(rawFile)
  db.pragma("journal_mode = WAL")
  db.pragma(`busy_timeout = 5000`)
  const raw = rawStatements(db)

  const runtime = ManagedRuntime.make(layer(ourFile))
  try {
    const sessionStore = await runtime.runPromise(SessionStore)
    const tokenStore = await runtime.runPromise(TokenStore)

    // --- Sessions: both sides filled to the global limit ---------------------
    const created = await runtime.runPromise(Effect.forEach(
      Array.from({ length: SESSIONS }, (_, i) => i),
      (i) => sessionStore.create({ apiKey: `api-key-${i}`, initialized: true, protocolVersion: "2025-06-18" })
    ))
    const sessionIds = shuffled(SESSIONS).map((i) => at(created, i).session.id)
    const rawSessionIds: Array<string> = []
    db.transaction(() => {
      const now = Date.now()
      for (let i = 0; i < SESSIONS; i++) {
        const id = rawRandomToken()
        rawSessionIds.push(id)
        raw.sessionInsert.run(id, rawHash(`api-key-${i}`), null, 1, "2025-06-18", null, now, now, now + IDLE_TTL, now + ABSOLUTE_TTL, now + IDLE_TTL)
      }
    })()
    const rawSessionOrder = shuffled(SESSIONS).map((i) => at(rawSessionIds, i))

    /** A raw session read: the live row, and the same throttled, conditional touch the store does. */
    const rawSessionGet = (id: string): Session | undefined => {
      const now = Date.now()
      const row = raw.sessionGet.get(id, now)
      if (row === undefined) return undefined
      const session = toSession(row)
      if (now - session.lastAccessedAt < TOUCH_INTERVAL) return session
      const idleExpiresAt = Math.min(now + IDLE_TTL, session.absoluteExpiresAt)
      raw.sessionTouch.run(now, idleExpiresAt, idleExpiresAt, id, now - TOUCH_INTERVAL)
      return { ...session, lastAccessedAt: now, idleExpiresAt }
    }

    /** A raw create at the limits: the store's transaction, statement for statement. */
    const rawSessionCreate = (apiKey: string): Session => {
      const apiKeyHash = rawHash(apiKey)
      const id = rawRandomToken()
      const now = Date.now()
      raw.begin.run()
      raw.sessionDeleteExpiredOfKey.run(apiKeyHash, now)
      const ofKey = raw.sessionsOfKey.all(apiKeyHash)
      for (const row of ofKey.slice(0, Math.max(0, ofKey.length - 5 + 1))) raw.sessionDelete.run(row.id)
      const excess = (raw.sessionCount.get()?.n ?? 0) - SESSIONS + 1
      if (excess > 0) for (const row of raw.sessionsOldest.all(excess)) (raw.sessionDelete.run(row.id), toSession(row))
      const session: Session = {
        id,
        apiKeyHash,
        initialized: false,
        createdAt: now,
        lastAccessedAt: now,
        idleExpiresAt: now + IDLE_TTL,
        absoluteExpiresAt: now + ABSOLUTE_TTL
      }
      raw.sessionInsert.run(id, apiKeyHash, null, 0, null, null, now, now, session.idleExpiresAt, session.absoluteExpiresAt, session.idleExpiresAt)
      raw.commit.run()
      return session
    }

    // --- Access tokens: 10,000 on both sides -----------------------------------
    await runtime.runPromise(Effect.forEach(
      Array.from({ length: ACCESS_TOKENS }, (_, i) => i),
      (i) => tokenStore.saveAccessToken(accessSecret(i), accessTokenInput(i)),
      { discard: true }
    ))
    db.transaction(() => {
      const insert = db.prepare(`INSERT OR REPLACE INTO mcp_access_tokens (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`)
      const now = Date.now()
      for (let i = 0; i < ACCESS_TOKENS; i++) {
        const { ttl: _ttl, ...fields } = accessTokenInput(i)
        const record: AccessTokenRecord = { ...fields, createdAt: now, expiresAt: now + 7 * DAY }
        insert.run(rawHash(accessSecret(i)), record.grantId, JSON.stringify(record), record.expiresAt)
      }
    })()
    const lookupOrder = shuffled(ACCESS_TOKENS)

    // --- Refresh chains: one per side, rotated once per op -----------------------
    await runtime.runPromise(tokenStore.saveRefreshToken(refreshSecret("ours", 0), refreshInput))
    {
      const now = Date.now()
      const { ttl: _ttl, absoluteExpiresAt: _abs, ...fields } = refreshInput
      const record: RefreshTokenRecord = {
        ...fields,
        familyId: refreshInput.grantId,
        generation: 0,
        createdAt: now,
        expiresAt: now + 30 * DAY,
        absoluteExpiresAt: now + 30 * DAY
      }
      raw.refreshInsert.run(rawHash(refreshSecret("raw", 0)), record.grantId, JSON.stringify(record), record.expiresAt)
    }

    const cases: Array<Case> = [
      {
        name: "reference: runPromise(Effect.sync(raw get)) vs raw get (the runtime entry alone)",
        ours: (i) => runtime.runPromise(Effect.sync(() => rawSessionGet(at(rawSessionOrder, i)))),
        baseline: (i) => rawSessionGet(at(rawSessionOrder, i))
      },
      {
        name: "SessionStore.get (existing, within touch interval)",
        ours: (i) => runtime.runPromise(Effect.flatMap(SessionStore, (store) => store.get(at(sessionIds, i)))),
        baseline: (i) => rawSessionGet(at(rawSessionOrder, i)),
        aim: READ_AIM
      },
      {
        name: `TokenStore.getAccessToken (among ${ACCESS_TOKENS.toLocaleString("en-US")})`,
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.getAccessToken(accessSecret(at(lookupOrder, i))))),
        baseline: (i) => {
          const row = raw.accessGet.get(rawHash(accessSecret(at(lookupOrder, i))), Date.now())
          return row === undefined ? undefined : JSON.parse(row.body) as AccessTokenRecord
        },
        aim: READ_AIM
      },
      {
        name: "TokenStore.saveCode + consumeCode (2 calls)",
        ours: async (i) => {
          const code = codeSecret("ours", i)
          await runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.saveCode(code, codeInput)))
          return runtime.runPromise(Effect.flatMap(TokenStore, (store) => store.consumeCode(code)))
        },
        baseline: (i) => {
          const code = codeSecret("raw", i)
          const now = Date.now()
          const { ttl: _ttl, ...fields } = codeInput
          const record: AuthorizationCode = { ...fields, createdAt: now, expiresAt: now + 60_000 }
          raw.codeInsert.run(rawHash(code), record.grantId, JSON.stringify(record), record.expiresAt)
          const later = Date.now()
          const hash = rawHash(code)
          const consumed = raw.codeConsume.get(later, hash, later)
          if (consumed !== undefined) return JSON.parse(consumed.body) as AuthorizationCode
          return raw.codeReplay.get(hash, later)?.grant_id
        },
        aim: WRITE_AIM
      },
      {
        name: `SessionStore.create at capacity (${SESSIONS.toLocaleString("en-US")}, evicts 1)`,
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(SessionStore, (store) => store.create({ apiKey: `new-api-key-${i}`, initialized: false }))),
        baseline: (i) => rawSessionCreate(`new-api-key-${i}`),
        aim: WRITE_AIM
      },
      {
        name: "TokenStore.rotateRefreshToken (chain, 1 per op)",
        ours: (i) =>
          runtime.runPromise(Effect.flatMap(TokenStore, (store) =>
            store.rotateRefreshToken(refreshSecret("ours", i), {
              refreshToken: Redacted.make(refreshSecret("ours", i + 1)),
              accessToken: Redacted.make(`at-rot-${i}`)
            }))),
        baseline: (i) => {
          const hash = rawHash(refreshSecret("raw", i))
          const successor = refreshSecret("raw", i + 1)
          const successorHash = rawHash(successor)
          const envelope = rawSeal(JSON.stringify({ refreshToken: successor, accessToken: `at-rot-${i}` }), `refresh-successor:${hash}`)
          const now = Date.now()
          raw.begin.run()
          const rotated = raw.refreshRotate.get(now, successorHash, envelope, hash, now)
          if (rotated === undefined) {
            raw.commit.run()
            return undefined
          }
          const previous = JSON.parse(rotated.body) as RefreshTokenRecord
          const next: RefreshTokenRecord = {
            ...previous,
            generation: previous.generation + 1,
            createdAt: now,
            expiresAt: Math.min(now + 30 * DAY, previous.absoluteExpiresAt)
          }
          raw.refreshInsert.run(successorHash, next.grantId, JSON.stringify(next), next.expiresAt)
          raw.commit.run()
          return next
        },
        aim: WRITE_AIM
      }
    ]

    const rows = await runCases(cases, options)
    return formatTable(
      "SQLite stores: one ManagedRuntime, runPromise per op, vs raw better-sqlite3 prepared statements (same SQL, same hashing)",
      rows,
      options
    )
  } finally {
    await runtime.dispose()
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

register({ name: "sqlite", run })
