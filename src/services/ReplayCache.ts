import { Context, type Duration, type Effect } from "effect"
import type { StoreError } from "./StoreError.ts"

/** Whether `ReplayCache.remember` saw an id for the first time within its lifetime. */
export type ReplaySighting = "First" | "Replayed"

/**
 * "Remember this id until T; was it seen already?", for single-use ids such
 * as DPoP proof `jti`s (RFC 9449 §11.1). `remember` is atomic across every
 * instance sharing the backend: of any number of concurrent callers with one
 * id, exactly one gets `First`; every later call gets `Replayed` until the id
 * expires (by Effect's `Clock`, strictly before `now + ttl`; at that instant it
 * is forgotten and the next sighting is `First` again). A `Replayed` sighting
 * does not extend the lifetime. Expired ids are removed by each backend's
 * sweep.
 *
 * Ids are stored only as `Crypto` lookup hashes under their scope's name
 * (`replay:{scope}:{hash}`): bounded in length, nothing readable.
 *
 * A bounded backend (memory, file) never forgets a live id to make room: when
 * it is full of live ids, `remember` fails with `StoreError` `Unavailable`
 * (retry later) instead of risking a replay reported as `First`.
 *
 * Backends without compare-and-set (Cloudflare KV) say so in their
 * capabilities (`replayCache`): there concurrent sightings are serialized
 * only within one instance.
 */
export class ReplayCache extends Context.Tag("mcp-oauth-store/ReplayCache")<ReplayCache, ReplayCache.Service>() {}

export declare namespace ReplayCache {
  export interface Service {
    /**
     * Remember `id` in `scope` (1 to 64 letters, digits, `.`, `_` or `-`) for
     * `ttl` (more than 0, at most 365 days; whole milliseconds, rounded up) if
     * it is not remembered already. `Invalid` for a scope or ttl out of range.
     */
    readonly remember: (scope: string, id: string, ttl: Duration.DurationInput) => Effect.Effect<ReplaySighting, StoreError>
  }
}
