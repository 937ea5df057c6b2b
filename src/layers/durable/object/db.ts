/**
 * The object's SQL, over `ctx.storage.sql` (synchronous) and
 * `ctx.storage.transactionSync`. Raw `BEGIN` / `SAVEPOINT` are refused inside
 * a Durable Object, and `rowsWritten` counts index entries too, so writes that
 * need a count say `RETURNING` and count rows.
 */
import type { DurableObjectStorage, SqlStorageValue } from "@cloudflare/workers-types"
import type { Failure } from "../protocol.ts"

/** A parameter of a statement. */
export type Param = SqlStorageValue

/** A row as a statement returns it. */
export type Row = Record<string, SqlStorageValue>

export interface Db {
  /** Every row a statement returns (`SELECT`, or a write with `RETURNING`). */
  readonly all: <T extends object>(query: string, ...params: Array<Param>) => Array<T>
  /** The first row, if any. */
  readonly first: <T extends object>(query: string, ...params: Array<Param>) => T | undefined
  /** Run a statement for its effect. */
  readonly run: (query: string, ...params: Array<Param>) => void
  /** The number of rows a write with `RETURNING` returns: how many it changed. */
  readonly count: (query: string, ...params: Array<Param>) => number
  /** Run `body` in one transaction: committed if it returns, rolled back if it throws. */
  readonly transaction: <A>(body: () => A) => A
}

export const makeDb = (storage: DurableObjectStorage): Db => {
  const { sql } = storage
  return {
    all: <T extends object>(query: string, ...params: Array<Param>) => sql.exec(query, ...params).toArray() as Array<T>,
    first: <T extends object>(query: string, ...params: Array<Param>) => {
      const cursor = sql.exec(query, ...params)
      const next = cursor.next()
      return next.done === true ? undefined : next.value as T
    },
    run: (query, ...params) => {
      sql.exec(query, ...params)
    },
    count: (query, ...params) => {
      let rows = 0
      for (const _row of sql.exec(query, ...params)) rows++
      return rows
    },
    transaction: (body) => storage.transactionSync(body)
  }
}

/**
 * A failure thrown inside the object, as the layer should see it: the SQLite
 * result code as the description (never a value or a parameter). A constraint
 * is `Conflict`; a damaged database `Corrupt`; anything else (storage full,
 * an I/O error, a reset) `Unavailable`.
 */
export const failureOf = (error: unknown): Failure => {
  const message = error instanceof Error ? error.message : ""
  const code = /SQLITE_[A-Z_]+/.exec(message)?.[0]
  const reason = code === undefined
    ? "Unavailable"
    : code.startsWith("SQLITE_CONSTRAINT")
    ? "Conflict"
    : code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB"
    ? "Corrupt"
    : "Unavailable"
  return { _tag: "Failure", reason, description: code ?? "Durable Object storage error" }
}

/** A stored row the object cannot read back. */
export const corrupt = (what: string): Failure => ({ _tag: "Failure", reason: "Corrupt", description: `stored ${what} does not decode` })

/**
 * Thrown inside a transaction to roll it back and answer with `failure`
 * (`StoreObject` turns it into the call's reply).
 */
export class Abort {
  constructor(readonly failure: Failure) {}
}
