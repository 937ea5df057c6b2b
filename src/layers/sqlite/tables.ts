import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { StoreError } from "../../services/StoreError.ts"

/** The default table-name prefix. */
export const DEFAULT_TABLE_PREFIX = "mcp_"

/** The names of the backend's tables under one prefix. */
export interface Tables {
  readonly transactions: string
  readonly codes: string
  readonly accessTokens: string
  readonly refreshTokens: string
  readonly grants: string
  readonly providerTokens: string
  readonly sessions: string
  readonly clients: string
  readonly signingKeys: string
  readonly rateLimits: string
  readonly replayIds: string
  /** Resumable SSE streams (`McpEventStore`) and their events. */
  readonly mcpStreams: string
  readonly mcpStreamEvents: string
  /** The migrator's own bookkeeping. */
  readonly migrations: string
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/

/** Table names for a prefix; `Invalid` unless the prefix is a plain SQL identifier (it is spliced into statements). */
export const tablesFor = (prefix: string): Effect.Effect<Tables, StoreError> =>
  prefix === "" || IDENTIFIER.test(prefix)
    ? Effect.succeed({
      transactions: `${prefix}transactions`,
      codes: `${prefix}codes`,
      accessTokens: `${prefix}access_tokens`,
      refreshTokens: `${prefix}refresh_tokens`,
      grants: `${prefix}grants`,
      providerTokens: `${prefix}provider_tokens`,
      sessions: `${prefix}sessions`,
      clients: `${prefix}clients`,
      signingKeys: `${prefix}signing_keys`,
      rateLimits: `${prefix}rate_limits`,
      replayIds: `${prefix}replay_ids`,
      mcpStreams: `${prefix}streams`,
      mcpStreamEvents: `${prefix}stream_events`,
      migrations: `${prefix}migrations`
    })
    : Effect.fail(
      new StoreError({
        reason: "Invalid",
        method: "SqliteStore.layer",
        description: "tablePrefix must be letters, digits and underscores, not starting with a digit"
      })
    )

/**
 * The schema, as migrations. Every bearer secret is a lookup hash (`hash`
 * columns); every secret value an envelope (`envelope` columns). Every lookup
 * has an index (primary keys, `grant_id` for revocation, `api_key_hash` for
 * the per-key session limit, `last_accessed_at` for the global one), and so
 * has every expiry column, which the sweep walks in bounded batches.
 * Times are epoch milliseconds from Effect's `Clock`.
 */
export const migrations = (t: Tables): Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> => ({
  "1_initial": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach([
      `CREATE TABLE ${t.transactions} (
        id TEXT PRIMARY KEY NOT NULL,
        envelope TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX ${t.transactions}_expires_at ON ${t.transactions} (expires_at)`,

      `CREATE TABLE ${t.codes} (
        hash TEXT PRIMARY KEY NOT NULL,
        grant_id TEXT NOT NULL,
        body TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        consumed_at INTEGER
      )`,
      `CREATE INDEX ${t.codes}_grant_id ON ${t.codes} (grant_id)`,
      `CREATE INDEX ${t.codes}_expires_at ON ${t.codes} (expires_at)`,

      `CREATE TABLE ${t.accessTokens} (
        hash TEXT PRIMARY KEY NOT NULL,
        grant_id TEXT NOT NULL,
        body TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX ${t.accessTokens}_grant_id ON ${t.accessTokens} (grant_id)`,
      `CREATE INDEX ${t.accessTokens}_expires_at ON ${t.accessTokens} (expires_at)`,

      `CREATE TABLE ${t.refreshTokens} (
        hash TEXT PRIMARY KEY NOT NULL,
        grant_id TEXT NOT NULL,
        body TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        rotated_at INTEGER,
        successor_hash TEXT,
        successor_envelope TEXT
      )`,
      `CREATE INDEX ${t.refreshTokens}_grant_id ON ${t.refreshTokens} (grant_id)`,
      `CREATE INDEX ${t.refreshTokens}_expires_at ON ${t.refreshTokens} (expires_at)`,
      // The sealed successor pair is needed only within the grace window: the sweep clears it after.
      `CREATE INDEX ${t.refreshTokens}_sealed_rotated_at ON ${t.refreshTokens} (rotated_at)
        WHERE successor_envelope IS NOT NULL`,

      `CREATE TABLE ${t.grants} (
        id TEXT PRIMARY KEY NOT NULL,
        body TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX ${t.grants}_expires_at ON ${t.grants} (expires_at)`,

      // The primary key's first column indexes the lookups and deletes by authorization (grant) id.
      `CREATE TABLE ${t.providerTokens} (
        authorization_id TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (authorization_id, provider_id)
      )`,
      `CREATE INDEX ${t.providerTokens}_expires_at ON ${t.providerTokens} (expires_at)`,

      `CREATE TABLE ${t.sessions} (
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
      `CREATE INDEX ${t.sessions}_api_key_hash ON ${t.sessions} (api_key_hash, last_accessed_at, created_at)`,
      `CREATE INDEX ${t.sessions}_last_accessed_at ON ${t.sessions} (last_accessed_at, created_at)`,
      `CREATE INDEX ${t.sessions}_expires_at ON ${t.sessions} (expires_at)`,

      `CREATE TABLE ${t.clients} (
        client_id TEXT PRIMARY KEY NOT NULL,
        body TEXT NOT NULL
      )`,

      `CREATE TABLE ${t.signingKeys} (
        name TEXT PRIMARY KEY NOT NULL,
        version INTEGER NOT NULL,
        envelope TEXT NOT NULL
      )`
    ], (statement) => sql.unsafe(statement), { discard: true })),

  // The RateLimiter's buckets and the ReplayCache's ids: one row per (bucket, key) or (scope, id),
  // keyed by the lookup hash (`Keys.rateLimit`, `Keys.replay`). A bucket's `expires_at` is the
  // instant it is full again (its GCRA state, see src/internal/rateLimit.ts); an id's is the end of
  // its lifetime. Both are swept by `expires_at` like every other table.
  "2_rate_limits_and_replay_ids": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach([
      `CREATE TABLE ${t.rateLimits} (
        key TEXT PRIMARY KEY NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX ${t.rateLimits}_expires_at ON ${t.rateLimits} (expires_at)`,
      `CREATE TABLE ${t.replayIds} (
        key TEXT PRIMARY KEY NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX ${t.replayIds}_expires_at ON ${t.replayIds} (expires_at)`
    ], (statement) => sql.unsafe(statement), { discard: true })),

  // Resumable SSE streams: a row per stream (its owner's hash, last sequence number, TTL and sliding expiry),
  // a row per retained event (sealed message), keyed by stream and sequence.
  "3_mcp_streams": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach([
      `CREATE TABLE ${t.mcpStreams} (
        id TEXT PRIMARY KEY NOT NULL,
        owner_hash TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        ttl INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX ${t.mcpStreams}_expires_at ON ${t.mcpStreams} (expires_at)`,
      `CREATE TABLE ${t.mcpStreamEvents} (
        stream_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        PRIMARY KEY (stream_id, seq)
      )`
    ], (statement) => sql.unsafe(statement), { discard: true })),

  // Cached Client ID Metadata Documents expire; registered clients (NULL) do not.
  "4_client_expiry": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.forEach([
      `ALTER TABLE ${t.clients} ADD COLUMN expires_at INTEGER`,
      `CREATE INDEX ${t.clients}_expires_at ON ${t.clients} (expires_at) WHERE expires_at IS NOT NULL`
    ], (statement) => sql.unsafe(statement), { discard: true }))
})
