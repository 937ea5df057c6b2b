import { Clock, Effect } from "effect"
import { replayEntry } from "../../internal/primitiveInput.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ReplayCache, ReplaySighting } from "../../services/ReplayCache.ts"
import { type RedisClient, traced } from "./client.ts"
import { corrupt, int } from "./codec.ts"
import * as Lua from "./lua.ts"

/**
 * The Redis `ReplayCache`, shared by every instance on the same Redis and
 * prefix: an id is a string under `<prefix>replay:{scope}:{hash}` holding its
 * expiry, with `PX` and a place in the `expiry` index. `remember` is one
 * script (check and write in one step; `now` from Effect's `Clock`).
 */
export const makeReplayCache = (client: RedisClient) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const method = "ReplayCache.remember"

    const service: ReplayCache.Service = {
      remember: (scope, id, ttl) =>
        Effect.gen(function*() {
          const [m, millis] = yield* replayEntry(crypto, scope, id, ttl, method)
          const now = yield* Clock.currentTimeMillis
          const first = int(yield* client.run(method, Lua.rememberId, [m, now, now + millis]))
          if (first !== 0 && first !== 1) return yield* Effect.fail(corrupt(method))
          return (first === 1 ? "First" : "Replayed") satisfies ReplaySighting
        }).pipe(traced("ReplayCache.remember"))
    }

    return service
  })
