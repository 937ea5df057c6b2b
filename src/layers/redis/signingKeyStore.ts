import { Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import { checkNextVersion, openKeySet, sealKeySet } from "../../internal/signingKeyCodec.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SigningKeyStore } from "../../services/SigningKeyStore.ts"
import type { RedisClient } from "./client.ts"
import { int, string } from "./codec.ts"
import * as Lua from "./lua.ts"

/**
 * The Redis `SigningKeyStore`: one hash with the version (`v`) and the shared
 * codec's envelope (`e`); compare-and-set is one script on the version.
 */
export const makeSigningKeyStore = (client: RedisClient) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const key = client.prefix + Keys.signingKeys

    const service: SigningKeyStore.Service = {
      get: Effect.gen(function*() {
        const method = "SigningKeyStore.get"
        const [version, envelope] = yield* client.call(method, (r) => r.hmget(key, "v", "e"))
        if (envelope === null || envelope === undefined) return Option.none()
        return Option.some(yield* openKeySet(crypto, { version: int(version), envelope: yield* string(envelope, method) }))
      }),

      compareAndSet: (expectedVersion, next) =>
        Effect.gen(function*() {
          const method = "SigningKeyStore.compareAndSet"
          yield* checkNextVersion(expectedVersion, next)
          const sealed = yield* sealKeySet(crypto, next)
          const written = yield* client.run(method, Lua.compareAndSetKeys, [
            expectedVersion === undefined ? "" : String(expectedVersion),
            String(sealed.version),
            sealed.envelope
          ])
          return int(written) === 1
        })
    }

    return service
  })
