import { Clock, Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import type { KeyedLock } from "../../internal/keyedLock.ts"
import {
  mergeProviderTokens,
  openProviderTokens,
  resealProviderTokens,
  sealProviderTokens
} from "../../internal/providerTokenCodec.ts"
import { type ProviderTokenStoreOptions, resolveProviderTokenStoreOptions } from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { isLiveMeta } from "./namespace.ts"
import type { KvTier } from "./tier.ts"
import { traced } from "../../internal/traced.ts"

/**
 * The KV `ProviderTokenStore`: one sealed envelope per (authorization,
 * provider) under `provider:{authorization}:{provider}`, expiring with the
 * token that keeps it useful. An authorization's providers are listed by the
 * key prefix, so there is no index to keep in step.
 */
export const makeProviderTokenStore = (
  tier: KvTier,
  crypto: Crypto.Service,
  lock: KeyedLock,
  options: ProviderTokenStoreOptions = {}
): ProviderTokenStore.Service => {
  const { defaultTtl } = resolveProviderTokenStoreOptions(options)

  const getTokens = (method: string, authorizationId: string, providerId: string) =>
    Effect.flatMap(tier.get(method, Keys.providerTokens(authorizationId, providerId)), (entry) =>
      Option.isNone(entry)
        ? Effect.succeed(Option.none())
        : Effect.map(openProviderTokens(crypto, authorizationId, providerId, entry.value.value), Option.some))

  /** The live provider ids of an authorization, with their keys. */
  const providersOf = (method: string, authorizationId: string) =>
    Effect.gen(function*() {
      const prefix = Keys.providerTokensOf(authorizationId)
      const listed = yield* tier.list(method, prefix)
      const now = yield* Clock.currentTimeMillis
      return listed.filter((l) => isLiveMeta(l.meta, now)).map((l) => ({
        key: l.key,
        providerId: decodeURIComponent(l.key.slice(prefix.length))
      }))
    })

  const deleteAll = (authorizationId: string) =>
    Effect.gen(function*() {
      const method = "ProviderTokenStore.deleteAll"
      const listed = yield* tier.list(method, Keys.providerTokensOf(authorizationId))
      yield* Effect.forEach(listed, (l) => tier.delete(method, l.key), { concurrency: 8, discard: true })
    })

  return {
    storeTokens: (authorizationId, providerId, tokens) => {
      const method = "ProviderTokenStore.storeTokens"
      const key = Keys.providerTokens(authorizationId, providerId)
      return lock.withLock(key)(Effect.gen(function*() {
        const previous = yield* getTokens(method, authorizationId, providerId)
        const now = yield* Clock.currentTimeMillis
        const merged = mergeProviderTokens(previous, tokens)
        const sealed = yield* sealProviderTokens(crypto, authorizationId, providerId, merged, now, defaultTtl)
        yield* tier.put(method, key, sealed.envelope, { e: sealed.expiresAt })
      })).pipe(traced("ProviderTokenStore.storeTokens"))
    },

    getTokens: (authorizationId, providerId) =>
      getTokens("ProviderTokenStore.getTokens", authorizationId, providerId).pipe(
        traced("ProviderTokenStore.getTokens")
      ),

    deleteTokens: (authorizationId, providerId) =>
      Effect.gen(function*() {
        const method = "ProviderTokenStore.deleteTokens"
        const key = Keys.providerTokens(authorizationId, providerId)
        const existed = Option.isSome(yield* tier.get(method, key))
        if (existed) yield* tier.delete(method, key)
        return existed
      }),

    getProviderIds: (authorizationId) =>
      Effect.map(providersOf("ProviderTokenStore.getProviderIds", authorizationId), (found) =>
        found.map((p) => p.providerId)),

    migrateTokens: (from, to) =>
      Effect.gen(function*() {
        const method = "ProviderTokenStore.migrateTokens"
        if (from === to) return
        const moving = yield* providersOf(method, from)
        yield* Effect.forEach(moving, ({ key, providerId }) =>
          lock.withLock(key)(Effect.gen(function*() {
            const entry = yield* tier.get(method, key)
            if (Option.isNone(entry)) return
            const { meta, value } = entry.value
            const next = yield* resealProviderTokens(crypto, from, to, providerId, { envelope: value, expiresAt: meta.e ?? 0 })
            yield* tier.put(method, Keys.providerTokens(to, providerId), next.envelope, meta)
            yield* tier.delete(method, key)
          })), { discard: true })
      }).pipe(traced("ProviderTokenStore.migrateTokens")),

    deleteAll
  }
}
