import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import Database from "better-sqlite3"
import { Effect, type Scope, Stream } from "effect"
import type { StoreError } from "../../services/StoreError.ts"
import { toStoreError } from "./storeError.ts"

const METHOD = "SqliteStore.layer"

/** Past this many distinct statement texts the cache starts over (the stores use a few dozen). */
const MAX_STATEMENTS = 500

/**
 * The one better-sqlite3 connection the `layer` backend owns. Statements are
 * prepared once, on first use, and kept by their text (the stores build each
 * text once, when the layer is built), so a store operation runs them
 * synchronously with no lookup beyond a `Map` get.
 */
export interface OwnedConnection {
  /** The prepared statement for `text` (prepared now if it is new). Throws what better-sqlite3 throws. */
  readonly prepare: (text: string) => Database.Statement<Array<unknown>, unknown>
  /** The same connection as `@effect/sql` sees it (for the `Migrator`, and savepoints in a caller's transaction). */
  readonly connection: Connection
}

const sqlError = (cause: unknown): SqlError => new SqlError({ cause, message: "Failed to execute statement" })

/**
 * Open `filename` with better-sqlite3 (the driver `@effect/sql-sqlite-node`
 * runs on), WAL on (a persistent setting of the file; `:memory:` ignores it),
 * closed when the scope ends. better-sqlite3 throws on a file that is not a
 * database: that is a `StoreError` (`Corrupt`), never a crash.
 */
export const openConnection = (filename: string): Effect.Effect<OwnedConnection, StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const database = new Database(filename)
        try {
          database.pragma("journal_mode = WAL")
        } catch (error) {
          database.close()
          throw error
        }
        return database
      },
      catch: (error) => toStoreError(METHOD, error)
    }),
    (database) => Effect.sync(() => database.close())
  ).pipe(Effect.map(ownedConnection))

const ownedConnection = (database: Database.Database): OwnedConnection => {
  const statements = new Map<string, Database.Statement<Array<unknown>, unknown>>()
  const prepare = (text: string) => {
    let statement = statements.get(text)
    if (statement === undefined) {
      if (statements.size >= MAX_STATEMENTS) statements.clear()
      statement = database.prepare<Array<unknown>, unknown>(text)
      statements.set(text, statement)
    }
    return statement
  }
  const attempt = <A>(f: () => A): Effect.Effect<A, SqlError> => {
    try {
      return Effect.succeed(f())
    } catch (cause) {
      return Effect.fail(sqlError(cause))
    }
  }
  const rows = (statement: Database.Statement<Array<unknown>, unknown>, params: ReadonlyArray<unknown>) =>
    statement.reader ? statement.all(...params) as Array<object> : (statement.run(...params), [])
  const connection: Connection = {
    execute: (text, params, transformRows) =>
      Effect.suspend(() =>
        attempt(() => {
          const result = rows(prepare(text), params)
          return transformRows === undefined ? result : transformRows(result)
        })
      ),
    executeRaw: (text, params) =>
      Effect.suspend(() =>
        attempt(() => {
          const statement = prepare(text)
          return statement.reader ? statement.all(...params) : statement.run(...params)
        })
      ),
    executeValues: (text, params) =>
      Effect.suspend(() =>
        attempt(() => {
          const statement = database.prepare<Array<unknown>, Array<unknown>>(text)
          if (!statement.reader) return (statement.run(...params), [])
          return statement.raw(true).all(...params)
        })
      ),
    executeUnprepared: (text, params, transformRows) =>
      Effect.suspend(() =>
        attempt(() => {
          const result = rows(database.prepare<Array<unknown>, unknown>(text), params)
          return transformRows === undefined ? result : transformRows(result)
        })
      ),
    executeStream: () => Stream.die("executeStream is not implemented by the SQLite store's connection")
  }
  return { prepare, connection }
}

/**
 * A `SqlClient` over the owned connection, for what speaks `@effect/sql`: the
 * `Migrator`, run inside the backend's own write transaction. It takes no lock
 * of its own, and its transactions are savepoints (the backend's `BEGIN
 * IMMEDIATE` is already open): use it only inside `Db.write`, which holds the
 * connection. A failed one is rolled back to its savepoint, and the failure
 * rolls back the enclosing transaction.
 */
export const clientOn = (owned: OwnedConnection): Effect.Effect<SqlClient.SqlClient> =>
  SqlClient.make({
    acquirer: Effect.succeed(owned.connection),
    compiler: Statement.makeCompilerSqlite(),
    spanAttributes: [["db.system.name", "sqlite"]],
    beginTransaction: "SAVEPOINT effect_sql_owned",
    commit: "RELEASE effect_sql_owned",
    rollback: "ROLLBACK TO effect_sql_owned"
  }).pipe(Effect.provide(Reactivity.layer))
