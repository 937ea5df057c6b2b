import { Clock, Effect } from "effect"
import { replayEntry } from "../../internal/primitiveInput.ts"
import { traced } from "../../internal/traced.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { ReplayCache, ReplaySighting } from "../../services/ReplayCache.ts"
import type { Shards } from "./shards.ts"

/**
 * The Durable Object `ReplayCache`: scope and ttl checked and the id hashed
 * here (`replay:{scope}:{hash}`), then one statement in the object that holds
 * it, which writes only when the id is not remembered (or has expired) and
 * says whether it wrote: of any number of concurrent callers, one `First`.
 */
export const makeReplayCache = (shards: Shards, crypto: Crypto.Service): ReplayCache.Service => ({
  remember: (scope, id, ttl) =>
    Effect.gen(function*() {
      const method = "ReplayCache.remember"
      const [storageKey, millis] = yield* replayEntry(crypto, scope, id, ttl, method)
      const now = yield* Clock.currentTimeMillis
      const first = yield* shards.of(storageKey).callAt(method, now, (stub, ctx) => stub.rememberId(ctx, storageKey, now + millis))
      return (first ? "First" : "Replayed") satisfies ReplaySighting
    }).pipe(traced("ReplayCache.remember"))
})
