import { Effect } from "effect"
import { SigningKeySet } from "../schema/signingKey.ts"
import type { Crypto } from "../services/Crypto.ts"
import { StoreError } from "../services/StoreError.ts"
import { Keys } from "./keys.ts"
import { open, seal } from "./sealed.ts"

/** The signing key set as every backend stores it: one envelope, with the version beside it for compare-and-set. */
export interface SealedKeySet {
  readonly version: number
  readonly envelope: string
}

export const sealKeySet = (crypto: Crypto.Service, set: SigningKeySet): Effect.Effect<SealedKeySet, StoreError> =>
  Effect.map(seal(crypto, SigningKeySet, set, Keys.signingKeys, "SigningKeyStore.compareAndSet"), (envelope) => ({
    version: set.version,
    envelope
  }))

export const openKeySet = (crypto: Crypto.Service, sealed: SealedKeySet): Effect.Effect<SigningKeySet, StoreError> =>
  open(crypto, SigningKeySet, sealed.envelope, Keys.signingKeys, "SigningKeyStore.get")

/** A write must move the version on by exactly one. */
export const checkNextVersion = (expectedVersion: number | undefined, next: SigningKeySet): Effect.Effect<void, StoreError> =>
  next.version === (expectedVersion ?? 0) + 1 ? Effect.void : Effect.fail(
    new StoreError({
      reason: "Invalid",
      method: "SigningKeyStore.compareAndSet",
      description: `next version must be ${(expectedVersion ?? 0) + 1}, got ${next.version}`
    })
  )
