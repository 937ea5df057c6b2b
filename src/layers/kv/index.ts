/**
 * The Cloudflare KV backend (seed 000's `KvTokenStore` / `KvSessionStore`):
 * every store on one `KVNamespace` binding (seed 000 binds `TOKENS`), for
 * Cloudflare Workers. No `node:` import anywhere in this folder: bundle it
 * with the `WebCrypto` layer (`src/layers/crypto/web.ts`).
 *
 * - Every value is a `Crypto` envelope bound to its record key (`Keys.*`);
 *   bearer secrets appear only as lookup hashes, in keys.
 * - Each record carries its expiry in KV metadata, checked against Effect's
 *   `Clock` on every read; KV's own TTL (`expirationTtl`, never under its
 *   60-second floor) frees the storage.
 * - Seed 000's write-through memory fallback: a write KV refuses is kept in
 *   this instance's memory (readable for the life of the instance), logged
 *   and counted (`KvHealth`, and the `mcp_store_kv_write_failures_total` metric).
 *   See `tier.ts`.
 * - KV has no compare-and-set: see `capabilities` for what is not atomic.
 */
import { Config, type ConfigError, Context, Deferred, Effect, Layer, type Scope } from "effect"
import { makeKeyedLock } from "../../internal/keyedLock.ts"
import { type RecordStores, storesContext } from "../../internal/storesContext.ts"
import { forkSweeper } from "../../internal/sweeper.ts"
import type { StoreCapabilities } from "../../schema/capabilities.ts"
import { resolveSessionStoreOptions, resolveSweepInterval, resolveTokenStoreOptions, type StoreOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import { makeClientStore } from "./clientStore.ts"
import { KvHealth } from "./health.ts"
import { bindingFromEnv, type KvBinding } from "./namespace.ts"
import { makeProviderTokenStore } from "./providerTokenStore.ts"
import { makeRateLimiter } from "./rateLimiter.ts"
import { makeReplayCache } from "./replayCache.ts"
import { makeSessionStore } from "./sessionStore.ts"
import { makeSigningKeyStore } from "./signingKeyStore.ts"
import { makeTier } from "./tier.ts"
import { makeTokenStore } from "./tokenStore.ts"

export { KvHealth } from "./health.ts"
export type { KvBinding } from "./namespace.ts"

/** The KV backend's options: the binding, a key prefix, the sweep's reach, and every backend's lifetimes and limits. */
export interface KvOptions extends StoreOptions {
  /** The `KVNamespace` binding (`env.TOKENS`). */
  readonly namespace: KvBinding
  /** Put before every key, to share a namespace (default none). */
  readonly keyPrefix?: string
  /**
   * Whether each sweep also deletes expired records from KV (default `true`):
   * it lists the whole prefix, one `list` call per 1,000 keys. KV's own TTL
   * frees the same records within a minute of their expiry, so on Workers,
   * where an isolate's background timers are not dependable, `false` spares
   * the list operations. The memory-only records are swept either way.
   */
  readonly sweepKv?: boolean
  /** Memory-only records (KV writes that failed) kept at most, oldest dropped first (default 10,000). */
  readonly maxMemoryOnly?: number
}

/** Every store the KV backend provides, and its health. */
export type KvStores = RecordStores | KvHealth

/**
 * What KV cannot make atomic across instances (each is a read followed by a
 * write, serialized only within one instance): taking a transaction,
 * consuming a code, rotating a refresh token, the session limits, the
 * signing-key compare-and-set, and the `RateLimiter` and `ReplayCache`
 * (approximate here: limits and replays are enforced per instance, loosely
 * across instances). The contract suite skips exactly their concurrency cases.
 */
export const capabilities: StoreCapabilities = {
  nonAtomic: ["takeTransaction", "consumeCode", "rotateRefreshToken", "sessionLimits", "signingKeyCas", "rateLimit", "replayCache"]
}

/**
 * All the stores on one KV namespace. The layer's scope holds the sweep fiber
 * (every `sweepInterval`, 60 s by default; the first sweep runs before the
 * layer is ready) and the memory fallback. Requires `Crypto`: the
 * `WebCrypto` layer on Workers. A session's `touchInterval` is never under
 * 1 s on KV (KV takes one write per second per key).
 */
export const layer = (options: KvOptions): Layer.Layer<KvStores, never, Crypto> => Layer.scopedContext(make(options))

/** `layer`'s work in the current scope (the sweep fiber ends with it): for composing by hand. */
export const make = (options: KvOptions): Effect.Effect<Context.Context<KvStores>, never, Crypto | Scope.Scope> =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const lock = makeKeyedLock()
    const tier = makeTier(crypto, {
      binding: options.namespace,
      keyPrefix: options.keyPrefix ?? "",
      maxMemoryOnly: options.maxMemoryOnly ?? 10_000
    })
    const providerTokens = makeProviderTokenStore(tier, crypto, lock, options.providerTokens)
    const tokens = makeTokenStore(tier, crypto, providerTokens, lock, resolveTokenStoreOptions(options.tokens))
    const sessions = makeSessionStore(tier, crypto, lock, resolveSessionStoreOptions(options.sessions))

    const firstSweep = yield* Deferred.make<void>()
    yield* forkSweeper(
      "KvStore",
      resolveSweepInterval(options),
      tier.sweep(sessions.related, options.sweepKv ?? true).pipe(Effect.ensuring(Deferred.succeed(firstSweep, undefined)))
    )
    yield* Deferred.await(firstSweep)

    return storesContext({
      tokens,
      providerTokens,
      sessions: sessions.service,
      clients: makeClientStore(tier, crypto),
      signingKeys: makeSigningKeyStore(tier, crypto, lock),
      rateLimiter: makeRateLimiter(tier, crypto, lock),
      replayCache: makeReplayCache(tier, crypto, lock),
      raw: { dump: tier.dump }
    }).pipe(Context.add(KvHealth, tier.health))
  })

/** `layer`'s options with the namespace named by its binding in the Worker's `env`. */
export interface KvEnvOptions extends Omit<KvOptions, "namespace"> {
  /** The binding's name (default `TOKENS`, as seed 000 binds it). */
  readonly binding?: string
}

/**
 * `layer` over the namespace bound in a Worker's `env` (`env.TOKENS` unless
 * `binding` says otherwise); a missing or wrong binding is a `ConfigError`.
 */
export const layerEnv = (env: object, options: KvEnvOptions = {}): Layer.Layer<KvStores, ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(
    Effect.map(bindingFromEnv(env, options.binding ?? "TOKENS"), (namespace) => layer({ ...options, namespace }))
  )

/** `layerEnv` with its options read from `Config` (default: every default). */
export const layerConfig = (
  env: object,
  config: Config.Config<KvEnvOptions> = Config.succeed({})
): Layer.Layer<KvStores, ConfigError.ConfigError, Crypto> =>
  Layer.unwrapEffect(Effect.map(config, (options) => layerEnv(env, options)))
