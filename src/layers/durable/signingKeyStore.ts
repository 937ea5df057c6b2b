import { Effect, Option } from "effect"
import { traced } from "../../internal/traced.ts"
import { checkNextVersion, openKeySet, sealKeySet } from "../../internal/signingKeyCodec.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import type { Channel } from "./binding.ts"

/**
 * The Durable Object `SigningKeyStore`: the key set sealed here, kept by the
 * object as one row with its version; compare-and-set is one statement there.
 */
export const makeSigningKeyStore = (objects: Channel, crypto: Crypto.Service): SigningKeyStore.Service => ({
  get: Effect.flatMap(
    objects.call("SigningKeyStore.get", (stub, ctx) => stub.getSigningKeys(ctx)),
    (row) => row === null ? Effect.succeed(Option.none()) : Effect.asSome(openKeySet(crypto, row))
  ),

  compareAndSet: (expectedVersion, next) =>
    Effect.gen(function*() {
      yield* checkNextVersion(expectedVersion, next)
      const sealed = yield* sealKeySet(crypto, next)
      return yield* objects.call(
        "SigningKeyStore.compareAndSet",
        (stub, ctx) => stub.compareAndSetSigningKeys(ctx, expectedVersion ?? null, sealed)
      )
    }).pipe(traced("SigningKeyStore.compareAndSet"))
})
