import { SqlClient } from "@effect/sql"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Option, type Scope, TestClock } from "effect"
import { openConnection } from "../src/layers/sqlite/connection.ts"
import { changes, type Db, makeDb, makeOwnedDb, type Program, rows } from "../src/layers/sqlite/db.ts"
import { StoreError } from "../src/services/StoreError.ts"

const ownedDb = Effect.gen(function*() {
  const owned = yield* openConnection(":memory:")
  const db = yield* makeOwnedDb(owned)
  yield* db.run("test", "CREATE TABLE t (x INTEGER)", [])
  return db
})

const count = "SELECT count(*) AS n FROM t"

/**
 * A write transaction held open on another fiber: it inserts one row, runs `inside`, and once the row is in,
 * waits for `release`; then it commits, or fails (rolled back) when `rollBack`.
 */
const openWrite = (db: Effect.Effect.Success<typeof ownedDb>, options: { readonly inside?: Effect.Effect<void, StoreError>; readonly rollBack: boolean }) =>
  Effect.gen(function*() {
    const inserted = yield* Deferred.make<void>()
    const proceed = yield* Deferred.make<void>()
    const writer = yield* Effect.fork(db.write(
      "test",
      Effect.gen(function*() {
        yield* db.run("test", "INSERT INTO t VALUES (1)", [])
        yield* options.inside ?? Effect.void
        yield* Deferred.succeed(inserted, undefined)
        yield* Deferred.await(proceed)
        if (options.rollBack) return yield* Effect.fail("rolled back")
      })
    ))
    yield* Deferred.await(inserted)
    return { writer, release: Deferred.succeed(proceed, undefined) }
  })

describe("the SQLite backend's own connection", () => {
  it.scoped("a statement outside an open write transaction waits for it, and never sees its uncommitted rows", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const { release, writer } = yield* openWrite(db, {
        // Inside the transaction, statements run at once and see its own rows.
        inside: Effect.map(db.all<{ n: number }>("test", count, []), (found) => expect(found[0]?.n).toBe(1)),
        rollBack: true
      })
      const reader = yield* Effect.fork(db.all<{ n: number }>("test", count, []))
      const otherWrite = yield* Effect.fork(db.run("test", "INSERT INTO t VALUES (2)", []))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(reader))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(otherWrite))).toBe(true)
      yield* release
      expect(Exit.isFailure(yield* Fiber.await(writer))).toBe(true)
      expect((yield* Fiber.join(reader))[0]?.n).toBe(0)
      expect(yield* Fiber.join(otherWrite)).toBe(1)
      expect((yield* db.all<{ n: number }>("test", count, []))[0]?.n).toBe(1)
    }))

  it.scoped("a one-step read waits for another fiber's open transaction, and runs at once inside its own", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const readCount = db.read<{ n: number }, number, never>("test", "SELECT count(*) + ? * 0 + ? * 0 AS n FROM t", 0, (row) =>
        Effect.succeed(row?.n ?? -1))
      const { release, writer } = yield* openWrite(db, { inside: Effect.map(readCount, (n) => expect(n).toBe(1)), rollBack: false })
      const reader = yield* Effect.fork(readCount)
      const tracedReader = yield* Effect.fork(db.tracedRead<{ n: number }, number, never>(
        "test",
        "SELECT count(*) + ? * 0 + ? * 0 AS n FROM t",
        0,
        (row) => Effect.succeed(row?.n ?? -1)
      ))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(reader))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(tracedReader))).toBe(true)
      yield* release
      yield* Fiber.join(writer)
      expect(yield* Fiber.join(reader)).toBe(1)
      expect(yield* Fiber.join(tracedReader)).toBe(1)
    }))

  it.scoped("a one-step read that fails is a typed StoreError, and the time it is given is the fiber's clock", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const exit = yield* Effect.exit(db.read("test.read", "SELECT * FROM missing WHERE ? AND ?", 1, () => Effect.void))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined).toMatchObject({
        _tag: "StoreError",
        method: "test.read"
      })
      yield* TestClock.setTime(123_456)
      const seen = yield* db.read<{ now: number }, readonly [number, number], never>(
        "test",
        "SELECT ? * 0 + ? AS now",
        0,
        (row, now) => Effect.succeed([row?.now ?? -1, now] as const)
      )
      expect(seen).toEqual([123_456, 123_456])
    }))

  it.scoped("100 concurrent transactions each read then write: none sees another's rows half done", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) =>
        db.write(
          "test",
          Effect.gen(function*() {
            const before = (yield* db.all<{ n: number }>("test", count, []))[0]?.n ?? -1
            yield* Effect.yieldNow()
            yield* db.run("test", "INSERT INTO t VALUES (?)", [i])
            const after = (yield* db.all<{ n: number }>("test", count, []))[0]?.n ?? -1
            expect(after).toBe(before + 1)
          })
        ), { concurrency: "unbounded", discard: true })
      expect((yield* db.all<{ n: number }>("test", count, []))[0]?.n).toBe(100)
    }))

  it.scoped("a write inside a write is a savepoint: its failure, caught, undoes only its own rows", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      yield* db.write(
        "test",
        Effect.gen(function*() {
          yield* db.run("test", "INSERT INTO t VALUES (1)", [])
          const inner = yield* Effect.exit(db.write(
            "test",
            Effect.zipRight(db.run("test", "INSERT INTO t VALUES (2)", []), Effect.fail("inner fails"))
          ))
          expect(Exit.isFailure(inner)).toBe(true)
          yield* db.run("test", "INSERT INTO t VALUES (3)", [])
        })
      )
      expect(yield* db.all<{ x: number }>("test", "SELECT x FROM t ORDER BY x", [])).toEqual([{ x: 1 }, { x: 3 }])
    }))

  it.scoped("a waiting transaction interrupted leaves the others running: the next one begins once the open one ends", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const proceed = yield* Deferred.make<void>()
      const first = yield* Effect.fork(db.write("test", Effect.zipRight(db.run("test", "INSERT INTO t VALUES (1)", []), Deferred.await(proceed))))
      yield* Effect.yieldNow()
      const waiting = yield* Effect.fork(db.write("test", db.run("test", "INSERT INTO t VALUES (2)", [])))
      const third = yield* Effect.fork(db.write("test", db.run("test", "INSERT INTO t VALUES (3)", [])))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiting)
      yield* Deferred.succeed(proceed, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(third)
      expect(yield* db.all<{ x: number }>("test", "SELECT x FROM t ORDER BY x", [])).toEqual([{ x: 1 }, { x: 3 }])
    }))

  it.scoped("a failing statement is a typed StoreError with the SQLite code, never a defect", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const exit = yield* Effect.exit(db.all("test.method", "SELECT * FROM missing", []))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(error).toMatchObject({ _tag: "StoreError", method: "test.method" })
      }
    }))
})

/** The `Db` over a `SqlClient` (`layerClient`'s), on a private in-memory database. */
const clientDb = Effect.gen(function*() {
  const sql = Context.get(yield* Layer.build(SqliteClient.layer({ filename: ":memory:" })), SqlClient.SqlClient)
  const db = makeDb(sql)
  yield* db.run("test", "CREATE TABLE t (x INTEGER)", [])
  return db
})

const xs = (db: Db) => Effect.map(db.all<{ x: number }>("test", "SELECT x FROM t ORDER BY x", []), (found) => found.map((row) => row.x))

function* insertAll(values: ReadonlyArray<number>) {
  let inserted = 0
  for (const value of values) inserted += yield* changes("INSERT INTO t VALUES (?)", [value])
  return inserted
}

const failureOf = <A, E>(exit: Exit.Exit<A, E>): unknown =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const dbs: ReadonlyArray<readonly [string, Effect.Effect<Db, unknown, Scope.Scope>]> = [
  ["the backend's own connection", ownedDb],
  ["a SqlClient (layerClient)", clientDb]
]

for (const [name, makeTestDb] of dbs) {
  describe(`programs of statements on ${name}`, () => {
    it.scoped("transact commits every statement of a program and returns its result; `now` is the fiber's clock", () =>
      Effect.gen(function*() {
        const db = yield* makeTestDb
        yield* TestClock.setTime(42_000)
        const result = yield* db.transact("test", function*(now): Program<readonly [number, number]> {
          const inserted = yield* insertAll([1, 2, now])
          const counted = yield* rows<{ n: number }>(count, [])
          return [inserted, counted[0]?.n ?? -1] as const
        })
        expect(result).toEqual([3, 3])
        expect(yield* xs(db)).toEqual([1, 2, 42_000])
      }))

    it.scoped("a program that returns a StoreError fails with it, and its transaction is rolled back", () =>
      Effect.gen(function*() {
        const db = yield* makeTestDb
        const corrupt = new StoreError({ reason: "Corrupt", method: "test.program", description: "a bad row" })
        const exit = yield* Effect.exit(db.transact("test", function*(): Program<number> {
          yield* insertAll([1, 2])
          return corrupt
        }))
        expect(failureOf(exit)).toBe(corrupt)
        expect(yield* xs(db)).toEqual([])
      }))

    it.scoped("a statement that fails is a typed StoreError naming the method, and undoes the transaction's earlier rows", () =>
      Effect.gen(function*() {
        const db = yield* makeTestDb
        let resumedAfterFailure = false
        const exit = yield* Effect.exit(db.transact("test.method", function*(): Program<number> {
          yield* insertAll([1])
          yield* rows("SELECT * FROM missing", [])
          resumedAfterFailure = true
          return 0
        }))
        expect(failureOf(exit)).toMatchObject({ _tag: "StoreError", method: "test.method" })
        expect(resumedAfterFailure).toBe(false)
        expect(yield* xs(db)).toEqual([])
        // The connection is usable after it (no transaction left open).
        expect(yield* db.transact("test", () => insertAll([5]))).toBe(1)
        expect(yield* xs(db)).toEqual([5])
      }))

    it.scoped("transact inside a write is a savepoint: its failure undoes only its own rows", () =>
      Effect.gen(function*() {
        const db = yield* makeTestDb
        yield* db.write(
          "test",
          Effect.gen(function*() {
            yield* db.run("test", "INSERT INTO t VALUES (1)", [])
            const inner = yield* Effect.exit(db.transact("test", function*(): Program<number> {
              yield* insertAll([2])
              return new StoreError({ reason: "Conflict", method: "test", description: "inner fails" })
            }))
            expect(Exit.isFailure(inner)).toBe(true)
            expect(yield* db.transact("test", () => insertAll([3]))).toBe(1)
          })
        )
        expect(yield* xs(db)).toEqual([1, 3])
      }))

    it.scoped("steps commits each statement on its own: a later failure leaves the earlier rows", () =>
      Effect.gen(function*() {
        const db = yield* makeTestDb
        const exit = yield* Effect.exit(db.steps("test.steps", function*(): Program<number> {
          yield* insertAll([1])
          yield* rows("SELECT * FROM missing", [])
          return 0
        }))
        expect(failureOf(exit)).toMatchObject({ _tag: "StoreError", method: "test.steps" })
        expect(yield* xs(db)).toEqual([1])
      }))

    it.scoped("100 concurrent transactions each read, then write what they read: none sees another half done", () =>
      Effect.gen(function*() {
        const db = yield* makeTestDb
        yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i), () =>
          db.transact("test", function*(): Program<void> {
            const before = (yield* rows<{ n: number }>(count, []))[0]?.n ?? -1
            yield* changes("INSERT INTO t VALUES (?)", [before])
          }), { concurrency: "unbounded", discard: true })
        expect(yield* xs(db)).toEqual(Array.from({ length: 100 }, (_, i) => i))
      }))
  })
}

describe("programs on the backend's own connection", () => {
  it.scoped("transact and steps wait for another fiber's open write transaction, and never see its uncommitted rows", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const { release, writer } = yield* openWrite(db, { rollBack: true })
      function* counting() {
        return (yield* rows<{ n: number }>(count, []))[0]?.n ?? -1
      }
      const transacted = yield* Effect.fork(db.transact("test", function*(): Program<number> {
        const seen = yield* counting()
        yield* changes("INSERT INTO t VALUES (2)", [])
        return seen
      }))
      const stepped = yield* Effect.fork(db.steps("test", counting))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(transacted))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(stepped))).toBe(true)
      yield* release
      expect(Exit.isFailure(yield* Fiber.await(writer))).toBe(true)
      expect(yield* Fiber.join(transacted)).toBe(0)
      expect(yield* Fiber.join(stepped)).toBeLessThanOrEqual(1)
      expect(yield* xs(db)).toEqual([2])
    }))

  it.scoped("a program that throws rolls its transaction back (a defect), and the connection stays usable", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const exit = yield* Effect.exit(db.transact("test", function*(): Program<number> {
        yield* insertAll([1])
        throw new Error("a bug in the program")
      }))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(yield* xs(db)).toEqual([])
      expect(yield* db.transact("test", () => insertAll([2]))).toBe(1)
      expect(yield* xs(db)).toEqual([2])
    }))
})
