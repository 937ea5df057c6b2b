/**
 * The operations the `TokenStore`, `SessionStore`, `SigningKeyStore`,
 * `RateLimiter` (`rateLimit`: consume and refund) and `ReplayCache`
 * (`replayCache`: remember) contracts require to be atomic across every
 * instance sharing the backend.
 * A backend without compare-and-set (Cloudflare KV) lists the ones it cannot
 * make atomic; the contract suite skips only their concurrency cases.
 */
export type AtomicOperation =
  | "takeTransaction"
  | "consumeCode"
  | "rotateRefreshToken"
  | "sessionLimits"
  | "signingKeyCas"
  | "rateLimit"
  | "replayCache"

/** What a backend declares about itself: the atomic operations it cannot make atomic. */
export interface StoreCapabilities {
  readonly nonAtomic: ReadonlyArray<AtomicOperation>
}

/** What every backend but KV declares. */
export const fullyAtomic: StoreCapabilities = { nonAtomic: [] }
