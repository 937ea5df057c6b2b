import { Clock, type ConfigError, Effect, Layer, Option } from "effect"
import { CacheAdapter } from "../../services/CacheAdapter.ts"
import {
  bindingFromEnv,
  checkKey,
  isLiveMeta,
  type KvBinding,
  kvCall,
  kvExpirationTtl,
  readMeta
} from "../kv/namespace.ts"

/** The KV cache's namespace and key prefix. */
export interface KvCacheOptions {
  /** The `KVNamespace` binding (seed 001 binds `SESSIONS`). */
  readonly namespace: KvBinding
  /** Put before every key (default none: seed 001's `session:{id}`). */
  readonly keyPrefix?: string
}

/**
 * seed 001's KV `CacheAdapter`. An entry's expiry is kept in its metadata and
 * checked against Effect's `Clock`, so a TTL under KV's 60-second floor is
 * still exact for readers; KV is told at least 60 s and frees the entry.
 * Shared by every instance on the namespace (eventually consistent, as KV is).
 */
export const make = (options: KvCacheOptions): CacheAdapter.Service => {
  const { namespace } = options
  const prefix = options.keyPrefix ?? ""
  return {
    get: (key) =>
      Effect.gen(function*() {
        const stored = yield* kvCall("CacheAdapter.get", () => namespace.getWithMetadata(prefix + key))
        if (stored.value === null) return Option.none()
        const now = yield* Clock.currentTimeMillis
        const meta = readMeta(stored.metadata)
        return Option.isSome(meta) && isLiveMeta(meta.value, now) ? Option.some(stored.value) : Option.none()
      }),
    set: (key, value, ttlSeconds) =>
      Effect.gen(function*() {
        const method = "CacheAdapter.set"
        yield* checkKey(method, prefix + key)
        const now = yield* Clock.currentTimeMillis
        const expiresAt = ttlSeconds === undefined ? undefined : now + ttlSeconds * 1000
        yield* kvCall(method, () =>
          namespace.put(
            prefix + key,
            value,
            expiresAt === undefined
              ? { metadata: {} }
              : { metadata: { e: expiresAt }, expirationTtl: kvExpirationTtl(expiresAt, now) }
          ))
      }),
    delete: (key) => kvCall("CacheAdapter.delete", () => namespace.delete(prefix + key))
  }
}

/** `make` as a layer. */
export const layer = (options: KvCacheOptions): Layer.Layer<CacheAdapter> => Layer.succeed(CacheAdapter, make(options))

/** Over the namespace bound in a Worker's `env` (`env.SESSIONS` unless `binding` says otherwise). */
export const layerEnv = (
  env: object,
  options: Omit<KvCacheOptions, "namespace"> & { readonly binding?: string } = {}
): Layer.Layer<CacheAdapter, ConfigError.ConfigError> =>
  Layer.effect(
    CacheAdapter,
    Effect.map(bindingFromEnv(env, options.binding ?? "SESSIONS"), (namespace) => make({ ...options, namespace }))
  )
