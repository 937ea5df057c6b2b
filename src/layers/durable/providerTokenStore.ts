import { Clock, Effect, Option } from "effect"
import {
  mergeProviderTokens,
  openProviderTokens,
  resealProviderTokens,
  sealProviderTokens
} from "../../internal/providerTokenCodec.ts"
import { traced } from "../../internal/traced.ts"
import { type ProviderTokenStoreOptions, resolveProviderTokenStoreOptions } from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import type { Channel } from "./binding.ts"

/**
 * The Durable Object `ProviderTokenStore`: sealed, opened and resealed here;
 * the object keeps one envelope per (authorization, provider) beside its
 * expiry, in the same object as the grants, so `revokeGrant` deletes them in
 * its transaction.
 */
export const makeProviderTokenStore = (
  objects: Channel,
  crypto: Crypto.Service,
  options: ProviderTokenStoreOptions = {}
): ProviderTokenStore.Service => {
  const { defaultTtl } = resolveProviderTokenStoreOptions(options)

  const getTokens = (authorizationId: string, providerId: string, method: string) =>
    Effect.flatMap(
      objects.call(method, (stub, ctx) => stub.getProviderTokens(ctx, authorizationId, providerId)),
      (envelope) =>
        envelope === null
          ? Effect.succeed(Option.none())
          : Effect.asSome(openProviderTokens(crypto, authorizationId, providerId, envelope))
    )

  return {
    storeTokens: (authorizationId, providerId, tokens) =>
      Effect.gen(function*() {
        const method = "ProviderTokenStore.storeTokens"
        const previous = yield* getTokens(authorizationId, providerId, method)
        const merged = mergeProviderTokens(previous, tokens)
        const now = yield* Clock.currentTimeMillis
        const sealed = yield* sealProviderTokens(crypto, authorizationId, providerId, merged, now, defaultTtl)
        yield* objects.callAt(method, now, (stub, ctx) =>
          stub.putProviderTokens(ctx, authorizationId, { providerId, envelope: sealed.envelope, expiresAt: sealed.expiresAt }))
      }).pipe(traced("ProviderTokenStore.storeTokens")),

    getTokens: (authorizationId, providerId) =>
      getTokens(authorizationId, providerId, "ProviderTokenStore.getTokens").pipe(traced("ProviderTokenStore.getTokens")),

    deleteTokens: (authorizationId, providerId) =>
      objects.call(
        "ProviderTokenStore.deleteTokens",
        (stub, ctx) => stub.deleteProviderTokens(ctx, authorizationId, providerId)
      ),

    getProviderIds: (authorizationId) =>
      Effect.map(
        objects.call("ProviderTokenStore.getProviderIds", (stub, ctx) => stub.listProviderTokens(ctx, authorizationId)),
        (rows) => rows.map((row) => row.providerId)
      ),

    migrateTokens: (from, to) =>
      Effect.gen(function*() {
        const method = "ProviderTokenStore.migrateTokens"
        if (from === to) return
        const moving = yield* objects.call(method, (stub, ctx) => stub.listProviderTokens(ctx, from))
        if (moving.length === 0) return
        // The AAD names the record, so a move re-encrypts: here, where the keys are.
        const moves = yield* Effect.forEach(moving, (row) =>
          Effect.map(
            resealProviderTokens(crypto, from, to, row.providerId, row),
            (next) => ({ providerId: row.providerId, fromEnvelope: row.envelope, ...next })
          ))
        yield* objects.call(method, (stub, ctx) => stub.moveProviderTokens(ctx, from, to, moves))
      }).pipe(traced("ProviderTokenStore.migrateTokens")),

    deleteAll: (authorizationId) =>
      Effect.asVoid(
        objects.call("ProviderTokenStore.deleteAll", (stub, ctx) => stub.deleteAllProviderTokens(ctx, authorizationId))
      )
  }
}
