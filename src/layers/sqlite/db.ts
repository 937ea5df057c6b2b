import { SqlClient } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit, type Fiber, Option } from "effect"
import { StoreError } from "../../services/StoreError.ts"
import type { OwnedConnection } from "./connection.ts"
import { nowOf, withNow } from "../../internal/now.ts"
import { isTracing, traced, withOperationSpan } from "../../internal/traced.ts"
import { toStoreError } from "./storeError.ts"

/** A statement a `Program` asks its `Db` to run: `all` answers with the rows, `run` with the number of rows changed. */
export interface Statement {
  readonly kind: "all" | "run"
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

/**
 * Store logic over several statements, written once for both `Db`s: a generator that asks for each statement
 * (`yield* rows(...)`, `yield* changes(...)`) and returns its result, or a `StoreError` (a `Corrupt` row, say) that
 * fails it. The backend's own connection runs a program whole, in one step of the calling fiber (no Effect
 * step per statement); a client's `Db` runs its statements one Effect after another. A program holds no
 * resources (no `finally`): after a failed statement it is not resumed.
 */
export type Program<A> = Generator<Statement, A | StoreError, unknown>

/** In a `Program`: the rows of a statement (`SELECT`, or a write with `RETURNING`). */
export function* rows<A extends object>(text: string, params: ReadonlyArray<unknown>): Generator<Statement, ReadonlyArray<A>, unknown> {
  return (yield { kind: "all", text, params }) as ReadonlyArray<A>
}

/** In a `Program`: run a write without `RETURNING`; the number of rows it changed. */
export function* changes(text: string, params: ReadonlyArray<unknown>): Generator<Statement, number, unknown> {
  return (yield { kind: "run", text, params }) as number
}

/**
 * How the SQLite stores talk to the database: statements with positional
 * parameters on a `SqlClient` connection, and write transactions that begin
 * with `BEGIN IMMEDIATE`.
 *
 * Why not `sql.withTransaction`: `@effect/sql-sqlite-node` begins with a plain
 * (deferred) `BEGIN`, and in WAL mode a deferred transaction that reads and
 * then writes fails with `SQLITE_BUSY_SNAPSHOT` when another process wrote in
 * between (no busy wait helps). `BEGIN IMMEDIATE` takes the write lock first
 * (waiting up to the busy timeout), so every read inside sees the state it
 * then writes over. Inside this process, a transaction holds the connection
 * (the client's permit, or for the owned connection the mark of its fiber)
 * until it ends, so no other fiber's statement runs in between.
 */
export interface Db {
  /** The rows a statement returns (`SELECT`, or a write with `RETURNING`). */
  readonly all: <A extends object>(method: string, text: string, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<A>, StoreError>
  /** Run a write without `RETURNING`; the number of rows it changed. */
  readonly run: (method: string, text: string, params: ReadonlyArray<unknown>) => Effect.Effect<number, StoreError>
  /**
   * A hot read: the clock's time, the first row of `text` (its parameters: `key`, then that time) and `then`
   * on the row, in ONE step of the calling fiber on the owned connection (no step in between, so what `then`
   * returns is all that runs after it). Like `all`, it waits while another fiber's write transaction is open.
   */
  readonly read: <A extends object, B, E>(
    method: string,
    text: string,
    key: unknown,
    then: (row: A | undefined, now: number) => Effect.Effect<B, E>
  ) => Effect.Effect<B, E | StoreError>
  /** `read` as a public operation: a span named `method` around it when the application has installed a tracer. */
  readonly tracedRead: <A extends object, B, E>(
    method: string,
    text: string,
    key: unknown,
    then: (row: A | undefined, now: number) => Effect.Effect<B, E>
  ) => Effect.Effect<B, E | StoreError>
  /**
   * Run `body` in one write transaction (`BEGIN IMMEDIATE` ... `COMMIT`),
   * rolled back if it fails or is interrupted. Inside a transaction already
   * (a caller's `sql.withTransaction`, or a `write` of the same fiber), it
   * becomes a savepoint of that one.
   */
  readonly write: <A, E>(method: string, body: Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
  /**
   * `program(now)` (the time by the fiber's clock), its statements one after another, each committing on its
   * own: for steps that need no atomicity across their statements (or have one). On the owned connection the
   * whole program is one step (no other fiber's statement in between); like `all`, it waits while another
   * fiber's write transaction is open.
   */
  readonly steps: <A>(method: string, program: (now: number) => Program<A>) => Effect.Effect<A, StoreError>
  /**
   * `program(now)` in one write transaction, like `write`: `BEGIN IMMEDIATE`, its statements, `COMMIT`; rolled
   * back when it returns a `StoreError` or a statement fails (a savepoint inside a transaction already). On the
   * owned connection all of it runs in one step of the calling fiber, so nothing can interrupt it half-way.
   */
  readonly transact: <A>(method: string, program: (now: number) => Program<A>) => Effect.Effect<A, StoreError>
}

/** A program's result as an Effect: a returned `StoreError` fails it. */
const settle = <A>(result: A | StoreError): Effect.Effect<A, StoreError> =>
  result instanceof StoreError ? Effect.fail(result) : Effect.succeed(result)

/** A program run one Effect per statement, over `all` and `run` (the client's `Db`). */
const stepwise = <A>(db: Pick<Db, "all" | "run">, method: string, program: Program<A>): Effect.Effect<A, StoreError> => {
  const resume = (answer: unknown): Effect.Effect<A, StoreError> => {
    const next = program.next(answer)
    if (next.done) return settle(next.value)
    const { kind, params, text } = next.value
    return Effect.flatMap(kind === "all" ? db.all(method, text, params) : db.run(method, text, params), resume)
  }
  return Effect.suspend(() => resume(undefined))
}

const changesOf = (result: unknown): number =>
  typeof result === "object" && result !== null && "changes" in result && typeof result.changes === "number"
    ? result.changes
    : 0

const isSqlError = (error: unknown): error is SqlError =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "SqlError"

/** A transaction's body, run on `conn` (statements inside see `TransactionConnection` and use it directly). */
const transaction = <A, E>(
  conn: Connection,
  method: string,
  body: Effect.Effect<A, E>
): Effect.Effect<A, E | StoreError> => {
  // Prepared once and cached by the connection, like every other statement.
  const control = (text: string) => Effect.mapError(conn.execute(text, [], undefined), (error) => toStoreError(method, error))
  return Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      yield* control("BEGIN IMMEDIATE")
      const exit = yield* Effect.exit(
        restore(body).pipe(Effect.provideService(SqlClient.TransactionConnection, [conn, 0] as const))
      )
      if (Exit.isFailure(exit)) {
        yield* Effect.ignore(control("ROLLBACK"))
        return yield* exit
      }
      const committed = yield* Effect.exit(control("COMMIT"))
      if (Exit.isFailure(committed)) {
        yield* Effect.ignore(control("ROLLBACK"))
        return yield* Effect.failCause(committed.cause)
      }
      return exit.value
    })
  )
}

/** Inside a caller's transaction already: a savepoint of it. */
const nested = <A, E>(sql: SqlClient.SqlClient, method: string, body: Effect.Effect<A, E>) =>
  Effect.mapError(
    sql.withTransaction(body),
    (error) => error instanceof StoreError ? error : isSqlError(error) ? toStoreError(method, error) : error
  )

/**
 * The `Db` over a `SqlClient` that others may share (`layerClient`): every
 * statement goes through the client (`sql.unsafe`), each write transaction
 * reserves the client's connection for its duration.
 */
export const makeDb = (sql: SqlClient.SqlClient): Db => {
  const fail = (method: string) => (error: SqlError) => toStoreError(method, error)
  const all = <A extends object>(method: string, text: string, params: ReadonlyArray<unknown>) =>
    Effect.mapError(sql.unsafe<A>(text, params), fail(method))
  const read = <A extends object, B, E>(
    method: string,
    text: string,
    key: unknown,
    then: (row: A | undefined, now: number) => Effect.Effect<B, E>
  ): Effect.Effect<B, E | StoreError> =>
    Effect.withFiberRuntime((fiber) => {
      const now = nowOf(fiber)
      return Effect.flatMap(all<A>(method, text, [key, now]), (rows) => then(rows[0], now))
    })
  const run = (method: string, text: string, params: ReadonlyArray<unknown>) =>
    sql.unsafe(text, params).raw.pipe(Effect.map(changesOf), Effect.mapError(fail(method)))
  const write = <A, E>(method: string, body: Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
    Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer) =>
      Option.isSome(outer)
        ? nested(sql, method, body)
        : Effect.scoped(Effect.flatMap(Effect.mapError(sql.reserve, fail(method)), (conn) => transaction(conn, method, body))))
  const statements = { all, run }
  return {
    all,
    read,
    tracedRead: (method, text, key, then) => traced(method)(read(method, text, key, then)),
    run,
    write,
    steps: (method, program) => withNow((now) => stepwise(statements, method, program(now))),
    transact: (method, program) => write(method, withNow((now) => stepwise(statements, method, program(now))))
  }
}

/**
 * The `Db` over the connection the backend owns alone (`layer`): statements
 * prepared once and run synchronously, each in one step of the calling fiber.
 *
 * Isolation inside the process: better-sqlite3 is synchronous, so a statement
 * outside a transaction runs whole, with no other fiber in between, and so
 * does a `Program` (`steps`, and `transact` from `BEGIN IMMEDIATE` to its
 * end). Only a `write` transaction spans several steps (other fibers run between its
 * statements), and on one connection they would see its uncommitted rows. So
 * an open transaction is marked by the fiber that runs it: a statement checks
 * the mark in the same step it runs in, and runs at once when no transaction
 * is open (no lock taken: the common case) or when it is the transaction's
 * own; any other fiber's statement or transaction waits until the open one
 * ends. The bodies given to `write` run on their fiber (they fork nothing). A
 * `write` inside a write is a savepoint of it.
 *
 * Why not a `Semaphore` and `TransactionConnection` in the context, as the
 * client's transactions do: around an empty transaction they cost ~15 µs,
 * as much as a statement (issue 14).
 */
export const makeOwnedDb = (owned: OwnedConnection): Effect.Effect<Db> =>
  Effect.sync(() => {
    /** The fiber running this connection's open write transaction (between `BEGIN IMMEDIATE` and its end). */
    let owner: Fiber.RuntimeFiber<unknown, unknown> | undefined
    let savepoints = 0
    /** Fibers waiting for the open transaction to end: all woken when it does, each checks again. */
    const waiters = new Set<() => void>()
    const ended: Effect.Effect<void> = Effect.async<void>((resume) => {
      // Checked again here: the fiber may have yielded between its check and this registration.
      if (owner === undefined) return resume(Effect.void)
      const wake = () => resume(Effect.void)
      waiters.add(wake)
      return Effect.sync(() => {
        waiters.delete(wake)
      })
    })
    const end = (): void => {
      owner = undefined
      const woken = [...waiters]
      waiters.clear()
      for (const wake of woken) wake()
    }

    const attempt = <A>(method: string, f: () => A): Effect.Effect<A, StoreError> => {
      try {
        return Effect.succeed(f())
      } catch (error) {
        return Effect.fail(toStoreError(method, error))
      }
    }

    /** Run `f` now if no transaction is open (or this fiber runs it); otherwise once the open one has ended. */
    const step = <A>(method: string, f: () => A): Effect.Effect<A, StoreError> =>
      Effect.withFiberRuntime((fiber) =>
        owner === undefined || owner === fiber ? attempt(method, f) : Effect.zipRight(ended, step(method, f))
      )

    /** Run a control statement now; the error, if it fails. */
    const control = (method: string, text: string): StoreError | undefined => {
      try {
        owned.prepare(text).run()
        return undefined
      } catch (error) {
        return toStoreError(method, error)
      }
    }

    /** A transaction's body, then `COMMIT`, or `ROLLBACK` on failure, interruption, or a failed commit. */
    const finish = <A, E>(method: string, exit: Exit.Exit<A, E>): Exit.Exit<A, E | StoreError> => {
      if (Exit.isFailure(exit)) {
        control(method, "ROLLBACK")
        return exit
      }
      const notCommitted = control(method, "COMMIT")
      if (notCommitted === undefined) return exit
      control(method, "ROLLBACK")
      return Exit.fail(notCommitted)
    }

    const transaction = <A, E>(method: string, body: Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.withFiberRuntime<A, E | StoreError>((fiber) => {
          if (owner !== undefined) return Effect.zipRight(restore(ended), transaction(method, body))
          const notBegun = control(method, "BEGIN IMMEDIATE")
          if (notBegun !== undefined) return Effect.fail(notBegun)
          owner = fiber
          return Effect.flatMap(Effect.exit(restore(body)), (exit) => {
            const outcome = finish(method, exit)
            end()
            return outcome
          })
        })
      )

    /** Inside the open transaction already: a savepoint of it. */
    const savepoint = <A, E>(method: string, body: Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const name = `mcp_store_savepoint_${++savepoints}`
          const notSaved = control(method, `SAVEPOINT ${name}`)
          if (notSaved !== undefined) {
            savepoints--
            return Effect.fail(notSaved)
          }
          return Effect.flatMap(Effect.exit(restore(body)), (exit): Exit.Exit<A, E | StoreError> => {
            if (Exit.isFailure(exit)) control(method, `ROLLBACK TO ${name}`)
            const notReleased = control(method, `RELEASE ${name}`)
            savepoints--
            return notReleased === undefined || Exit.isFailure(exit) ? exit : Exit.fail(notReleased)
          })
        })
      )

    /** A program's statements, run now: its result, or the failure of the statement that failed (the program ends there). */
    const drive = <A>(method: string, program: Program<A>): A | StoreError => {
      let next = program.next()
      while (!next.done) {
        const { kind, params, text } = next.value
        let answer: unknown
        try {
          const statement = owned.prepare(text)
          answer = kind === "all" ? statement.all(...params) : statement.run(...params).changes
        } catch (error) {
          return toStoreError(method, error)
        }
        next = program.next(answer)
      }
      return next.value
    }

    const steps = <A>(method: string, program: (now: number) => Program<A>): Effect.Effect<A, StoreError> =>
      Effect.withFiberRuntime((fiber) =>
        owner !== undefined && owner !== fiber
          ? Effect.zipRight(ended, steps(method, program))
          : settle(drive(method, program(nowOf(fiber))))
      )

    /** `drive` in an open transaction or savepoint: then `close` it when the program succeeds, `undo` it when it fails or throws (rethrown). */
    const bracketed = <A>(
      method: string,
      program: Program<A>,
      close: () => StoreError | undefined,
      undo: () => void
    ): A | StoreError => {
      let result: A | StoreError
      try {
        result = drive(method, program)
      } catch (defect) {
        undo()
        throw defect
      }
      if (result instanceof StoreError) {
        undo()
        return result
      }
      const notClosed = close()
      if (notClosed === undefined) return result
      undo()
      return notClosed
    }

    // One step: no other fiber runs between `BEGIN IMMEDIATE` and the end, so no mark of an owner is needed.
    const transact = <A>(method: string, program: (now: number) => Program<A>): Effect.Effect<A, StoreError> =>
      Effect.withFiberRuntime((fiber) => {
        if (owner !== undefined && owner === fiber) {
          // Inside this fiber's open transaction: a savepoint of it.
          const name = `mcp_store_savepoint_${++savepoints}`
          const notSaved = control(method, `SAVEPOINT ${name}`)
          if (notSaved !== undefined) {
            savepoints--
            return Effect.fail(notSaved)
          }
          try {
            return settle(bracketed(method, program(nowOf(fiber)), () => control(method, `RELEASE ${name}`), () => {
              control(method, `ROLLBACK TO ${name}`)
              control(method, `RELEASE ${name}`)
            }))
          } finally {
            savepoints--
          }
        }
        if (owner !== undefined) return Effect.zipRight(ended, transact(method, program))
        const notBegun = control(method, "BEGIN IMMEDIATE")
        if (notBegun !== undefined) return Effect.fail(notBegun)
        return settle(bracketed(method, program(nowOf(fiber)), () => control(method, "COMMIT"), () => {
          control(method, "ROLLBACK")
        }))
      })

    /** `read`'s step: waits (and comes back) while another fiber's transaction is open, else runs whole now. */
    const readStep = <A extends object, B, E>(
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      method: string,
      text: string,
      key: unknown,
      then: (row: A | undefined, now: number) => Effect.Effect<B, E>
    ): Effect.Effect<B, E | StoreError> => {
      if (owner !== undefined && owner !== fiber) return Effect.zipRight(ended, read(method, text, key, then))
      const now = nowOf(fiber)
      let row: A | undefined
      try {
        row = owned.prepare(text).get(key, now) as A | undefined
      } catch (error) {
        return Effect.fail(toStoreError(method, error))
      }
      return then(row, now)
    }
    const read = <A extends object, B, E>(
      method: string,
      text: string,
      key: unknown,
      then: (row: A | undefined, now: number) => Effect.Effect<B, E>
    ): Effect.Effect<B, E | StoreError> => Effect.withFiberRuntime((fiber) => readStep(fiber, method, text, key, then))

    return {
      all: <A extends object>(method: string, text: string, params: ReadonlyArray<unknown>) =>
        step(method, () => owned.prepare(text).all(...params) as ReadonlyArray<A>),
      read,
      // The tracer check is in the same step: a span only when one is installed.
      tracedRead: <A extends object, B, E>(
        method: string,
        text: string,
        key: unknown,
        then: (row: A | undefined, now: number) => Effect.Effect<B, E>
      ): Effect.Effect<B, E | StoreError> =>
        Effect.withFiberRuntime((fiber) =>
          isTracing(fiber)
            ? withOperationSpan(read(method, text, key, then), method)
            : readStep(fiber, method, text, key, then)
        ),
      run: (method, text, params) => step(method, () => owned.prepare(text).run(...params).changes),
      write: <A, E>(method: string, body: Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
        Effect.withFiberRuntime<A, E | StoreError>((fiber) =>
          owner !== undefined && owner === fiber ? savepoint(method, body) : transaction(method, body)
        ),
      steps,
      transact
    } satisfies Db
  })

/** Spans for public operations: see `src/internal/traced.ts`. */
export { traced } from "../../internal/traced.ts"
