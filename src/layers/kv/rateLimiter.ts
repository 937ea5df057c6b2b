import { Clock, Effect, Option } from "effect"
import type { KeyedLock } from "../../internal/keyedLock.ts"
import { checkName, rateLimitKey } from "../../internal/primitiveInput.ts"
import { checkAt, consumeAt, makeBuckets, refundAt } from "../../internal/rateLimit.ts"
import { traced } from "../../internal/traced.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { RateLimiter } from "../../services/RateLimiter.ts"
import { StoreError } from "../../services/StoreError.ts"
import type { KvTier } from "./tier.ts"

/**
 * The KV `RateLimiter`: a bucket under `ratelimit:{bucket}:{hash}` holding the
 * instant it is full again (the value, and the expiry `e` in its metadata).
 * Approximate, as `capabilities` declares (`rateLimit`): `consume` and
 * `refund` read, decide and write, serialized per key within this instance
 * only; two instances can both take the last token, and KV's eventual
 * consistency (reads up to 60 s stale elsewhere) and its one write per second
 * per key make a busy bucket lag further across instances.
 */
export const makeRateLimiter = (tier: KvTier, crypto: Crypto.Service, lock: KeyedLock): RateLimiter.Service => {
  const bucketOf = makeBuckets(crypto)
  const readState = (method: string, key: string) =>
    Effect.flatMap(tier.get(method, key), (entry) => {
      if (Option.isNone(entry)) return Effect.succeed(undefined)
      const tat = entry.value.meta.e
      return tat !== undefined && Number.isSafeInteger(tat)
        ? Effect.succeed(tat)
        : Effect.fail(new StoreError({ reason: "Corrupt", method, description: "rate-limit state is not a number" }))
    })

  const write = (method: string, key: string, tat: number) => tier.put(method, key, String(tat), { e: tat })

  return {
    consume: (policy, key) =>
      Effect.gen(function*() {
        const method = "RateLimiter.consume"
        const [g, storageKey] = yield* bucketOf(policy, key, method)
        return yield* lock.withLock(storageKey)(Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const { decision, next } = consumeAt(g, yield* readState(method, storageKey), now)
          if (next !== undefined) yield* write(method, storageKey, next)
          return decision
        }))
      }).pipe(traced("RateLimiter.consume")),

    check: (policy, key) =>
      Effect.gen(function*() {
        const method = "RateLimiter.check"
        const [g, storageKey] = yield* bucketOf(policy, key, method)
        const tat = yield* readState(method, storageKey)
        return checkAt(g, tat, yield* Clock.currentTimeMillis)
      }).pipe(traced("RateLimiter.check")),

    refund: (policy, key) =>
      Effect.gen(function*() {
        const method = "RateLimiter.refund"
        const [g, storageKey] = yield* bucketOf(policy, key, method)
        yield* lock.withLock(storageKey)(Effect.gen(function*() {
          const tat = yield* readState(method, storageKey)
          if (tat === undefined) return
          const back = refundAt(g, tat, yield* Clock.currentTimeMillis)
          yield* back === undefined ? tier.delete(method, storageKey) : write(method, storageKey, back)
        }))
      }).pipe(traced("RateLimiter.refund")),

    reset: (policy, key) =>
      Effect.gen(function*() {
        const method = "RateLimiter.reset"
        yield* checkName("bucket", policy.bucket, method)
        const storageKey = yield* rateLimitKey(crypto, policy.bucket, key)
        yield* lock.withLock(storageKey)(tier.delete(method, storageKey))
      }).pipe(traced("RateLimiter.reset"))
  }
}
