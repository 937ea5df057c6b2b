import { Clock, Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import {
  mergeProviderTokens,
  openProviderTokens,
  resealProviderTokens,
  type SealedProviderTokens,
  sealProviderTokens
} from "../../internal/providerTokenCodec.ts"
import { isLive } from "../../internal/records.ts"
import type { ProviderTokenStoreOptions } from "../../schema/options.ts"
import { resolveProviderTokenStoreOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"

/**
 * The memory `ProviderTokenStore`: sealed envelopes per authorization id, per
 * provider. Only ciphertext and expiry instants are held.
 */
export const makeProviderTokenStore = (options: ProviderTokenStoreOptions = {}) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const { defaultTtl } = resolveProviderTokenStoreOptions(options)
    const byAuthorization = new Map<string, Map<string, SealedProviderTokens>>()

    const liveEntries = (authorizationId: string, now: number): Map<string, SealedProviderTokens> | undefined => {
      const providers = byAuthorization.get(authorizationId)
      if (providers === undefined) return undefined
      for (const [providerId, sealed] of providers) if (!isLive(sealed, now)) providers.delete(providerId)
      if (providers.size === 0) byAuthorization.delete(authorizationId)
      return providers.size === 0 ? undefined : providers
    }

    const put = (authorizationId: string, providerId: string, sealed: SealedProviderTokens) => {
      const providers = byAuthorization.get(authorizationId)
      if (providers === undefined) byAuthorization.set(authorizationId, new Map([[providerId, sealed]]))
      else providers.set(providerId, sealed)
    }

    const getTokens = (authorizationId: string, providerId: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const sealed = liveEntries(authorizationId, now)?.get(providerId)
        if (sealed === undefined) return Option.none()
        return Option.some(yield* openProviderTokens(crypto, authorizationId, providerId, sealed.envelope))
      })

    const service: ProviderTokenStore.Service = {
      storeTokens: (authorizationId, providerId, tokens) =>
        Effect.gen(function*() {
          const previous = yield* getTokens(authorizationId, providerId)
          const now = yield* Clock.currentTimeMillis
          const merged = mergeProviderTokens(previous, tokens)
          put(authorizationId, providerId, yield* sealProviderTokens(crypto, authorizationId, providerId, merged, now, defaultTtl))
        }).pipe(Effect.withSpan("ProviderTokenStore.storeTokens")),

      getTokens: (authorizationId, providerId) =>
        getTokens(authorizationId, providerId).pipe(Effect.withSpan("ProviderTokenStore.getTokens")),

      deleteTokens: (authorizationId, providerId) =>
        Effect.sync(() => {
          const providers = byAuthorization.get(authorizationId)
          const existed = providers?.delete(providerId) ?? false
          if (providers?.size === 0) byAuthorization.delete(authorizationId)
          return existed
        }),

      getProviderIds: (authorizationId) =>
        Effect.map(Clock.currentTimeMillis, (now) => [...(liveEntries(authorizationId, now)?.keys() ?? [])]),

      migrateTokens: (from, to) =>
        Effect.gen(function*() {
          if (from === to) return
          const now = yield* Clock.currentTimeMillis
          const moving = [...(liveEntries(from, now)?.entries() ?? [])]
          const resealed = yield* Effect.forEach(moving, ([providerId, sealed]) =>
            Effect.map(resealProviderTokens(crypto, from, to, providerId, sealed), (next) => [providerId, sealed, next] as const))
          const source = byAuthorization.get(from)
          for (const [providerId, sealed, next] of resealed) {
            // Only what was read is moved: a concurrent write under `from` stays there.
            if (source?.get(providerId) !== sealed) continue
            source.delete(providerId)
            put(to, providerId, next)
          }
          if (source?.size === 0) byAuthorization.delete(from)
        }).pipe(Effect.withSpan("ProviderTokenStore.migrateTokens")),

      deleteAll: (authorizationId) => Effect.sync(() => void byAuthorization.delete(authorizationId))
    }

    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      let removed = 0
      for (const [authorizationId, providers] of byAuthorization) {
        for (const [providerId, sealed] of providers) {
          if (!isLive(sealed, now)) (providers.delete(providerId), removed++)
        }
        if (providers.size === 0) byAuthorization.delete(authorizationId)
      }
      return removed
    })

    const dump = (): ReadonlyArray<string> =>
      [...byAuthorization].flatMap(([authorizationId, providers]) =>
        [...providers].map(([providerId, sealed]) =>
          `${Keys.providerTokens(authorizationId, providerId)} ${JSON.stringify(sealed)}`
        )
      )

    return { service, sweep, dump } as const
  })
