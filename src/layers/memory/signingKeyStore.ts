import { Effect, Option, Schema } from "effect"
import { Keys } from "../../internal/keys.ts"
import { checkNextVersion, openKeySet, type SealedKeySet, sealKeySet } from "../../internal/signingKeyCodec.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"

/** The whole state of a memory `SigningKeyStore`: the sealed key set, if any (private keys stay sealed). */
export const SigningKeyStoreState = Schema.NullOr(Schema.Struct({ version: Schema.Number, envelope: Schema.String }))
export type SigningKeyStoreState = typeof SigningKeyStoreState.Type
export type SigningKeyStoreStateJson = typeof SigningKeyStoreState.Encoded

/** The memory `SigningKeyStore`: one sealed key set; compare-and-set in one synchronous step. */
export const makeSigningKeyStore = Effect.gen(function*() {
  const crypto = yield* Crypto
  let current: SealedKeySet | undefined
  /** Grows on every change of the state. */
  let changes = 0

  const service: SigningKeyStore.Service = {
    get: Effect.suspend(() =>
      current === undefined ? Effect.succeed(Option.none()) : Effect.map(openKeySet(crypto, current), Option.some)
    ),
    compareAndSet: (expectedVersion, next) =>
      Effect.gen(function*() {
        yield* checkNextVersion(expectedVersion, next)
        const sealed = yield* sealKeySet(crypto, next)
        if (current?.version !== expectedVersion) return false
        changes++
        current = sealed
        return true
      })
  }

  const dump = (): ReadonlyArray<string> => current === undefined ? [] : [`${Keys.signingKeys} ${JSON.stringify(current)}`]

  /** The whole state in its encoded (JSON) form. */
  const snapshot = (): SigningKeyStoreStateJson => current ?? null

  const restore = (state: SigningKeyStoreState): void => {
    current = state ?? undefined
    changes++
  }

  return { service, dump, snapshot, restore, changes: () => changes } as const
})
