import { Effect, Layer, Option } from "effect"
import type { Redis } from "ioredis"
import { CacheAdapter } from "../../services/CacheAdapter.ts"
import { StoreError } from "../../services/StoreError.ts"

/** The Redis cache's client and key prefix. */
export interface RedisCacheOptions {
  /** An ioredis client the caller opens and closes (one client can serve the cache and other uses). */
  readonly redis: Redis
  /** Put before every key (default `mcp:cache:`). */
  readonly keyPrefix?: string
}

/** Keep only the name and message: ioredis attaches the command's arguments (keys, values) to its errors. */
const unavailable = (method: string) => (error: unknown) => {
  const cause = new Error(error instanceof Error ? error.message : "Redis call failed")
  cause.name = error instanceof Error ? error.name : "Error"
  return new StoreError({ reason: "Unavailable", method, description: "Redis did not answer", cause })
}

/**
 * A `CacheAdapter` on Redis: `GET`, `SET ... PX` and `DEL` under a key
 * prefix; entries expire by Redis's own clock. Shared by every instance on
 * the same Redis. Failures (including the client's command timeout) are
 * `StoreError` `Unavailable`.
 *
 * Imports only ioredis's types: the client comes from the caller, so this
 * module adds nothing to a bundle that does not use it.
 */
export const make = (options: RedisCacheOptions): CacheAdapter.Service => {
  const { redis } = options
  const prefix = options.keyPrefix ?? "mcp:cache:"
  return {
    get: (key) =>
      Effect.tryPromise({ try: () => redis.get(prefix + key), catch: unavailable("CacheAdapter.get") }).pipe(
        Effect.map(Option.fromNullable)
      ),
    set: (key, value, ttlSeconds) =>
      Effect.tryPromise({
        try: () =>
          ttlSeconds === undefined
            ? redis.set(prefix + key, value)
            : redis.set(prefix + key, value, "PX", Math.max(1, Math.ceil(ttlSeconds * 1000))),
        catch: unavailable("CacheAdapter.set")
      }).pipe(Effect.asVoid),
    delete: (key) =>
      Effect.tryPromise({ try: () => redis.del(prefix + key), catch: unavailable("CacheAdapter.delete") }).pipe(
        Effect.asVoid
      )
  }
}

/** `make` as a layer. */
export const layer = (options: RedisCacheOptions): Layer.Layer<CacheAdapter> => Layer.succeed(CacheAdapter, make(options))
