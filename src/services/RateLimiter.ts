import { Context, type Duration, type Effect } from "effect"
import type { StoreError } from "./StoreError.ts"

/**
 * A budget: which bucket, how many actions, over what window. Keys of
 * different buckets never share tokens, so one limiter serves several limits
 * ("register" per address, "signin-user" per user name, ...). The policy is
 * passed on every call; calls on one (bucket, key) should pass the same
 * `limit` and `window` (the stored state is read under whatever policy the
 * call carries).
 */
export interface RateLimitPolicy {
  /** The bucket's name: 1 to 64 letters, digits, `.`, `_` or `-` (stored in the clear, so never personal data). */
  readonly bucket: string
  /** Actions allowed in a burst from a full bucket: a whole number from 1 to 1,000,000. */
  readonly limit: number
  /** The time over which `limit` tokens come back: more than 0, at most 365 days. */
  readonly window: Duration.DurationInput
}

/** What a `consume` or `check` decided, with what an HTTP 429 (and `RateLimit-*` headers) need. */
export interface RateLimitDecision {
  /** Whether the action may go ahead (for `consume`: it did, and took a token). */
  readonly allowed: boolean
  /** The policy's `limit`. */
  readonly limit: number
  /** Tokens left now: after this action for `consume`, before any for `check`. */
  readonly remaining: number
  /** Milliseconds until a `consume` would be allowed: 0 when allowed, more than 0 when refused (`Retry-After`). */
  readonly retryAfterMs: number
  /** Milliseconds until the bucket is full again (all `limit` tokens back); 0 when it is full. */
  readonly resetAfterMs: number
}

/**
 * "May key K act now?", per bucket, atomic across every instance that shares
 * the backend.
 *
 * The algorithm is a token bucket in its GCRA form (one number per key):
 * - each (bucket, key) holds `limit` tokens, full when first seen;
 * - one token comes back every `interval = ceil(window / limit)` milliseconds
 *   (`window / limit` rounded up to a whole millisecond, so every backend
 *   computes with the same integers);
 * - `consume` takes one token if there is one: `allowed`; otherwise it
 *   changes nothing: refused, with `retryAfterMs` the time until the next token.
 * So a burst of at most `limit` actions is allowed, then one per `interval`;
 * over any span of `window`, at most `2 * limit - 1` (a full burst plus the
 * tokens that come back meanwhile), and over a long period at most `limit`
 * per `window` on average. The stored state is the instant the bucket will be
 * full again (epoch ms by Effect's `Clock`; `TestClock` drives it), and the
 * record expires at that instant: a full bucket is no record at all, and the
 * sweep removes the expired ones.
 *
 * Keys (client addresses, user names) are stored only as `Crypto` lookup
 * hashes under the bucket's name (`ratelimit:{bucket}:{hash}`), so storage
 * holds no personal data and every stored key has the same bounded length.
 *
 * Limiting only failures (sign-in): `consume` before checking the
 * credentials, answer 429 without checking them when refused, and `refund`
 * when the credentials were right. Reserving first is what keeps concurrent
 * attempts within the limit; `check` (which takes nothing) can show a lockout
 * without spending a token.
 *
 * Backends without compare-and-set (Cloudflare KV) say so in their
 * capabilities (`rateLimit`): there concurrent calls are serialized only
 * within one instance.
 */
export class RateLimiter extends Context.Tag("mcp-oauth-store/RateLimiter")<RateLimiter, RateLimiter.Service>() {}

export declare namespace RateLimiter {
  export interface Service {
    /** Take one token from `key`'s bucket if it has one. `Invalid` for a policy out of range. */
    readonly consume: (policy: RateLimitPolicy, key: string) => Effect.Effect<RateLimitDecision, StoreError>
    /** What `consume` would decide now, without taking anything. */
    readonly check: (policy: RateLimitPolicy, key: string) => Effect.Effect<RateLimitDecision, StoreError>
    /** Give one token back (an action `consume` counted that should not count); never past a full bucket. */
    readonly refund: (policy: RateLimitPolicy, key: string) => Effect.Effect<void, StoreError>
    /** Fill `key`'s bucket: forget its state. */
    readonly reset: (policy: Pick<RateLimitPolicy, "bucket">, key: string) => Effect.Effect<void, StoreError>
  }
}
