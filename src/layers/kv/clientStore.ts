import { Clock, Effect, Option } from "effect"
import { authenticateClient, newClient } from "../../internal/clientRecord.ts"
import { Keys } from "../../internal/keys.ts"
import { RegisteredClient } from "../../schema/client.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { KvTier } from "./tier.ts"
import { traced } from "../../internal/traced.ts"

/**
 * The KV `ClientStore`: one sealed client per `client:{id}`, secrets as
 * lookup hashes; a cached metadata document carries its expiry (read past it
 * as missing, KV's TTL clamped to its 60-second floor), a registered client none.
 */
export const makeClientStore = (tier: KvTier, crypto: Crypto.Service): ClientStore.Service => {
  const get = (method: string, clientId: string) => tier.read(method, RegisteredClient, Keys.client(clientId))
  return {
    register: (input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const client = yield* newClient(crypto, input, now)
        yield* tier.write(
          "ClientStore.register",
          RegisteredClient,
          Keys.client(client.clientId),
          client,
          client.expiresAt === undefined ? {} : { e: client.expiresAt }
        )
        return client
      }).pipe(traced("ClientStore.register")),

    get: (clientId) => get("ClientStore.get", clientId),

    authenticate: (clientId, secret) =>
      Effect.flatMap(get("ClientStore.authenticate", clientId), (client) => authenticateClient(crypto, client, secret)).pipe(
        traced("ClientStore.authenticate")
      ),

    delete: (clientId) =>
      Effect.gen(function*() {
        const method = "ClientStore.delete"
        const existed = Option.isSome(yield* tier.get(method, Keys.client(clientId)))
        if (existed) yield* tier.delete(method, Keys.client(clientId))
        return existed
      })
  }
}
