/**
 * The object's tables, as migrations applied when the object starts. The same
 * layout as the SQLite backend's (`src/layers/sqlite/tables.ts`): bearer
 * secrets only as lookup hashes (`hash` columns), secret values only as
 * `Crypto` envelopes (`envelope` columns), an index for every lookup (grant
 * ids for revocation, API-key hashes for the per-key session limit, last
 * access for the global one) and for every expiry column the sweeps walk.
 * Times are epoch milliseconds of the callers' `Clock`.
 */
import type { Failure } from "../protocol.ts"
import type { Db } from "./db.ts"

/** Table names (one object holds one store, so no prefix is needed; `mcp_` keeps clear of anything a subclass adds). */
export const T = {
  transactions: "mcp_transactions",
  codes: "mcp_codes",
  accessTokens: "mcp_access_tokens",
  refreshTokens: "mcp_refresh_tokens",
  grants: "mcp_grants",
  providerTokens: "mcp_provider_tokens",
  sessions: "mcp_sessions",
  clients: "mcp_clients",
  signingKeys: "mcp_signing_keys",
  /** `RateLimiter` buckets: the instant each is full again. */
  rateLimits: "mcp_rate_limits",
  /** `ReplayCache` ids: the end of each one's lifetime. */
  replayIds: "mcp_replay_ids",
  /** The schema version and the alarm's plan. */
  meta: "mcp_meta"
} as const

/** Tables whose rows expire (`expires_at`), in the order sweeps walk them. */
export const EXPIRING = [
  T.transactions,
  T.codes,
  T.accessTokens,
  T.refreshTokens,
  T.grants,
  T.providerTokens,
  T.sessions,
  T.rateLimits,
  T.replayIds,
  // Only cached Client ID Metadata Documents have an expiry: `expires_at <= ?` never matches a NULL.
  T.clients
] as const

/** Each migration is a list of statements; the index + 1 is the schema version it brings. */
const migrations: ReadonlyArray<ReadonlyArray<string>> = [
  [
    `CREATE TABLE ${T.transactions} (
      id TEXT PRIMARY KEY NOT NULL,
      envelope TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    )`,
    `CREATE INDEX ${T.transactions}_expires_at ON ${T.transactions} (expires_at)`,

    `CREATE TABLE ${T.codes} (
      hash TEXT PRIMARY KEY NOT NULL,
      grant_id TEXT NOT NULL,
      body TEXT NOT NULL,
      expires_at INTEGER NOT NULL,
      consumed_at INTEGER
    )`,
    `CREATE INDEX ${T.codes}_grant_id ON ${T.codes} (grant_id)`,
    `CREATE INDEX ${T.codes}_expires_at ON ${T.codes} (expires_at)`,

    `CREATE TABLE ${T.accessTokens} (
      hash TEXT PRIMARY KEY NOT NULL,
      grant_id TEXT NOT NULL,
      body TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    )`,
    `CREATE INDEX ${T.accessTokens}_grant_id ON ${T.accessTokens} (grant_id)`,
    `CREATE INDEX ${T.accessTokens}_expires_at ON ${T.accessTokens} (expires_at)`,

    `CREATE TABLE ${T.refreshTokens} (
      hash TEXT PRIMARY KEY NOT NULL,
      grant_id TEXT NOT NULL,
      body TEXT NOT NULL,
      expires_at INTEGER NOT NULL,
      rotated_at INTEGER,
      successor_hash TEXT,
      successor_envelope TEXT
    )`,
    `CREATE INDEX ${T.refreshTokens}_grant_id ON ${T.refreshTokens} (grant_id)`,
    `CREATE INDEX ${T.refreshTokens}_expires_at ON ${T.refreshTokens} (expires_at)`,
    // The sealed successor pair is needed only within the grace window: sweeps clear it after.
    `CREATE INDEX ${T.refreshTokens}_sealed_rotated_at ON ${T.refreshTokens} (rotated_at)
      WHERE successor_envelope IS NOT NULL`,

    `CREATE TABLE ${T.grants} (
      id TEXT PRIMARY KEY NOT NULL,
      body TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    )`,
    `CREATE INDEX ${T.grants}_expires_at ON ${T.grants} (expires_at)`,

    // The primary key's first column indexes the lookups and deletes by authorization (grant) id.
    `CREATE TABLE ${T.providerTokens} (
      authorization_id TEXT NOT NULL,
      provider_id TEXT NOT NULL,
      envelope TEXT NOT NULL,
      expires_at INTEGER NOT NULL,
      PRIMARY KEY (authorization_id, provider_id)
    )`,
    `CREATE INDEX ${T.providerTokens}_expires_at ON ${T.providerTokens} (expires_at)`,

    `CREATE TABLE ${T.sessions} (
      id TEXT PRIMARY KEY NOT NULL,
      api_key_hash TEXT NOT NULL,
      subject TEXT,
      initialized INTEGER NOT NULL,
      protocol_version TEXT,
      client_info TEXT,
      created_at INTEGER NOT NULL,
      last_accessed_at INTEGER NOT NULL,
      idle_expires_at INTEGER NOT NULL,
      absolute_expires_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    )`,
    `CREATE INDEX ${T.sessions}_api_key_hash ON ${T.sessions} (api_key_hash, last_accessed_at, created_at)`,
    `CREATE INDEX ${T.sessions}_last_accessed_at ON ${T.sessions} (last_accessed_at, created_at)`,
    `CREATE INDEX ${T.sessions}_expires_at ON ${T.sessions} (expires_at)`,

    `CREATE TABLE ${T.clients} (
      client_id TEXT PRIMARY KEY NOT NULL,
      body TEXT NOT NULL
    )`,

    `CREATE TABLE ${T.signingKeys} (
      name TEXT PRIMARY KEY NOT NULL,
      version INTEGER NOT NULL,
      envelope TEXT NOT NULL
    )`
  ],
  // The RateLimiter's buckets and the ReplayCache's ids, as in the SQLite backend (its migration
  // `2_rate_limits_and_replay_ids`): one row per (bucket, key) or (scope, id) under its storage key
  // (`Keys.rateLimit`, `Keys.replay`: names and lookup hashes only), swept by `expires_at`.
  [
    `CREATE TABLE ${T.rateLimits} (
      key TEXT PRIMARY KEY NOT NULL,
      expires_at INTEGER NOT NULL
    )`,
    `CREATE INDEX ${T.rateLimits}_expires_at ON ${T.rateLimits} (expires_at)`,
    `CREATE TABLE ${T.replayIds} (
      key TEXT PRIMARY KEY NOT NULL,
      expires_at INTEGER NOT NULL
    )`,
    `CREATE INDEX ${T.replayIds}_expires_at ON ${T.replayIds} (expires_at)`
  ],
  // Cached Client ID Metadata Documents expire; registered clients (NULL) do not. As the SQLite
  // backend's migration `4_client_expiry`.
  [
    `ALTER TABLE ${T.clients} ADD COLUMN expires_at INTEGER`,
    `CREATE INDEX ${T.clients}_expires_at ON ${T.clients} (expires_at) WHERE expires_at IS NOT NULL`
  ]
]

/** The schema version this code writes. */
export const SCHEMA_VERSION = migrations.length

/**
 * Bring the object's schema up to date, in one transaction (`PRAGMA
 * user_version` is not authorized in a Durable Object: the version lives in
 * the meta table). Synchronous: run from the constructor, before any call.
 * A schema newer than this code (a rollback of the Worker) is `Corrupt`:
 * the object then answers every call with that failure and changes nothing.
 */
export const migrate = (db: Db): Failure | undefined =>
  db.transaction(() => {
    db.run(`CREATE TABLE IF NOT EXISTS ${T.meta} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)`)
    const stored = db.first<{ readonly value: string }>(`SELECT value FROM ${T.meta} WHERE key = 'schema_version'`)
    const version = stored === undefined ? 0 : Number(stored.value)
    if (!Number.isInteger(version) || version < 0 || version > SCHEMA_VERSION) {
      return {
        _tag: "Failure",
        reason: "Corrupt",
        description: `the object's schema version is ${stored?.value}; this code knows up to ${SCHEMA_VERSION}`
      } satisfies Failure
    }
    for (const statements of migrations.slice(version)) {
      for (const statement of statements) db.run(statement)
    }
    db.run(
      `INSERT INTO ${T.meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      String(SCHEMA_VERSION)
    )
    return undefined
  })
