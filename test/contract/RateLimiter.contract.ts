import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import { Crypto } from "../../src/services/Crypto.ts"
import { type RateLimitPolicy, RateLimiter } from "../../src/services/RateLimiter.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { StoreError } from "../../src/services/StoreError.ts"
import { advance, type Backend, concurrently, everyMinute, isAtomic, using } from "./harness.ts"

const SECOND = 1_000
const MINUTE = 60 * SECOND

/** 3 per minute: a token every 20 s. */
const policy = (overrides: Partial<RateLimitPolicy> = {}): RateLimitPolicy => ({
  bucket: "signin-address",
  limit: 3,
  window: "1 minute",
  ...overrides
})

const allowed = (remaining: number, resetAfterMs: number) => ({ allowed: true, limit: 3, remaining, retryAfterMs: 0, resetAfterMs })
const refused = (retryAfterMs: number, resetAfterMs: number) => ({ allowed: false, limit: 3, remaining: 0, retryAfterMs, resetAfterMs })

/** The raw rows whose storage key (the first word) is a bucket's (not an index that lists it). */
const rateLimitRows = Effect.map(
  Effect.flatMap(RawStorage, (raw) => raw.dump),
  (rows) => rows.filter((row) => row.split(" ")[0]?.includes("ratelimit:"))
)

const reasonOf = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof StoreError ? failure.value.reason : Cause.pretty(exit.cause)
}

/** The `RateLimiter` contract: a token bucket per (bucket, key), driven by `TestClock`. */
export const rateLimiterContract = (backend: Backend) =>
  describe(`RateLimiter contract: ${backend.name}`, () => {
    it.effect("a full bucket allows a burst of `limit`, then refuses with the time until the next token", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const consume = limiter.consume(policy(), "203.0.113.7")
        expect(yield* consume).toEqual(allowed(2, 20 * SECOND))
        expect(yield* consume).toEqual(allowed(1, 40 * SECOND))
        expect(yield* consume).toEqual(allowed(0, 60 * SECOND))
        expect(yield* consume).toEqual(refused(20 * SECOND, 60 * SECOND))
        // A refusal takes nothing: the next token still comes 20 s after the burst.
        yield* advance(20 * SECOND - 1)
        expect(yield* consume).toEqual(refused(1, 40 * SECOND + 1))
        yield* advance(1)
        expect(yield* consume).toEqual(allowed(0, 60 * SECOND))
        // Untouched for a window: full again.
        yield* advance(MINUTE)
        expect(yield* limiter.check(policy(), "203.0.113.7")).toEqual({ ...allowed(3, 0) })
        expect(yield* consume).toEqual(allowed(2, 20 * SECOND))
      })))

    it.effect("tokens come back one per interval, never more than `limit`", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const consume = limiter.consume(policy(), "k")
        for (let i = 0; i < 3; i++) yield* consume
        yield* advance(50 * SECOND) // two and a half intervals
        expect(yield* limiter.check(policy(), "k")).toEqual(allowed(2, 10 * SECOND))
        expect((yield* consume).allowed).toBe(true)
        expect((yield* consume).allowed).toBe(true)
        expect(yield* consume).toEqual(refused(10 * SECOND, 50 * SECOND))
        yield* advance(10 * MINUTE)
        expect((yield* limiter.check(policy(), "k")).remaining).toBe(3)
      })))

    it.effect("buckets and keys are independent", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const register = policy({ bucket: "register", limit: 1 })
        expect((yield* limiter.consume(register, "203.0.113.7")).allowed).toBe(true)
        expect((yield* limiter.consume(register, "203.0.113.7")).allowed).toBe(false)
        expect((yield* limiter.consume(register, "203.0.113.8")).allowed).toBe(true)
        expect((yield* limiter.consume({ ...register, bucket: "authorize" }, "203.0.113.7")).allowed).toBe(true)
      })))

    it.effect("check answers what consume would, and takes nothing", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        for (let i = 0; i < 5; i++) expect(yield* limiter.check(policy(), "alice")).toEqual(allowed(3, 0))
        expect(yield* limiter.consume(policy(), "alice")).toEqual(allowed(2, 20 * SECOND))
        expect(yield* limiter.check(policy(), "alice")).toEqual(allowed(2, 20 * SECOND))
        yield* limiter.consume(policy(), "alice")
        yield* limiter.consume(policy(), "alice")
        expect(yield* limiter.check(policy(), "alice")).toEqual(refused(20 * SECOND, 60 * SECOND))
        yield* advance(5 * SECOND)
        expect(yield* limiter.check(policy(), "alice")).toEqual(refused(15 * SECOND, 55 * SECOND))
      })))

    it.effect("refund gives one token back, never past a full bucket; reset fills the bucket", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const consume = limiter.consume(policy(), "alice")
        for (let i = 0; i < 3; i++) yield* consume
        expect((yield* consume).allowed).toBe(false)
        yield* limiter.refund(policy(), "alice")
        expect(yield* consume).toEqual(allowed(0, 60 * SECOND))
        for (let i = 0; i < 5; i++) yield* limiter.refund(policy(), "alice")
        expect(yield* limiter.check(policy(), "alice")).toEqual(allowed(3, 0))
        for (let i = 0; i < 3; i++) yield* consume
        yield* limiter.reset(policy(), "alice")
        expect(yield* limiter.check(policy(), "alice")).toEqual(allowed(3, 0))
        // Nothing to refund or reset: no error.
        yield* limiter.refund(policy(), "bob")
        yield* limiter.reset({ bucket: "signin-user" }, "bob")
      })))

    it.effect("the interval is window / limit rounded up to a whole millisecond", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const thirds = policy({ window: "1 second" })
        for (let i = 0; i < 3; i++) yield* limiter.consume(thirds, "k")
        expect(yield* limiter.consume(thirds, "k")).toEqual(refused(334, 1_002))
      })))

    it.effect("a policy, bucket or ttl out of range is refused as Invalid", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const bad: ReadonlyArray<RateLimitPolicy> = [
          policy({ limit: 0 }),
          policy({ limit: 1.5 }),
          policy({ limit: -1 }),
          policy({ limit: 1_000_001 }),
          policy({ limit: Number.NaN }),
          policy({ window: 0 }),
          policy({ window: "-1 seconds" }),
          policy({ window: "366 days" }),
          policy({ window: Number.POSITIVE_INFINITY }),
          policy({ bucket: "" }),
          policy({ bucket: "has space" }),
          policy({ bucket: "a:b" }),
          policy({ bucket: "x".repeat(65) })
        ]
        for (const p of bad) {
          expect(reasonOf(yield* Effect.exit(limiter.consume(p, "k")))).toBe("Invalid")
          expect(reasonOf(yield* Effect.exit(limiter.check(p, "k")))).toBe("Invalid")
          expect(reasonOf(yield* Effect.exit(limiter.refund(p, "k")))).toBe("Invalid")
        }
        expect(reasonOf(yield* Effect.exit(limiter.reset({ bucket: "a b" }, "k")))).toBe("Invalid")
        expect(reasonOf(yield* Effect.exit(limiter.consume(policy({ limit: 1_000_000, window: "365 days" }), "k")))).toBe("success")
      })))

    it.effect("keys are stored only as lookup hashes, under the bucket's name", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const crypto = yield* Crypto
        const keys = ["203.0.113.7", "alice@example.com", "2001:db8::1", "x".repeat(10_000)]
        for (const key of keys) yield* limiter.consume(policy(), key)
        const rows = yield* rateLimitRows
        expect(rows).toHaveLength(keys.length)
        const all = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).join("\n")
        expect(all).toContain("ratelimit:signin-address:")
        for (const key of keys) {
          expect(all).not.toContain(key)
          // Hashed with the bucket: never the string a bearer secret equal to the key would hash to.
          expect(all).not.toContain(yield* crypto.hash(key))
        }
        // Every stored key has the same, bounded length.
        const storageKeys = new Set(rows.map((row) => row.split(" ")[0]?.length))
        expect(storageKeys.size).toBe(1)
      })))

    it.effect("a bucket is a record until it is full again; the sweep removes it then", () =>
      using(backend, everyMinute)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        yield* limiter.consume(policy(), "a") // full again at 20 s
        yield* limiter.consume(policy({ bucket: "long", window: "2 hours", limit: 1 }), "b") // full again at 2 h
        expect(yield* rateLimitRows).toHaveLength(2)
        yield* advance(MINUTE) // the sweeper's tick at 60 s
        const rows = yield* rateLimitRows
        expect(rows).toHaveLength(1)
        expect(rows[0]).toContain("ratelimit:long:")
      })))

    it.effect.skipIf(!isAtomic(backend, "rateLimit"))("100 concurrent consumes with a limit of 10: exactly 10 allowed", () =>
      using(backend)(Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const ten = policy({ limit: 10, window: "1 hour" })
        const results = yield* concurrently(100, () => limiter.consume(ten, "203.0.113.7"))
        const passed = results.filter((d) => d.allowed)
        expect(passed).toHaveLength(10)
        // Each allowed caller took a different token.
        expect(passed.map((d) => d.remaining).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        expect(results.filter((d) => !d.allowed).every((d) => d.retryAfterMs === 6 * MINUTE)).toBe(true)
        // 100 concurrent refunds give back exactly the 10 tokens, no more.
        yield* concurrently(100, () => limiter.refund(ten, "203.0.113.7"))
        expect((yield* limiter.check(ten, "203.0.113.7")).remaining).toBe(10)
        const again = yield* concurrently(100, () => limiter.consume(ten, "203.0.113.7"))
        expect(again.filter((d) => d.allowed)).toHaveLength(10)
      })))
  })
