import { Effect } from "effect"
import { Keys } from "../../internal/keys.ts"
import type { RawStorage } from "../../services/RawStorage.ts"
import type { Db } from "./db.ts"
import type { Tables } from "./tables.ts"

type Row = Readonly<Record<string, unknown>>

const text = (row: Row, column: string): string => String(row[column])

/**
 * Every row of every table of the backend, as stored: the record key the row
 * stands for (the `Keys` namespace its ciphertexts are bound to), then all its
 * columns as JSON.
 */
export const makeRawStorage = (db: Db, t: Tables): RawStorage.Service => {
  const keyed: ReadonlyArray<readonly [table: string, key: (row: Row) => string]> = [
    [t.transactions, (row) => Keys.transaction(text(row, "id"))],
    [t.codes, (row) => Keys.code(text(row, "hash"))],
    [t.accessTokens, (row) => Keys.accessToken(text(row, "hash"))],
    [t.refreshTokens, (row) => Keys.refreshToken(text(row, "hash"))],
    [t.grants, (row) => Keys.grant(text(row, "id"))],
    [t.providerTokens, (row) => Keys.providerTokens(text(row, "authorization_id"), text(row, "provider_id"))],
    [t.sessions, (row) => Keys.session(text(row, "id"))],
    [t.clients, (row) => Keys.client(text(row, "client_id"))],
    [t.signingKeys, (row) => text(row, "name")],
    [t.rateLimits, (row) => text(row, "key")],
    [t.replayIds, (row) => text(row, "key")],
    [t.mcpStreams, (row) => Keys.mcpStream(text(row, "id"))],
    [t.mcpStreamEvents, (row) => `${Keys.mcpStream(text(row, "stream_id"))}.${text(row, "seq")}`],
    [t.migrations, (row) => `${t.migrations}:${text(row, "migration_id")}`]
  ]
  return {
    dump: Effect.map(
      Effect.forEach(keyed, ([table, key]) =>
        Effect.map(
          db.all<Row>("RawStorage.dump", `SELECT * FROM ${table} ORDER BY rowid`, []),
          (rows) => rows.map((row) => `${key(row)} ${JSON.stringify(row)}`)
        )),
      (tables) => tables.flat()
    )
  }
}
