/**
 * The tiered backend (seed 001): a `CacheAdapter` (memory, Cloudflare KV or
 * Redis) in front of a durable `SessionStore` (SQLite, Redis, ...). See
 * `sessionStore.ts` for how reads, re-caching and invalidation work.
 *
 * ```ts
 * // Every store of the durable backend, with its SessionStore behind a cache:
 * const Stores = TieredStore.layer().pipe(
 *   Layer.provide(MemoryCache.layer()),
 *   Layer.provideMerge(SqliteStore.layer({ filename })),
 *   Layer.provideMerge(NodeCrypto.layerConfig())
 * )
 * ```
 */
import { Config, type ConfigError, Effect, Layer } from "effect"
import { CacheAdapter } from "../../services/CacheAdapter.ts"
import { Crypto } from "../../services/Crypto.ts"
import { SessionStore } from "../../services/SessionStore.ts"
import { makeTieredSessionStore, type TieredOptions } from "./sessionStore.ts"

export type { TieredOptions } from "./sessionStore.ts"

/** The tiered `SessionStore` over the `SessionStore` and `CacheAdapter` in context: for composing by hand. */
export const make = (
  options: TieredOptions = {}
): Effect.Effect<SessionStore.Service, never, SessionStore | CacheAdapter | Crypto> =>
  Effect.gen(function*() {
    return makeTieredSessionStore(yield* SessionStore, yield* CacheAdapter, yield* Crypto, options)
  })

/**
 * A `SessionStore` that puts the `CacheAdapter` in front of the
 * `SessionStore` it is given. Provide the durable store's layer with
 * `Layer.provideMerge` after this one: the tiered `SessionStore` replaces the
 * durable one in the output, every other store passes through.
 */
export const layer = (options: TieredOptions = {}): Layer.Layer<SessionStore, never, SessionStore | CacheAdapter | Crypto> =>
  Layer.effect(SessionStore, make(options))

/** `layer` with its options read from `Config` (default: every default). */
export const layerConfig = (
  config: Config.Config<TieredOptions> = Config.succeed({})
): Layer.Layer<SessionStore, ConfigError.ConfigError, SessionStore | CacheAdapter | Crypto> =>
  Layer.unwrapEffect(Effect.map(config, layer))
