import { Clock, Effect, Option } from "effect"
import { authenticateClient, newClient } from "../../internal/clientRecord.ts"
import { Keys } from "../../internal/keys.ts"
import { RegisteredClient } from "../../schema/client.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import { Crypto } from "../../services/Crypto.ts"
import { type RedisClient, traced } from "./client.ts"
import { jsonCodec } from "./codec.ts"

const clients = jsonCodec(RegisteredClient)

/** The Redis `ClientStore`: one JSON string per client (secrets as lookup hashes), no expiry. */
export const makeClientStore = (client: RedisClient) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const P = client.prefix

    const get = (clientId: string) =>
      Effect.flatMap(
        client.call("ClientStore.get", (r) => r.get(P + Keys.client(clientId))),
        (json) => json === null ? Effect.succeed(Option.none()) : Effect.map(clients.decode(json, "ClientStore.get"), Option.some)
      )

    const service: ClientStore.Service = {
      register: (input) =>
        Effect.gen(function*() {
          const method = "ClientStore.register"
          const now = yield* Clock.currentTimeMillis
          const registered = yield* newClient(crypto, input, now)
          const json = yield* clients.encode(registered, method)
          yield* client.call(method, (r) => r.set(P + Keys.client(registered.clientId), json))
          return registered
        }).pipe(traced("ClientStore.register")),

      get,

      authenticate: (clientId, secret) =>
        Effect.flatMap(get(clientId), (found) => authenticateClient(crypto, found, secret)).pipe(
          traced("ClientStore.authenticate")
        ),

      delete: (clientId) =>
        Effect.map(client.call("ClientStore.delete", (r) => r.del(P + Keys.client(clientId))), (removed) => removed > 0)
    }

    return service
  })
