import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, TestClock } from "effect"
import { openConnection } from "../src/layers/sqlite/connection.ts"
import { makeOwnedDb } from "../src/layers/sqlite/db.ts"

const ownedDb = Effect.gen(function*() {
  const owned = yield* openConnection(":memory:")
  const db = yield* makeOwnedDb(owned)
  yield* db.run("test", "CREATE TABLE t (x INTEGER)", [])
  return db
})

const count = "SELECT count(*) AS n FROM t"

describe("the SQLite backend's own connection", () => {
  it.scoped("a statement outside an open write transaction waits for it, and never sees its uncommitted rows", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const inserted = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      const writer = yield* Effect.fork(db.write(
        "test",
        Effect.gen(function*() {
          yield* db.run("test", "INSERT INTO t VALUES (1)", [])
          // Inside the transaction, statements run at once and see its own rows.
          expect((yield* db.all<{ n: number }>("test", count, []))[0]?.n).toBe(1)
          yield* Deferred.succeed(inserted, undefined)
          yield* Deferred.await(proceed)
          return yield* Effect.fail("rolled back")
        })
      ))
      yield* Deferred.await(inserted)
      const reader = yield* Effect.fork(db.all<{ n: number }>("test", count, []))
      const otherWrite = yield* Effect.fork(db.run("test", "INSERT INTO t VALUES (2)", []))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(reader))).toBe(true)
      expect(Option.isNone(yield* Fiber.poll(otherWrite))).toBe(true)
      yield* Deferred.succeed(proceed, undefined)
      expect(Exit.isFailure(yield* Fiber.await(writer))).toBe(true)
      expect((yield* Fiber.join(reader))[0]?.n).toBe(0)
      expect(yield* Fiber.join(otherWrite)).toBe(1)
      expect((yield* db.all<{ n: number }>("test", count, []))[0]?.n).toBe(1)
    }))

  it.scoped("a one-step read waits for another fiber's open transaction, and runs at once inside its own", () =>
    Effect.gen(function*() {
      const db = yield* ownedDb
      const inserted = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      const readCount = db.read<{ n: number }, number, never>("test", "SELECT count(*) + ? * 0 + ? * 0 AS n FROM t", 0, (row) =>
        Effect.succeed(row?.n ?? -1))
      const writer = yield* Effect.fork(db.write(
        "test",
        Effect.gen(function*() {
          yield* db.run("test", "INSERT INTO t VALUES (1)", [])
          expect(yield* readCount).toBe(1)
          yield* Deferred.succeed(inserted, undefined)
          yield* Deferred.await(proceed)
        })
      ))
      yield* Deferred.await(inserted)
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
      yield* Deferred.succeed(proceed, undefined)
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
