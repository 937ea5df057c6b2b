import { Clock, Effect, Schema } from "effect"
import { LruMap } from "../../internal/lruMap.ts"
import { checkName, rateLimitKey } from "../../internal/primitiveInput.ts"
import { checkAt, consumeAt, refundAt, resolvePolicy } from "../../internal/rateLimit.ts"
import { traced } from "../../internal/traced.ts"
import type { ResolvedRateLimiterOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { RateLimiter } from "../../services/RateLimiter.ts"

/** The whole state of a memory `RateLimiter`: (storage key, instant the bucket is full again), least recently used first. */
export const RateLimiterState = Schema.Array(Schema.Tuple(Schema.String, Schema.Number))
export type RateLimiterState = typeof RateLimiterState.Type
export type RateLimiterStateJson = typeof RateLimiterState.Encoded

/**
 * The memory `RateLimiter`: one number per bucket in an `LruMap`. Each
 * decision reads, decides and writes inside one synchronous step (after the
 * key is hashed), so concurrent fibers cannot both take the last token. At
 * `maxKeys` the least recently used bucket is forgotten (see
 * `RateLimiterOptions`).
 */
export const makeRateLimiter = (options: ResolvedRateLimiterOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
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

    const service: RateLimiter.Service = {
      consume: (policy, key) =>
        Effect.gen(function*() {
          const g = yield* resolvePolicy(policy, "RateLimiter.consume")
          const storageKey = yield* rateLimitKey(crypto, g.bucket, key)
          const now = yield* Clock.currentTimeMillis
          // From here to the return nothing yields: the check and the write are one step.
          const { decision, next } = consumeAt(g, live(storageKey, now), now)
          if (next !== undefined) store(storageKey, next)
          else buckets.promote(storageKey)
          return decision
        }).pipe(traced("RateLimiter.consume")),

      check: (policy, key) =>
        Effect.gen(function*() {
          const g = yield* resolvePolicy(policy, "RateLimiter.check")
          const storageKey = yield* rateLimitKey(crypto, g.bucket, key)
          const now = yield* Clock.currentTimeMillis
          const decision = checkAt(g, live(storageKey, now), now)
          buckets.promote(storageKey)
          return decision
        }).pipe(traced("RateLimiter.check")),

      refund: (policy, key) =>
        Effect.gen(function*() {
          const g = yield* resolvePolicy(policy, "RateLimiter.refund")
          const storageKey = yield* rateLimitKey(crypto, g.bucket, key)
          const now = yield* Clock.currentTimeMillis
          const tat = live(storageKey, now)
          if (tat === undefined) return
          const back = refundAt(g, tat, now)
          changes++
          if (back === undefined) buckets.delete(storageKey)
          else buckets.replace(storageKey, back)
        }).pipe(traced("RateLimiter.refund")),

      reset: (policy, key) =>
        Effect.gen(function*() {
          yield* checkName("bucket", policy.bucket, "RateLimiter.reset")
          const storageKey = yield* rateLimitKey(crypto, policy.bucket, key)
          if (buckets.delete(storageKey)) changes++
        }).pipe(traced("RateLimiter.reset"))
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
