import { Effect } from "effect"
import { checkName, rateLimitKey } from "../../internal/primitiveInput.ts"
import { makeBuckets } from "../../internal/rateLimit.ts"
import { traced } from "../../internal/traced.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { RateLimiter } from "../../services/RateLimiter.ts"
import type { Shards } from "./shards.ts"

/**
 * The Durable Object `RateLimiter`: the policy checked and the key hashed
 * here (`ratelimit:{bucket}:{hash}`), then one call to the object that holds
 * the bucket, which reads its state, decides and writes in one synchronous
 * step (`object/primitives.ts`) at the caller's `Clock` time.
 */
export const makeRateLimiter = (shards: Shards, crypto: Crypto.Service): RateLimiter.Service => {
  const bucketOf = makeBuckets(crypto)
  return {
    consume: (policy, key) =>
      Effect.flatMap(bucketOf(policy, key, "RateLimiter.consume"), ([g, storageKey]) =>
        shards.of(storageKey).call("RateLimiter.consume", (stub, ctx) => stub.consumeToken(ctx, storageKey, g))).pipe(
          traced("RateLimiter.consume")
        ),

    check: (policy, key) =>
      Effect.flatMap(bucketOf(policy, key, "RateLimiter.check"), ([g, storageKey]) =>
        shards.of(storageKey).call("RateLimiter.check", (stub, ctx) => stub.checkTokens(ctx, storageKey, g))).pipe(
          traced("RateLimiter.check")
        ),

    refund: (policy, key) =>
      Effect.flatMap(bucketOf(policy, key, "RateLimiter.refund"), ([g, storageKey]) =>
        shards.of(storageKey).call("RateLimiter.refund", (stub, ctx) => stub.refundToken(ctx, storageKey, g))).pipe(
          Effect.asVoid,
          traced("RateLimiter.refund")
        ),

    reset: (policy, key) =>
      Effect.gen(function*() {
        const method = "RateLimiter.reset"
        yield* checkName("bucket", policy.bucket, method)
        const storageKey = yield* rateLimitKey(crypto, policy.bucket, key)
        yield* shards.of(storageKey).call(method, (stub, ctx) => stub.resetBucket(ctx, storageKey))
      }).pipe(traced("RateLimiter.reset"))
  }
}
