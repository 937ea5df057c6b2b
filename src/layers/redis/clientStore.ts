import { Clock, Effect, Option } from "effect"
import { authenticateClient, liveClient, newClient } from "../../internal/clientRecord.ts"
import { Keys } from "../../internal/keys.ts"
import { RegisteredClient } from "../../schema/client.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import { Crypto } from "../../services/Crypto.ts"
import { type RedisClient, traced } from "./client.ts"
import { jsonCodec } from "./codec.ts"

const clients = jsonCodec(RegisteredClient)

/**
 * The Redis `ClientStore`: one JSON string per client (secrets as lookup
 * hashes); a cached metadata document is read as missing past its expiry
 * (Effect's `Clock`), listed in the expiry index for the sweep and given a
 * `PX` as a safety net; a registered client never expires.
 */
export const makeClientStore = (client: RedisClient) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const P = client.prefix

    /** The client, when stored and live by Effect's `Clock` (Redis's own expiry may lag it, or run on another clock). */
    const get = (clientId: string) =>
      Effect.gen(function*() {
        const json = yield* client.call("ClientStore.get", (r) => r.get(P + Keys.client(clientId)))
        if (json === null) return Option.none()
        const found = yield* clients.decode(json, "ClientStore.get")
        return liveClient(Option.some(found), yield* Clock.currentTimeMillis)
      })

    const service: ClientStore.Service = {
      register: (input) =>
        Effect.gen(function*() {
          const method = "ClientStore.register"
          const now = yield* Clock.currentTimeMillis
          const registered = yield* newClient(crypto, input, now)
          const json = yield* clients.encode(registered, method)
          const member = Keys.client(registered.clientId)
          const expiresAt = registered.expiresAt
          // One transaction: the record and its entry in the expiry index the sweep walks (by Effect's `Clock`).
          yield* client.call(method, async (r) => {
            const replies = await (expiresAt === undefined
              ? r.multi().set(P + member, json).zrem(P + Keys.expiries, member)
              : r.multi().set(P + member, json, "PX", Math.max(1, expiresAt - now)).zadd(P + Keys.expiries, expiresAt, member)).exec()
            const failed = replies?.find(([error]) => error !== null)?.[0]
            if (failed !== undefined && failed !== null) throw failed
            return replies
          })
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
