/**
 * The `RateLimiter` algorithm (a token bucket in its GCRA form), as pure
 * functions over integers, so the memory, SQLite and KV backends decide
 * identically and the Redis script (`src/layers/redis/lua.ts`) can mirror
 * them line by line.
 *
 * A bucket's state is one instant, `tat` (GCRA's "theoretical arrival time"):
 * when the bucket will be full again. No state, or `tat <= now`, is a full
 * bucket. Taking a token moves `tat` on by `interval`; the bucket can hold
 * `capacity = interval * limit` milliseconds of debt, i.e. `limit` tokens.
 */
import { Effect } from "effect"
import type { Crypto } from "../services/Crypto.ts"
import type { RateLimitDecision, RateLimitPolicy } from "../services/RateLimiter.ts"
import { StoreError } from "../services/StoreError.ts"
import { millisOrError, nameError, rateLimitKey } from "./primitiveInput.ts"

/** The most tokens a policy may have. */
export const MAX_LIMIT = 1_000_000

/** A validated policy in whole milliseconds. */
export interface Gcra {
  readonly bucket: string
  readonly limit: number
  /** `ceil(window / limit)`: how often a token comes back. */
  readonly interval: number
  /** `interval * limit`: how far ahead of now `tat` may be. */
  readonly capacity: number
}

/** Check a policy and work out its interval: the `Gcra`, or `Invalid` when out of range. */
export const policyOrError = (policy: RateLimitPolicy, method: string): Gcra | StoreError => {
  const badBucket = nameError("bucket", policy.bucket, method)
  if (badBucket !== undefined) return badBucket
  if (!Number.isInteger(policy.limit) || policy.limit < 1 || policy.limit > MAX_LIMIT) {
    return new StoreError({ reason: "Invalid", method, description: "limit must be a whole number from 1 to 1,000,000" })
  }
  const window = millisOrError("window", policy.window, method)
  if (typeof window !== "number") return window
  const interval = Math.ceil(window / policy.limit)
  return { bucket: policy.bucket, limit: policy.limit, interval, capacity: interval * policy.limit }
}

/**
 * A bucket to act on: its policy worked out and its storage key hashed.
 * Policies are usually constants, so each layer keeps the `Gcra` of every
 * policy object it has seen (weakly, and only while its fields are the ones
 * it was worked out from); hashing is per call.
 */
export const makeBuckets = (crypto: Crypto.Service) => {
  const seen = new WeakMap<RateLimitPolicy, { readonly source: RateLimitPolicy; readonly gcra: Gcra }>()
  const resolve = (policy: RateLimitPolicy, method: string): Gcra | StoreError => {
    const cached = seen.get(policy)
    if (
      cached !== undefined && cached.source.bucket === policy.bucket && cached.source.limit === policy.limit &&
      cached.source.window === policy.window
    ) return cached.gcra
    const g = policyOrError(policy, method)
    if (!(g instanceof StoreError)) seen.set(policy, { source: { ...policy }, gcra: g })
    return g
  }
  return (policy: RateLimitPolicy, key: string, method: string): Effect.Effect<readonly [Gcra, string], StoreError> =>
    Effect.suspend(() => {
      const g = resolve(policy, method)
      return g instanceof StoreError
        ? Effect.fail(g)
        : Effect.map(rateLimitKey(crypto, g.bucket, key), (storageKey) => [g, storageKey] as const)
    })
}

/** The decision for a bucket whose state is `base` (at least `now`) before any token is taken. */
const decide = (g: Gcra, base: number, now: number, allowed: boolean, taken: boolean): RateLimitDecision => {
  const after = taken ? base + g.interval : base
  return {
    allowed,
    limit: g.limit,
    remaining: Math.max(0, Math.floor((g.capacity - (after - now)) / g.interval)),
    retryAfterMs: allowed ? 0 : base + g.interval - now - g.capacity,
    resetAfterMs: after - now
  }
}

/** What `consume` at `now` decides, and the state to store when it takes a token (`undefined`: nothing changes). */
export const consumeAt = (
  g: Gcra,
  tat: number | undefined,
  now: number
): { readonly decision: RateLimitDecision; readonly next: number | undefined } => {
  const base = Math.max(tat ?? now, now)
  const next = base + g.interval
  const allowed = next - now <= g.capacity
  return { decision: decide(g, base, now, allowed, allowed), next: allowed ? next : undefined }
}

/** What `check` at `now` reports: what `consume` would decide, nothing taken. */
export const checkAt = (g: Gcra, tat: number | undefined, now: number): RateLimitDecision => {
  const base = Math.max(tat ?? now, now)
  return decide(g, base, now, base + g.interval - now <= g.capacity, false)
}

/** The state after a `refund` at `now`: one interval less; `undefined` when that leaves the bucket full. */
export const refundAt = (g: Gcra, tat: number | undefined, now: number): number | undefined => {
  if (tat === undefined) return undefined
  const back = tat - g.interval
  return back > now ? back : undefined
}
