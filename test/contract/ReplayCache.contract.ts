import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import { Crypto } from "../../src/services/Crypto.ts"
import { RawStorage } from "../../src/services/RawStorage.ts"
import { ReplayCache } from "../../src/services/ReplayCache.ts"
import { StoreError } from "../../src/services/StoreError.ts"
import { advance, type Backend, concurrently, everyMinute, isAtomic, using } from "./harness.ts"

const SECOND = 1_000
const MINUTE = 60 * SECOND

/** The raw rows whose storage key (the first word) is a remembered id's (not an index that lists it). */
const replayRows = Effect.map(
  Effect.flatMap(RawStorage, (raw) => raw.dump),
  (rows) => rows.filter((row) => row.split(" ")[0]?.includes("replay:"))
)

const reasonOf = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && failure.value instanceof StoreError ? failure.value.reason : Cause.pretty(exit.cause)
}

/** The `ReplayCache` contract: single-use ids remembered for their lifetime, driven by `TestClock`. */
export const replayCacheContract = (backend: Backend) =>
  describe(`ReplayCache contract: ${backend.name}`, () => {
    it.effect("the first sighting is First, every later one Replayed until the ttl ends, at the exact instant", () =>
      using(backend)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        expect(yield* cache.remember("dpop", "jti-1", "5 minutes")).toBe("First")
        expect(yield* cache.remember("dpop", "jti-1", "5 minutes")).toBe("Replayed")
        expect(yield* cache.remember("dpop", "jti-2", "5 minutes")).toBe("First")
        yield* advance(5 * MINUTE - 1)
        expect(yield* cache.remember("dpop", "jti-1", "5 minutes")).toBe("Replayed")
        yield* advance(1)
        // Forgotten at its expiry: a new lifetime starts.
        expect(yield* cache.remember("dpop", "jti-1", "5 minutes")).toBe("First")
        expect(yield* cache.remember("dpop", "jti-1", "5 minutes")).toBe("Replayed")
      })))

    it.effect("a replay does not extend the lifetime", () =>
      using(backend)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        expect(yield* cache.remember("dpop", "jti", "1 minute")).toBe("First")
        yield* advance(30 * SECOND)
        expect(yield* cache.remember("dpop", "jti", "10 minutes")).toBe("Replayed")
        yield* advance(30 * SECOND)
        expect(yield* cache.remember("dpop", "jti", "1 minute")).toBe("First")
      })))

    it.effect("scopes are independent", () =>
      using(backend)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        expect(yield* cache.remember("dpop", "same-id", "1 minute")).toBe("First")
        expect(yield* cache.remember("client-assertion", "same-id", "1 minute")).toBe("First")
        expect(yield* cache.remember("dpop", "same-id", "1 minute")).toBe("Replayed")
      })))

    it.effect("a scope or ttl out of range is refused as Invalid", () =>
      using(backend)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        const bad: ReadonlyArray<readonly [string, Parameters<ReplayCache.Service["remember"]>[2]]> = [
          ["", "1 minute"],
          ["a b", "1 minute"],
          ["a:b", "1 minute"],
          ["x".repeat(65), "1 minute"],
          ["dpop", 0],
          ["dpop", "-1 seconds"],
          ["dpop", "366 days"],
          ["dpop", Number.POSITIVE_INFINITY]
        ]
        for (const [scope, ttl] of bad) {
          expect(reasonOf(yield* Effect.exit(cache.remember(scope, "id", ttl)))).toBe("Invalid")
        }
        expect(yield* cache.remember("dpop", "id", "365 days")).toBe("First")
        // Sub-millisecond lifetimes round up to one millisecond.
        expect(yield* cache.remember("dpop", "tiny", "0.2 millis")).toBe("First")
        expect(yield* cache.remember("dpop", "tiny", "0.2 millis")).toBe("Replayed")
        yield* advance(1)
        expect(yield* cache.remember("dpop", "tiny", "0.2 millis")).toBe("First")
      })))

    it.effect("ids are stored only as lookup hashes, under the scope's name", () =>
      using(backend)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        const crypto = yield* Crypto
        const ids = ["e1j3V_bKic8-LAEB", "user@example.com", "y".repeat(10_000)]
        for (const id of ids) yield* cache.remember("dpop", id, "1 minute")
        expect(yield* replayRows).toHaveLength(ids.length)
        const all = (yield* Effect.flatMap(RawStorage, (raw) => raw.dump)).join("\n")
        expect(all).toContain("replay:dpop:")
        for (const id of ids) {
          expect(all).not.toContain(id)
          expect(all).not.toContain(yield* crypto.hash(id))
        }
      })))

    it.effect("expired ids are swept", () =>
      using(backend, everyMinute)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        yield* cache.remember("dpop", "short", "30 seconds")
        yield* cache.remember("dpop", "long", "1 hour")
        expect(yield* replayRows).toHaveLength(2)
        yield* advance(MINUTE) // the sweeper's tick at 60 s
        expect(yield* replayRows).toHaveLength(1)
        expect(yield* cache.remember("dpop", "long", "1 hour")).toBe("Replayed")
      })))

    it.effect("100 concurrent sightings of different ids: all First", () =>
      using(backend)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        const results = yield* concurrently(100, (i) => cache.remember("dpop", `jti-${i}`, "5 minutes"))
        expect(results.every((s) => s === "First")).toBe(true)
      })))

    it.effect.skipIf(!isAtomic(backend, "replayCache"))("100 concurrent sightings of one id: exactly one First", () =>
      using(backend)(Effect.gen(function*() {
        const cache = yield* ReplayCache
        const results = yield* concurrently(100, () => cache.remember("dpop", "jti-race", "5 minutes"))
        expect(results.filter((s) => s === "First")).toHaveLength(1)
        expect(results.filter((s) => s === "Replayed")).toHaveLength(99)
      })))
  })
