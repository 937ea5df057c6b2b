import { Clock, Effect, Option } from "effect"
import { authenticateClient, newClient } from "../../internal/clientRecord.ts"
import { jsonColumn } from "../../internal/jsonColumn.ts"
import { traced } from "../../internal/traced.ts"
import { RegisteredClient } from "../../schema/client.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { StoreError } from "../../services/StoreError.ts"
import type { Channel } from "./binding.ts"

const clientJson = jsonColumn(RegisteredClient)

/**
 * The Durable Object `ClientStore`: one row per client, its secret only as a
 * lookup hash inside the record; a cached metadata document has an
 * `expires_at` (reads at the caller's time ignore the row past it, sweeps
 * delete it).
 */
export const makeClientStore = (objects: Channel, crypto: Crypto.Service): ClientStore.Service => {
  const get = (clientId: string, method: string): Effect.Effect<Option.Option<RegisteredClient>, StoreError> =>
    Effect.flatMap(
      objects.call(method, (stub, ctx) => stub.getClient(ctx, clientId)),
      (body) => body === null ? Effect.succeed(Option.none()) : Effect.asSome(clientJson.decode(body, method))
    )

  return {
    register: (input) =>
      Effect.gen(function*() {
        const method = "ClientStore.register"
        const now = yield* Clock.currentTimeMillis
        const client = yield* newClient(crypto, input, now)
        const body = yield* clientJson.encode(client, method)
        yield* objects.callAt(method, now, (stub, ctx) => stub.putClient(ctx, client.clientId, body, client.expiresAt ?? null))
        return client
      }).pipe(traced("ClientStore.register")),

    get: (clientId) => get(clientId, "ClientStore.get"),

    authenticate: (clientId, secret) =>
      Effect.flatMap(get(clientId, "ClientStore.authenticate"), (client) => authenticateClient(crypto, client, secret)).pipe(
        traced("ClientStore.authenticate")
      ),

    delete: (clientId) => objects.call("ClientStore.delete", (stub, ctx) => stub.deleteClient(ctx, clientId))
  }
}
