import { Clock, Effect, Option, Schema } from "effect"
import { Keys } from "../../internal/keys.ts"
import { RegisteredClient } from "../../schema/client.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import { authenticateClient, isLiveClient, newClient } from "../../internal/clientRecord.ts"

/** The whole state of a memory `ClientStore`: its clients, secrets as lookup hashes. */
export const ClientStoreState = Schema.Array(RegisteredClient)
export type ClientStoreState = typeof ClientStoreState.Type
export type ClientStoreStateJson = typeof ClientStoreState.Encoded

/** The memory `ClientStore`: clients by id, secrets as lookup hashes; expired (cached) ones dropped on read and by `sweep`. */
export const makeClientStore = Effect.gen(function*() {
  const crypto = yield* Crypto
  const clients = new Map<string, RegisteredClient>()
  /** Grows on every change of the state. */
  let changes = 0

  /** The live client with this id; an expired one is dropped. */
  const live = (clientId: string) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const client = clients.get(clientId)
      if (client === undefined || isLiveClient(client, now)) return Option.fromNullable(client)
      clients.delete(clientId)
      changes++
      return Option.none<RegisteredClient>()
    })

  const service: ClientStore.Service = {
    register: (input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const client = yield* newClient(crypto, input, now)
        changes++
        clients.set(client.clientId, client)
        return client
      }),

    get: live,

    authenticate: (clientId, secret) => Effect.flatMap(live(clientId), (client) => authenticateClient(crypto, client, secret)),

    delete: (clientId) =>
      Effect.sync(() => {
        const existed = clients.delete(clientId)
        if (existed) changes++
        return existed
      })
  }

  /** Remove every expired client; the number removed. */
  const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
    let removed = 0
    for (const [id, client] of clients) {
      if (!isLiveClient(client, now)) {
        clients.delete(id)
        removed++
      }
    }
    if (removed > 0) changes++
    return removed
  })

  const dump = (): ReadonlyArray<string> =>
    [...clients].map(([id, client]) => `${Keys.client(id)} ${JSON.stringify(client)}`)

  /** The whole state in its encoded (JSON) form. */
  const snapshot = (): ClientStoreStateJson => [...clients.values()]

  const restore = (state: ClientStoreState): void => {
    clients.clear()
    for (const client of state) clients.set(client.clientId, client)
    changes++
  }

  return { service, sweep, dump, snapshot, restore, changes: () => changes } as const
})
