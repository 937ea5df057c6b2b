import { Migrator, SqlClient } from "@effect/sql"
import { Config, type ConfigError, Context, type Duration, Effect, Layer, type Scope } from "effect"
import { makeLocalEventBus } from "../../internal/localEventBus.ts"
import { type RecordStores, storesContext } from "../../internal/storesContext.ts"
import { type StreamServices, streamsContext } from "../../internal/streamsContext.ts"
import { forkSweeper } from "../../internal/sweeper.ts"
import {
  resolveMcpEventBusOptions,
  resolveMcpEventStoreOptions,
  resolveSessionStoreOptions,
  resolveSweepInterval,
  resolveTokenStoreOptions,
  type StoreOptions
} from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import { StoreError } from "../../services/StoreError.ts"
import { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import { makeClientStore } from "./clientStore.ts"
import { type Db, makeDb, makeOwnedDb } from "./db.ts"
import { toStoreError } from "./storeError.ts"
import { clientOn, openConnection } from "./connection.ts"
import { makeEventStore, sweepStreams } from "./mcpEventStore.ts"
import { configure, DEFAULT_BUSY_TIMEOUT, isPlainFile, prepareFile, restrictSidecars } from "./open.ts"
import { makeMaintenance } from "./maintenance.ts"
import { makeProviderTokenStore } from "./providerTokenStore.ts"
import { makeRateLimiter } from "./rateLimiter.ts"
import { makeRawStorage } from "./rawStorage.ts"
import { makeReplayCache } from "./replayCache.ts"
import { makeSessionStore } from "./sessionStore.ts"
import { makeSigningKeyStore } from "./signingKeyStore.ts"
import { makeSweep } from "./sweep.ts"
import { DEFAULT_TABLE_PREFIX, migrations, type Tables, tablesFor } from "./tables.ts"
import { makeTokenStore } from "./tokenStore.ts"

/** Options of the stores on a `SqlClient` (`layerClient`): the tables, the lock wait, every backend's lifetimes and limits. */
export interface SqliteStoreOptions extends StoreOptions {
  /** Prefix of every table name (default `mcp_`): letters, digits and underscores. */
  readonly tablePrefix?: string
  /**
   * How long a statement waits for another process's write lock before failing
   * with `StoreError` `Unavailable` (`PRAGMA busy_timeout`; default 5 s). The
   * wait is synchronous (better-sqlite3), so keep it short.
   */
  readonly busyTimeout?: Duration.DurationInput
}

/** Options of the stores in their own database file (`layer`, `make`). */
export interface SqliteOptions extends SqliteStoreOptions {
  /** The database file (created with mode 0600, its folder if missing); `:memory:` for a private in-memory one. */
  readonly filename: string
}

/**
 * Every store the SQLite backend provides, its `StoreMaintenance`, and the
 * MCP streaming services:
 * the `McpEventStore` in the file (shared by every process on it), and an
 * in-process `McpEventBus` (processes sharing the file do not share it: use
 * Redis for that).
 */
export type SqliteStores = RecordStores | StoreMaintenance | StreamServices

const METHOD = "SqliteStore.layer"

/** Bring the schema up to date, in one `BEGIN IMMEDIATE` transaction so processes starting together take turns. */
const migrate = (sql: SqlClient.SqlClient, db: Db, t: Tables): Effect.Effect<void, StoreError> =>
  db.write(
    "SqliteStore.migrate",
    Migrator.make({})({ loader: Migrator.fromRecord(migrations(t)), table: t.migrations }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql)
    )
  ).pipe(
    Effect.catchAllDefect((defect) => Effect.fail(toStoreError("SqliteStore.migrate", defect))),
    Effect.mapError((error) =>
      error instanceof StoreError
        ? error
        : error._tag === "MigrationError"
        ? new StoreError({ reason: "Corrupt", method: "SqliteStore.migrate", description: error.reason, cause: error })
        : toStoreError("SqliteStore.migrate", error)
    ),
    Effect.asVoid
  )

/** Every store over one `SqlClient`, its migrations run, its sweep fiber forked in the current scope. */
const makeStores = (
  sql: SqlClient.SqlClient,
  db: Db,
  options: SqliteStoreOptions,
  description: string
): Effect.Effect<Context.Context<SqliteStores>, StoreError, Crypto | Scope.Scope> =>
  Effect.gen(function*() {
    const t = yield* tablesFor(options.tablePrefix ?? DEFAULT_TABLE_PREFIX)
    yield* migrate(sql, db, t)

    const tokenOptions = resolveTokenStoreOptions(options.tokens)
    const tokens = yield* makeTokenStore(db, t, tokenOptions)
    const providerTokens = yield* makeProviderTokenStore(db, t, options.providerTokens)
    const sessions = yield* makeSessionStore(db, t, resolveSessionStoreOptions(options.sessions))
    const clients = yield* makeClientStore(db, t)
    const signingKeys = yield* makeSigningKeyStore(db, t)
    const events = yield* makeEventStore(db, t, resolveMcpEventStoreOptions(options.eventStore))
    const bus = yield* makeLocalEventBus(resolveMcpEventBusOptions(options.eventBus).bufferSize)

    const sweep = Effect.zipWith(makeSweep(db, t, tokenOptions.refreshGraceWindow), sweepStreams(db, t), (a, b) => a + b)
    yield* forkSweeper("SqliteStore", resolveSweepInterval(options), sweep)

    const rateLimiter = yield* makeRateLimiter(db, t)
    const replayCache = yield* makeReplayCache(db, t)
    return storesContext({
      tokens,
      providerTokens,
      sessions,
      clients,
      signingKeys,
      rateLimiter,
      replayCache,
      raw: makeRawStorage(db, t)
    }).pipe(
      Context.add(StoreMaintenance, makeMaintenance(db, t, description)),
      Context.merge(streamsContext(bus.service, events))
    )
  })

/**
 * All the stores in one SQLite file, on a better-sqlite3 connection of their
 * own (the driver `@effect/sql-sqlite-node` runs on; statements prepared once
 * and run synchronously, see `db.ts`): WAL mode (checked), a busy timeout, migrations run at startup, atomic steps in SQL
 * (safe across processes sharing the file), expired rows swept in bounded
 * batches every `sweepInterval` (60 s). The file is created with mode 0600,
 * its folder if missing. A file that is not a SQLite database fails the layer
 * with `StoreError` `Corrupt`. Requires `Crypto`; use the same keys on every
 * start, or nothing sealed before can be opened.
 */
export const layer = (options: SqliteOptions): Layer.Layer<SqliteStores, StoreError, Crypto> => Layer.scopedContext(make(options))

/** `layer`'s work in the current scope (the database is closed when the scope closes): for composing by hand. */
export const make = (options: SqliteOptions): Effect.Effect<Context.Context<SqliteStores>, StoreError, Crypto | Scope.Scope> =>
  Effect.gen(function*() {
    yield* prepareFile(options.filename)
    const owned = yield* openConnection(options.filename)
    const client = yield* clientOn(owned)
    const db = yield* makeOwnedDb(owned)
    yield* configure(db, options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT, isPlainFile(options.filename))
    const stores = yield* makeStores(client, db, options, `sqlite ${options.filename}`)
    yield* restrictSidecars(options.filename)
    return stores
  })

/**
 * The stores on a `SqlClient` you already have (it must be SQLite: with
 * `@effect/sql-sqlite-node`, or any client of the `sqlite` dialect). Tables
 * are created under the prefix by migrations of their own. The connection's
 * journal mode is yours to choose (WAL is advised); `busyTimeout`, when given,
 * is applied to it.
 */
export const layerClient = (
  options: SqliteStoreOptions = {}
): Layer.Layer<SqliteStores, StoreError, Crypto | SqlClient.SqlClient> =>
  Layer.scopedContext(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.onDialectOrElse({
      sqlite: () => Effect.void,
      orElse: () =>
        Effect.fail(new StoreError({ reason: "Invalid", method: METHOD, description: "the SqlClient is not SQLite" }))
    })
    const db = makeDb(sql)
    if (options.busyTimeout !== undefined) yield* configure(db, options.busyTimeout, false)
    return yield* makeStores(sql, db, options, "sqlite")
  }))

/** `SQLITE_PATH`: the database file (default `./data/store.db`). */
const filenameConfig: Config.Config<string> = Config.string("SQLITE_PATH").pipe(
  Config.withDefault("./data/store.db")
)

/** `layer` with the file from `SQLITE_PATH` (default `./data/store.db`) and the other options from `config`. */
export const layerConfig = (
  config: Config.Config<SqliteStoreOptions> = Config.succeed({})
): Layer.Layer<SqliteStores, StoreError | ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(
    Effect.map(Config.all([filenameConfig, config]), ([filename, options]) => layer({ ...options, filename }))
  )
