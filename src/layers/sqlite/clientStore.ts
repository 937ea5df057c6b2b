import { Clock, Effect, Option } from "effect"
import { authenticateClient, newClient } from "../../internal/clientRecord.ts"
import { RegisteredClient } from "../../schema/client.ts"
import type { ClientStore } from "../../services/ClientStore.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { type Db, traced } from "./db.ts"
import { jsonColumn } from "../../internal/jsonColumn.ts"
import type { Tables } from "./tables.ts"

const clientJson = jsonColumn(RegisteredClient)

/**
 * The SQLite `ClientStore`: one row per client, its secret only as a lookup
 * hash inside the record; a cached metadata document has an `expires_at`
 * (reads ignore the row past it, the sweep deletes it).
 */
export const makeClientStore = (db: Db, t: Tables) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto

    const get = (clientId: string, method: string): Effect.Effect<Option.Option<RegisteredClient>, StoreError> =>
      Effect.flatMap(
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          db.all<{ readonly body: string }>(
            method,
            `SELECT body FROM ${t.clients} WHERE client_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
            [clientId, now]
          )),
        (rows) => rows[0] === undefined ? Effect.succeed(Option.none()) : Effect.asSome(clientJson.decode(rows[0].body, method))
      )

    const service: ClientStore.Service = {
      register: (input) =>
        Effect.gen(function*() {
          const method = "ClientStore.register"
          const now = yield* Clock.currentTimeMillis
          const client = yield* newClient(crypto, input, now)
          const body = yield* clientJson.encode(client, method)
          yield* db.run(method, `INSERT OR REPLACE INTO ${t.clients} (client_id, body, expires_at) VALUES (?, ?, ?)`, [
            client.clientId,
            body,
            client.expiresAt ?? null
          ])
          return client
        }).pipe(traced("ClientStore.register")),

      get: (clientId) => get(clientId, "ClientStore.get"),

      authenticate: (clientId, secret) =>
        Effect.flatMap(get(clientId, "ClientStore.authenticate"), (client) => authenticateClient(crypto, client, secret)).pipe(
          traced("ClientStore.authenticate")
        ),

      delete: (clientId) =>
        Effect.map(
          db.run("ClientStore.delete", `DELETE FROM ${t.clients} WHERE client_id = ?`, [clientId]),
          (changes) => changes > 0
        )
    }

    return service
  })
