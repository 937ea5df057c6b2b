import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { RefreshLock } from "../../src/services/RefreshLock.ts"
import { advance, concurrently } from "./harness.ts"

/** An implementation of the `RefreshLock` port under test: a fresh, isolated build per test. */
export interface RefreshLockBackend {
  readonly name: string
  readonly make: () => Layer.Layer<RefreshLock, unknown>
}

const using = (backend: RefreshLockBackend) => <A, E>(body: Effect.Effect<A, E, RefreshLock>) =>
  Effect.scoped(Effect.provide(body, Layer.fresh(backend.make()))) as Effect.Effect<A, unknown>

/**
 * The `RefreshLock` contract: one holder per key, leases that expire on their
 * own, and release by compare-and-delete on the owner token. Not yet part of
 * `storeContract`: a backend that provides the lock (Redis) adds this call.
 */
export const refreshLockContract = (backend: RefreshLockBackend) =>
  describe(`RefreshLock contract: ${backend.name}`, () => {
    it.effect("one holder per key; keys are independent", () =>
      using(backend)(Effect.gen(function*() {
        const lock = yield* RefreshLock
        const first = yield* lock.acquire("k1", "30 seconds")
        expect(Option.isSome(first)).toBe(true)
        expect(Option.isNone(yield* lock.acquire("k1", "30 seconds"))).toBe(true)
        expect(Option.isSome(yield* lock.acquire("k2", "30 seconds"))).toBe(true)
      })))

    it.effect("release is compare-and-delete on the owner token", () =>
      using(backend)(Effect.gen(function*() {
        const lock = yield* RefreshLock
        const lease = Option.getOrThrow(yield* lock.acquire("k", "30 seconds"))
        expect(yield* lock.release({ key: "k", owner: `${lease.owner}-not` })).toBe(false)
        expect(Option.isNone(yield* lock.acquire("k", "30 seconds"))).toBe(true)
        expect(yield* lock.release(lease)).toBe(true)
        expect(yield* lock.release(lease)).toBe(false)
        expect(Option.isSome(yield* lock.acquire("k", "30 seconds"))).toBe(true)
      })))

    it.effect("a lease expires on its own; its late holder cannot release the next holder's", () =>
      using(backend)(Effect.gen(function*() {
        const lock = yield* RefreshLock
        const stale = Option.getOrThrow(yield* lock.acquire("k", "2 seconds"))
        yield* advance("1 second")
        expect(Option.isNone(yield* lock.acquire("k", "2 seconds"))).toBe(true)
        yield* advance("1 second")
        const next = Option.getOrThrow(yield* lock.acquire("k", "2 seconds"))
        expect(next.owner).not.toBe(stale.owner)
        expect(yield* lock.release(stale)).toBe(false)
        expect(Option.isNone(yield* lock.acquire("k", "2 seconds"))).toBe(true)
      })))

    it.effect("50 concurrent acquirers: exactly one gets the lease", () =>
      using(backend)(Effect.gen(function*() {
        const lock = yield* RefreshLock
        const results = yield* concurrently(50, () => lock.acquire("k", "30 seconds"))
        expect(results.filter(Option.isSome)).toHaveLength(1)
      })))
  })
