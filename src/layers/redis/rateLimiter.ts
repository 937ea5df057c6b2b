import { Clock, Effect, Either } from "effect"
import { checkName, rateLimitKey } from "../../internal/primitiveInput.ts"
import { checkAt, consumeAt, makeBuckets } from "../../internal/rateLimit.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { RateLimiter } from "../../services/RateLimiter.ts"
import { type RedisClient, traced } from "./client.ts"
import { array, corrupt, int } from "./codec.ts"
import * as Lua from "./lua.ts"

/**
 * The Redis `RateLimiter`, shared by every instance on the same Redis and
 * prefix: a bucket is a string under `<prefix>ratelimit:{bucket}:{hash}`
 * holding the instant it is full again, with `PX` until then and a place in
 * the `expiry` index the sweep walks. `consume` and `refund` are one script
 * each (the decision made in Lua with `now` from Effect's `Clock`, never Redis
 * `TIME`, so `TestClock` drives it and every backend decides alike); `check`
 * is one `GET`, `reset` one script.
 */
export const makeRateLimiter = (client: RedisClient) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const bucketOf = makeBuckets(crypto)

    const service: RateLimiter.Service = {
      consume: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.consume"
          const [g, m] = yield* bucketOf(policy, key, method)
          const now = yield* Clock.currentTimeMillis
          const reply = yield* Either.flatMap(
            array(yield* client.run(method, Lua.consumeToken, [m, now, g.interval, g.capacity]), method),
            (fields) => {
              const taken = int(fields[0])
              const state = int(fields[1])
              return (taken === 0 || taken === 1) && Number.isSafeInteger(state)
                ? Either.right({ taken: taken === 1, state })
                : Either.left(corrupt(method))
            }
          )
          // Taken: the state before was `state - interval` (or now, for a full bucket).
          return consumeAt(g, reply.taken ? reply.state - g.interval : reply.state, now).decision
        }).pipe(traced("RateLimiter.consume")),

      check: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.check"
          const [g, m] = yield* bucketOf(policy, key, method)
          const now = yield* Clock.currentTimeMillis
          const stored = yield* client.call(method, (redis) => redis.get(client.prefix + m))
          if (stored === null) return checkAt(g, undefined, now)
          const tat = int(stored)
          if (!Number.isSafeInteger(tat)) return yield* Effect.fail(corrupt(method))
          return checkAt(g, tat, now)
        }).pipe(traced("RateLimiter.check")),

      refund: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.refund"
          const [g, m] = yield* bucketOf(policy, key, method)
          const now = yield* Clock.currentTimeMillis
          yield* client.run(method, Lua.refundToken, [m, now, g.interval])
        }).pipe(traced("RateLimiter.refund")),

      reset: (policy, key) =>
        Effect.gen(function*() {
          const method = "RateLimiter.reset"
          yield* checkName("bucket", policy.bucket, method)
          const m = yield* rateLimitKey(crypto, policy.bucket, key)
          yield* client.run(method, Lua.dropRecord, [m])
        }).pipe(traced("RateLimiter.reset"))
    }

    return service
  })
