import { Clock, Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import type { RegisteredClient } from "../../schema/client.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import { authenticateClient, newClient } from "../../internal/clientRecord.ts"

/** The memory `ClientStore`: registered clients by id, secrets as lookup hashes. */
export const makeClientStore = Effect.gen(function*() {
  const crypto = yield* Crypto
  const clients = new Map<string, RegisteredClient>()

  const service: ClientStore.Service = {
    register: (input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const client = yield* newClient(crypto, input, now)
        clients.set(client.clientId, client)
        return client
      }).pipe(Effect.withSpan("ClientStore.register")),

    get: (clientId) => Effect.sync(() => Option.fromNullable(clients.get(clientId))),

    authenticate: (clientId, secret) =>
      authenticateClient(crypto, Option.fromNullable(clients.get(clientId)), secret).pipe(
        Effect.withSpan("ClientStore.authenticate")
      ),

    delete: (clientId) => Effect.sync(() => clients.delete(clientId))
  }

  const dump = (): ReadonlyArray<string> =>
    [...clients].map(([id, client]) => `${Keys.client(id)} ${JSON.stringify(client)}`)

  return { service, dump } as const
})
