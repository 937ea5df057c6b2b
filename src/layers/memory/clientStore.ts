import { Clock, Effect, Option, Schema } from "effect"
import { Keys } from "../../internal/keys.ts"
import { RegisteredClient } from "../../schema/client.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import { authenticateClient, newClient } from "../../internal/clientRecord.ts"

/** The whole state of a memory `ClientStore`: its clients, secrets as lookup hashes. */
export const ClientStoreState = Schema.Array(RegisteredClient)
export type ClientStoreState = typeof ClientStoreState.Type
export type ClientStoreStateJson = typeof ClientStoreState.Encoded

/** The memory `ClientStore`: registered clients by id, secrets as lookup hashes. */
export const makeClientStore = Effect.gen(function*() {
  const crypto = yield* Crypto
  const clients = new Map<string, RegisteredClient>()
  /** Grows on every change of the state. */
  let changes = 0

  const service: ClientStore.Service = {
    register: (input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const client = yield* newClient(crypto, input, now)
        changes++
        clients.set(client.clientId, client)
        return client
      }),

    get: (clientId) => Effect.sync(() => Option.fromNullable(clients.get(clientId))),

    authenticate: (clientId, secret) =>
      authenticateClient(crypto, Option.fromNullable(clients.get(clientId)), secret),

    delete: (clientId) =>
      Effect.sync(() => {
        const existed = clients.delete(clientId)
        if (existed) changes++
        return existed
      })
  }

  const dump = (): ReadonlyArray<string> =>
    [...clients].map(([id, client]) => `${Keys.client(id)} ${JSON.stringify(client)}`)

  /** The whole state in its encoded (JSON) form. */
  const snapshot = (): ClientStoreStateJson => [...clients.values()]

  const restore = (state: ClientStoreState): void => {
    clients.clear()
    for (const client of state) clients.set(client.clientId, client)
    changes++
  }

  return { service, dump, snapshot, restore, changes: () => changes } as const
})
