import { Clock, Effect, Schema } from "effect"
import { LruMap } from "../../internal/lruMap.ts"
import { checkName, rateLimitKey } from "../../internal/primitiveInput.ts"
import { checkAt, consumeAt, type Gcra, makeBuckets, refundAt } from "../../internal/rateLimit.ts"
import { traced } from "../../internal/traced.ts"
import type { ResolvedRateLimiterOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { RateLimiter, RateLimitPolicy } from "../../services/RateLimiter.ts"

/** The whole state of a memory `RateLimiter`: (storage key, instant the bucket is full again), least recently used first. */
export const RateLimiterState = Schema.Array(Schema.Tuple(Schema.String, Schema.Number))
export type RateLimiterState = typeof RateLimiterState.Type
export type RateLimiterStateJson = typeof RateLimiterState.Encoded

/**
 * The memory `RateLimiter`: one number per bucket in an `LruMap`. Each
 * decision reads, decides and writes inside one synchronous step (after the
 * key is hashed), so concurrent fibers cannot both take the last token. Any
 * call on a bucket makes it the most recently used; at `maxKeys` the least
 * recently used is forgotten (see `RateLimiterOptions`).
 */
export const makeRateLimiter = (options: ResolvedRateLimiterOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const bucketOf = makeBuckets(crypto)
    const buckets = new LruMap<string, number>()
    /** Grows on every change of the state (recency moves excepted). */
    let changes = 0

    /** The bucket's state if it is not full yet; a full (expired) one is dropped. */
    const live = (key: string, now: number): number | undefined => {
      const tat = buckets.get(key)
      if (tat === undefined) return undefined
      if (now < tat) return tat
      changes++
      buckets.delete(key)
      return undefined
    }

    const store = (key: string, tat: number) => {
      changes++
      buckets.set(key, tat)
      while (buckets.size > options.maxKeys) buckets.evictOldest()
    }

    /** Run `decide` on a bucket at the Clock's now, in one synchronous step. */
    const withBucket = <A>(method: string, decide: (g: Gcra, key: string, now: number) => A) =>
    (policy: RateLimitPolicy, key: string) =>
      Effect.flatMap(bucketOf(policy, key, method), ([g, storageKey]) =>
        Effect.map(Clock.currentTimeMillis, (now) => decide(g, storageKey, now))).pipe(traced(method))

    const service: RateLimiter.Service = {
      consume: withBucket("RateLimiter.consume", (g, key, now) => {
        const { decision, next } = consumeAt(g, live(key, now), now)
        if (next !== undefined) store(key, next)
        else buckets.promote(key)
        return decision
      }),

      check: withBucket("RateLimiter.check", (g, key, now) => {
        const decision = checkAt(g, live(key, now), now)
        buckets.promote(key)
        return decision
      }),

      refund: withBucket("RateLimiter.refund", (g, key, now) => {
        const tat = live(key, now)
        if (tat === undefined) return
        const back = refundAt(g, tat, now)
        changes++
        if (back === undefined) buckets.delete(key)
        else buckets.replace(key, back)
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
      for (const [key, tat] of buckets.entries()) if (tat <= now) removed += Number(buckets.delete(key))
      if (removed > 0) changes++
      return removed
    })

    const dump = (): ReadonlyArray<string> => [...buckets.entries()].map(([key, tat]) => `${key} ${tat}`)

    /** Every bucket, least recently used first, in its encoded (JSON) form. */
    const snapshot = (): RateLimiterStateJson => [...buckets.entries()]

    /** Replace the state with a snapshot, in its order; past `maxKeys`, the most recent are kept. */
    const restore = (state: RateLimiterState): void => {
      for (const [key] of [...buckets.entries()]) buckets.delete(key)
      for (const [key, tat] of state) buckets.set(key, tat)
      while (buckets.size > options.maxKeys) buckets.evictOldest()
      changes++
    }

    return { service, sweep, dump, snapshot, restore, changes: () => changes } as const
  })
