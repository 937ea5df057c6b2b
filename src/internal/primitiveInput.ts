import { Duration, Effect, Option } from "effect"
import { Keys } from "./keys.ts"
import type { Crypto } from "../services/Crypto.ts"
import { StoreError } from "../services/StoreError.ts"

/** Bucket and scope names: short, plain, stored in the clear inside record keys. */
const NAME = /^[A-Za-z0-9._-]{1,64}$/

/** The longest window or lifetime a `RateLimiter` policy or `ReplayCache` entry accepts. */
export const MAX_PRIMITIVE_MILLIS = 365 * 24 * 3_600_000

const invalid = (method: string, description: string) => new StoreError({ reason: "Invalid", method, description })

/** `Invalid` unless `name` is 1 to 64 letters, digits, `.`, `_` or `-`; `undefined` when it is. */
export const nameError = (what: string, name: string, method: string): StoreError | undefined =>
  NAME.test(name) ? undefined : invalid(method, `${what} must be 1 to 64 letters, digits, '.', '_' or '-'`)

/** `nameError` as an Effect. */
export const checkName = (what: string, name: string, method: string): Effect.Effect<void, StoreError> =>
  Effect.suspend(() => {
    const error = nameError(what, name, method)
    return error === undefined ? Effect.void : Effect.fail(error)
  })

/** A duration as whole milliseconds (rounded up); `Invalid` unless more than 0 and at most 365 days. */
export const millisOrError = (what: string, input: Duration.DurationInput, method: string): number | StoreError => {
  // A number is milliseconds (as `Duration.decode` reads it), without the decode.
  const decoded = typeof input === "number" ? input : Option.map(Duration.decodeUnknown(input), Duration.toMillis).pipe(
    Option.getOrElse(() => Number.NaN)
  )
  const millis = Math.ceil(decoded)
  return Number.isFinite(millis) && millis > 0 && millis <= MAX_PRIMITIVE_MILLIS
    ? millis
    : invalid(method, `${what} must be a duration more than 0 and at most 365 days`)
}

/**
 * The storage key of a `RateLimiter` bucket: the key's lookup hash, computed
 * over the bucket's name too, so one key hashes differently in every bucket
 * and never as the same string would as a bearer secret.
 */
export const rateLimitKey = (crypto: Crypto.Service, bucket: string, key: string): Effect.Effect<string> =>
  Effect.map(crypto.hash(`ratelimit\u0000${bucket}\u0000${key}`), (hash) => Keys.rateLimit(bucket, hash))

/** The storage key of a `ReplayCache` id, hashed with its scope like `rateLimitKey`. */
export const replayKey = (crypto: Crypto.Service, scope: string, id: string): Effect.Effect<string> =>
  Effect.map(crypto.hash(`replay\u0000${scope}\u0000${id}`), (hash) => Keys.replay(scope, hash))

/**
 * Check a `ReplayCache` sighting's scope and ttl, then hash its id: the
 * storage key and the lifetime in milliseconds.
 */
export const replayEntry = (
  crypto: Crypto.Service,
  scope: string,
  id: string,
  ttl: Duration.DurationInput,
  method: string
): Effect.Effect<readonly [key: string, millis: number], StoreError> =>
  Effect.suspend(() => {
    const badScope = nameError("scope", scope, method)
    if (badScope !== undefined) return Effect.fail(badScope)
    const millis = millisOrError("ttl", ttl, method)
    if (typeof millis !== "number") return Effect.fail(millis)
    return Effect.map(replayKey(crypto, scope, id), (key) => [key, millis] as const)
  })
