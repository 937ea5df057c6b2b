import { Clock, Effect, Option } from "effect"
import type { KeyedLock } from "../../internal/keyedLock.ts"
import { replayEntry } from "../../internal/primitiveInput.ts"
import { traced } from "../../internal/traced.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { ReplayCache, ReplaySighting } from "../../services/ReplayCache.ts"
import type { KvTier } from "./tier.ts"

/**
 * The KV `ReplayCache`: an id under `replay:{scope}:{hash}`, its expiry in the
 * metadata (`e`; KV's own TTL, never under 60 s, frees it). Approximate, as
 * `capabilities` declares (`replayCache`): `remember` reads then writes,
 * serialized per id within this instance only, so two instances (or one
 * reading a stale KV edge cache) can both see an id first.
 */
export const makeReplayCache = (tier: KvTier, crypto: Crypto.Service, lock: KeyedLock): ReplayCache.Service => {
  const method = "ReplayCache.remember"
  return {
    remember: (scope, id, ttl) =>
      Effect.gen(function*() {
        const [key, millis] = yield* replayEntry(crypto, scope, id, ttl, method)
        return yield* lock.withLock(key)(Effect.gen(function*() {
          // `get` treats an entry past its expiry (by the Clock) as absent.
          if (Option.isSome(yield* tier.get(method, key))) return "Replayed" satisfies ReplaySighting
          const expiresAt = (yield* Clock.currentTimeMillis) + millis
          yield* tier.put(method, key, String(expiresAt), { e: expiresAt })
          return "First" satisfies ReplaySighting
        }))
      }).pipe(traced("ReplayCache.remember"))
  }
}
