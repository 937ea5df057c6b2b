import { Clock, Effect, Either, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import {
  mergeProviderTokens,
  openProviderTokens,
  resealProviderTokens,
  sealProviderTokens
} from "../../internal/providerTokenCodec.ts"
import type { ProviderTokenStoreOptions } from "../../schema/options.ts"
import { resolveProviderTokenStoreOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { type RedisClient, traced } from "./client.ts"
import { array, corrupt, int, string } from "./codec.ts"
import * as Lua from "./lua.ts"

/**
 * `Keys.providerTokens(a, p)` is `Keys.providerTokensOf(a)` followed by the
 * encoded provider id: indexes hold that encoded id, so a script can rebuild
 * the key from the authorization's fragment.
 */
const fragment = Keys.providerTokensOf
const encodedProvider = (authorizationId: string, providerId: string): string =>
  Keys.providerTokens(authorizationId, providerId).slice(fragment(authorizationId).length)
const decodeProvider = (encoded: unknown, method: string): Either.Either<string, StoreError> =>
  Either.flatMap(string(encoded, method), (text) => {
    try {
      return Either.right(decodeURIComponent(text))
    } catch (error) {
      return Either.left(corrupt(method, error))
    }
  })

/**
 * The Redis `ProviderTokenStore`: one hash per (authorization, provider)
 * holding the shared codec's envelope and expiry, indexed by authorization id
 * (`provider-ids:{a}`) and among the authorization's grant members, so
 * revoking a grant removes them in the same script.
 */
export const makeProviderTokenStore = (client: RedisClient, options: ProviderTokenStoreOptions = {}) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const { defaultTtl } = resolveProviderTokenStoreOptions(options)
    const P = client.prefix

    const getTokens = (authorizationId: string, providerId: string) =>
      Effect.gen(function*() {
        const method = "ProviderTokenStore.getTokens"
        const [envelope, x] = yield* client.call(
          method,
          (r) => r.hmget(P + Keys.providerTokens(authorizationId, providerId), "e", "x")
        )
        if (envelope === null || envelope === undefined) return Option.none()
        const now = yield* Clock.currentTimeMillis
        if (!(now < int(x))) return Option.none()
        return Option.some(yield* openProviderTokens(crypto, authorizationId, providerId, envelope))
      })

    const service: ProviderTokenStore.Service = {
      storeTokens: (authorizationId, providerId, tokens) =>
        Effect.gen(function*() {
          const previous = yield* getTokens(authorizationId, providerId)
          const now = yield* Clock.currentTimeMillis
          const merged = mergeProviderTokens(previous, tokens)
          const sealed = yield* sealProviderTokens(crypto, authorizationId, providerId, merged, now, defaultTtl)
          yield* client.run("ProviderTokenStore.storeTokens", Lua.putProvider, [
            Keys.providerTokens(authorizationId, providerId),
            now,
            sealed.expiresAt,
            authorizationId,
            encodedProvider(authorizationId, providerId),
            sealed.envelope
          ])
        }).pipe(traced("ProviderTokenStore.storeTokens")),

      getTokens: (authorizationId, providerId) =>
        getTokens(authorizationId, providerId).pipe(traced("ProviderTokenStore.getTokens")),

      deleteTokens: (authorizationId, providerId) =>
        Effect.map(
          client.run("ProviderTokenStore.deleteTokens", Lua.deleteProvider, [Keys.providerTokens(authorizationId, providerId)]),
          (removed) => int(removed) > 0
        ),

      getProviderIds: (authorizationId) =>
        Effect.gen(function*() {
          const method = "ProviderTokenStore.getProviderIds"
          const now = yield* Clock.currentTimeMillis
          const reply = yield* array(yield* client.run(method, Lua.providerIds, [authorizationId, now]), method)
          return yield* Effect.forEach(reply, (encoded) => decodeProvider(encoded, method))
        }),

      migrateTokens: (from, to) =>
        Effect.gen(function*() {
          const method = "ProviderTokenStore.migrateTokens"
          if (from === to) return
          const now = yield* Clock.currentTimeMillis
          const rows = yield* array(yield* client.run(method, Lua.readProviders, [from, fragment(from), now]), method)
          const moves = yield* Effect.forEach(rows, (row) =>
            Effect.gen(function*() {
              const [encoded, envelope, x] = yield* array(row, method)
              const providerId = yield* decodeProvider(encoded, method)
              const read = { envelope: yield* string(envelope, method), expiresAt: int(x) }
              const next = yield* resealProviderTokens(crypto, from, to, providerId, read)
              return [encodedProvider(to, providerId), read.envelope, next.envelope, next.expiresAt] as const
            }))
          if (moves.length === 0) return
          yield* client.run(method, Lua.migrateProviders, [fragment(from), fragment(to), to, now, ...moves.flat()])
        }).pipe(traced("ProviderTokenStore.migrateTokens")),

      deleteAll: (authorizationId) =>
        Effect.asVoid(
          client.run("ProviderTokenStore.deleteAll", Lua.deleteProviders, [authorizationId, fragment(authorizationId)])
        )
    }

    return service
  })
