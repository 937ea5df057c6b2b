import { Clock, Effect, Option, Schema } from "effect"
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
 * The whole state of a memory `ProviderTokenStore`: `[authorization id,
 * provider id, sealed tokens]` rows. The envelopes stay sealed (bound to their
 * record keys); only the expiry is plaintext.
 */
export const ProviderTokenStoreState = Schema.Array(Schema.Tuple(
  Schema.String,
  Schema.String,
  Schema.Struct({ envelope: Schema.String, expiresAt: Schema.Number })
))
export type ProviderTokenStoreState = typeof ProviderTokenStoreState.Type
export type ProviderTokenStoreStateJson = typeof ProviderTokenStoreState.Encoded

/**
 * The memory `ProviderTokenStore`: sealed envelopes per authorization id, per
 * provider. Only ciphertext and expiry instants are held.
 */
export const makeProviderTokenStore = (options: ProviderTokenStoreOptions = {}) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const { defaultTtl } = resolveProviderTokenStoreOptions(options)
    const byAuthorization = new Map<string, Map<string, SealedProviderTokens>>()
    /** Grows on every change of the state. */
    let changes = 0

    const liveEntries = (authorizationId: string, now: number): Map<string, SealedProviderTokens> | undefined => {
      const providers = byAuthorization.get(authorizationId)
      if (providers === undefined) return undefined
      for (const [providerId, sealed] of providers) if (!isLive(sealed, now)) (providers.delete(providerId), changes++)
      if (providers.size === 0) byAuthorization.delete(authorizationId)
      return providers.size === 0 ? undefined : providers
    }

    const put = (authorizationId: string, providerId: string, sealed: SealedProviderTokens) => {
      changes++
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
        }),

      getTokens: (authorizationId, providerId) =>
        getTokens(authorizationId, providerId),

      deleteTokens: (authorizationId, providerId) =>
        Effect.sync(() => {
          const providers = byAuthorization.get(authorizationId)
          const existed = providers?.delete(providerId) ?? false
          if (providers?.size === 0) byAuthorization.delete(authorizationId)
          if (existed) changes++
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
            changes++
            source.delete(providerId)
            put(to, providerId, next)
          }
          if (source?.size === 0) byAuthorization.delete(from)
        }),

      deleteAll: (authorizationId) =>
        Effect.sync(() => {
          if (byAuthorization.delete(authorizationId)) changes++
        })
    }

    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      let removed = 0
      for (const [authorizationId, providers] of byAuthorization) {
        for (const [providerId, sealed] of providers) {
          if (!isLive(sealed, now)) (providers.delete(providerId), removed++)
        }
        if (providers.size === 0) byAuthorization.delete(authorizationId)
      }
      if (removed > 0) changes++
      return removed
    })

    const dump = (): ReadonlyArray<string> =>
      [...byAuthorization].flatMap(([authorizationId, providers]) =>
        [...providers].map(([providerId, sealed]) =>
          `${Keys.providerTokens(authorizationId, providerId)} ${JSON.stringify(sealed)}`
        )
      )

    /** The whole state in its encoded (JSON) form. */
    const snapshot = (): ProviderTokenStoreStateJson =>
      [...byAuthorization].flatMap(([authorizationId, providers]) =>
        [...providers].map(([providerId, sealed]) => [authorizationId, providerId, sealed] as const)
      )

    /** Replace the state with a snapshot; each record keeps its own expiry (its refresh token's, when it has one). */
    const restore = (state: ProviderTokenStoreState): void => {
      byAuthorization.clear()
      for (const [authorizationId, providerId, sealed] of state) put(authorizationId, providerId, sealed)
      changes++
    }

    return { service, sweep, dump, snapshot, restore, changes: () => changes } as const
  })
