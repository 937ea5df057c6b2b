import { Effect, Option } from "effect"
import type { KeyedLock } from "../../internal/keyedLock.ts"
import { Keys } from "../../internal/keys.ts"
import { checkNextVersion, openKeySet, sealKeySet } from "../../internal/signingKeyCodec.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import type { KvTier } from "./tier.ts"

/**
 * The KV `SigningKeyStore`: the sealed key set under `jwks:signing-keys`, its
 * version in the metadata. Compare-and-set reads the stored version, then
 * writes: serialized within this instance, not atomic across instances (two
 * instances rotating at the same moment can both win, the last write
 * standing).
 */
export const makeSigningKeyStore = (tier: KvTier, crypto: Crypto.Service, lock: KeyedLock): SigningKeyStore.Service => {
  const read = (method: string) =>
    Effect.flatMap(tier.get(method, Keys.signingKeys), (entry) =>
      Option.isNone(entry)
        ? Effect.succeed(Option.none())
        : Effect.map(openKeySet(crypto, { version: entry.value.meta.v ?? 0, envelope: entry.value.value }), Option.some))

  return {
    get: read("SigningKeyStore.get"),
    compareAndSet: (expectedVersion, next) =>
      Effect.gen(function*() {
        const method = "SigningKeyStore.compareAndSet"
        yield* checkNextVersion(expectedVersion, next)
        const sealed = yield* sealKeySet(crypto, next)
        return yield* lock.withLock(Keys.signingKeys)(Effect.gen(function*() {
          const current = yield* read(method)
          if (Option.getOrUndefined(Option.map(current, (set) => set.version)) !== expectedVersion) return false
          yield* tier.put(method, Keys.signingKeys, sealed.envelope, { v: sealed.version })
          return true
        }))
      })
  }
}
