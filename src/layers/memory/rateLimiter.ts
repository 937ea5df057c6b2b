import { Clock, Effect, Schema } from "effect"
import { LruMap } from "../../internal/lruMap.ts"
import { checkName, rateLimitKey } from "../../internal/primitiveInput.ts"
import { checkAt, consumeAt, type Gcra, makeBuckets, refundAt } from "../../internal/rateLimit.ts"
import { traced } from "../../internal/traced.ts"
import type { ResolvedRateLimiterOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { RateLimiter, RateLimitPolicy } from "../../services/RateLimiter.ts"

/** The whole state of a memory `RateLimiter`: (storage key, instant the bucket is full again), oldest first. */
export const RateLimiterState = Schema.Array(Schema.Tuple(Schema.String, Schema.Number))
export type RateLimiterState = typeof RateLimiterState.Type
export type RateLimiterStateJson = typeof RateLimiterState.Encoded

/** One bucket: its state, and whether it was used since the eviction hand last passed it. */
interface Bucket {
  tat: number
  used: boolean
}

/**
 * The memory `RateLimiter`: one bucket per key in an `LruMap` kept in
 * insertion order. Each decision reads, decides and writes inside one
 * synchronous step (after the key is hashed), so concurrent fibers cannot both
 * take the last token.
 *
 * At `maxKeys` it evicts by second chance (CLOCK), an approximation of least
 * recently used: a call on a bucket only marks it used, in place; eviction
 * takes the oldest bucket, drops it if it is full (nothing lost) or unused
 * since the last pass, and otherwise clears the mark and moves it to the back.
 * Marking in place matters: moving a key to the back on every call (delete and
 * set) makes V8 keep every deleted copy of it in its hash chain until the next
 * rehash, so one key hammered by an attacker would cost ~80 µs per call at
 * 10,000 buckets, and more with more.
 */
export const makeRateLimiter = (options: ResolvedRateLimiterOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const bucketOf = makeBuckets(crypto)
    const buckets = new LruMap<string, Bucket>()
    /** Grows on every change of the state (marks of use excepted). */
    let changes = 0

    /** The bucket if it is not full yet (marked used); a full (expired) one is dropped. */
    const live = (key: string, now: number): Bucket | undefined => {
      const bucket = buckets.get(key)
      if (bucket === undefined) return undefined
      if (now < bucket.tat) {
        bucket.used = true
        return bucket
      }
      changes++
      buckets.delete(key)
      return undefined
    }

    /** Evict while over the bound: full or unused buckets go, used ones get a second chance. */
    const evict = (now: number) => {
      while (buckets.size > options.maxKeys) {
        const oldest = buckets.evictOldest()
        if (oldest === undefined) return
        const [key, bucket] = oldest
        if (bucket.used && now < bucket.tat) {
          bucket.used = false
          buckets.set(key, bucket)
        }
      }
    }

    const store = (key: string, bucket: Bucket | undefined, tat: number, now: number) => {
      changes++
      if (bucket !== undefined) {
        bucket.tat = tat
        return
      }
      buckets.set(key, { tat, used: false })
      evict(now)
    }

    /** Run `decide` on a bucket at the Clock's now, in one synchronous step. */
    const withBucket = <A>(method: string, decide: (g: Gcra, key: string, now: number) => A) =>
    (policy: RateLimitPolicy, key: string) =>
      Effect.flatMap(bucketOf(policy, key, method), ([g, storageKey]) =>
        Effect.map(Clock.currentTimeMillis, (now) => decide(g, storageKey, now))).pipe(traced(method))

    const service: RateLimiter.Service = {
      consume: withBucket("RateLimiter.consume", (g, key, now) => {
        const bucket = live(key, now)
        const { decision, next } = consumeAt(g, bucket?.tat, now)
        if (next !== undefined) store(key, bucket, next, now)
        return decision
      }),

      check: withBucket("RateLimiter.check", (g, key, now) => checkAt(g, live(key, now)?.tat, now)),

      refund: withBucket("RateLimiter.refund", (g, key, now) => {
        const bucket = live(key, now)
        if (bucket === undefined) return
        const back = refundAt(g, bucket.tat, now)
        changes++
        if (back === undefined) buckets.delete(key)
        else bucket.tat = back
      }),

      reset: (policy, key) =>
        checkName("bucket", policy.bucket, "RateLimiter.reset").pipe(
          Effect.zipRight(rateLimitKey(crypto, policy.bucket, key)),
          Effect.map((storageKey) => {
            if (buckets.delete(storageKey)) changes++
          }),
          traced("RateLimiter.reset")
        )
    }

    /** Remove every full bucket; the number removed. */
    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      let removed = 0
      for (const [key, bucket] of buckets.entries()) if (bucket.tat <= now) removed += Number(buckets.delete(key))
      if (removed > 0) changes++
      return removed
    })

    const dump = (): ReadonlyArray<string> => [...buckets.entries()].map(([key, bucket]) => `${key} ${bucket.tat}`)

    /** Every bucket, oldest first, in its encoded (JSON) form. */
    const snapshot = (): RateLimiterStateJson => Array.from(buckets.entries(), ([key, bucket]) => [key, bucket.tat] as const)

    /** Replace the state with a snapshot, in its order; past `maxKeys`, the most recent are kept. */
    const restore = (state: RateLimiterState): void => {
      for (const [key] of [...buckets.entries()]) buckets.delete(key)
      for (const [key, tat] of state) buckets.set(key, { tat, used: false })
      while (buckets.size > options.maxKeys) buckets.evictOldest()
      changes++
    }

    return { service, sweep, dump, snapshot, restore, changes: () => changes } as const
  })
