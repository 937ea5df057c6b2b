import { Clock, Effect, Schema } from "effect"
import { ExpiryHeap } from "../../internal/expiryHeap.ts"
import { replayEntry } from "../../internal/primitiveInput.ts"
import { traced } from "../../internal/traced.ts"
import type { ResolvedReplayCacheOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ReplayCache, ReplaySighting } from "../../services/ReplayCache.ts"
import { StoreError } from "../../services/StoreError.ts"

/** The whole state of a memory `ReplayCache`: (storage key, expiry) per remembered id. */
export const ReplayCacheState = Schema.Array(Schema.Tuple(Schema.String, Schema.Number))
export type ReplayCacheState = typeof ReplayCacheState.Type
export type ReplayCacheStateJson = typeof ReplayCacheState.Encoded

const METHOD = "ReplayCache.remember"

/**
 * The memory `ReplayCache`: ids (as lookup hashes) and their expiry in a
 * `Map`, and an `ExpiryHeap` beside it so expired ids are found earliest
 * first. `remember` checks and writes inside one synchronous step, so of
 * concurrent fibers with one id exactly one sees it first.
 *
 * At `maxIds`, a new id first makes room by dropping expired ids; if every
 * id held is live it fails with `Unavailable` rather than forget one (a
 * forgotten id could be replayed as `First`).
 */
export const makeReplayCache = (options: ResolvedReplayCacheOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const ids = new Map<string, number>()
    const heap = new ExpiryHeap()
    /** Grows on every change of the state. */
    let changes = 0

    /** Drop every id expired at `now`, earliest first; the number dropped. */
    const dropExpired = (now: number): number => {
      let removed = 0
      while (heap.peek() <= now) {
        const [expiresAt, key] = heap.pop() as readonly [number, string]
        // A key remembered again after it expired has a newer heap entry: only the current one counts.
        if (ids.get(key) === expiresAt) {
          ids.delete(key)
          removed++
        }
      }
      if (removed > 0) changes++
      return removed
    }

    const full = new StoreError({
      reason: "Unavailable",
      method: METHOD,
      description: `the replay cache holds ${options.maxIds} live ids (maxIds); retry once some expire`
    })

    const service: ReplayCache.Service = {
      remember: (scope, id, ttl) =>
        Effect.flatMap(replayEntry(crypto, scope, id, ttl, METHOD), ([key, millis]) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            // From here to the return nothing yields: the check and the write are one step.
            const held = ids.get(key)
            if (held !== undefined && now < held) return Effect.succeed<ReplaySighting>("Replayed")
            if (held === undefined && ids.size >= options.maxIds) {
              dropExpired(now)
              if (ids.size >= options.maxIds) return Effect.fail(full)
            }
            changes++
            ids.set(key, now + millis)
            heap.push(now + millis, key)
            return Effect.succeed<ReplaySighting>("First")
          })).pipe(traced("ReplayCache.remember"))
    }

    const sweep = Effect.map(Clock.currentTimeMillis, dropExpired)

    const dump = (): ReadonlyArray<string> => [...ids.entries()].map(([key, expiresAt]) => `${key} ${expiresAt}`)

    /** Every id held, in its encoded (JSON) form. */
    const snapshot = (): ReplayCacheStateJson => [...ids.entries()]

    /** Replace the state with a snapshot, whole: nothing live is forgotten, even past `maxIds`. */
    const restore = (state: ReplayCacheState): void => {
      ids.clear()
      heap.clear()
      for (const [key, expiresAt] of state) {
        ids.set(key, expiresAt)
        heap.push(expiresAt, key)
      }
      changes++
    }

    return { service, sweep, dump, snapshot, restore, changes: () => changes } as const
  })
