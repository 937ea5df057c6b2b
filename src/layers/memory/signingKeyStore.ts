import { Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import { checkNextVersion, openKeySet, type SealedKeySet, sealKeySet } from "../../internal/signingKeyCodec.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"

/** The memory `SigningKeyStore`: one sealed key set; compare-and-set in one synchronous step. */
export const makeSigningKeyStore = Effect.gen(function*() {
  const crypto = yield* Crypto
  let current: SealedKeySet | undefined

  const service: SigningKeyStore.Service = {
    get: Effect.suspend(() =>
      current === undefined ? Effect.succeed(Option.none()) : Effect.map(openKeySet(crypto, current), Option.some)
    ),
    compareAndSet: (expectedVersion, next) =>
      Effect.gen(function*() {
        yield* checkNextVersion(expectedVersion, next)
        const sealed = yield* sealKeySet(crypto, next)
        if (current?.version !== expectedVersion) return false
        current = sealed
        return true
      })
  }

  const dump = (): ReadonlyArray<string> => current === undefined ? [] : [`${Keys.signingKeys} ${JSON.stringify(current)}`]

  return { service, dump } as const
})
