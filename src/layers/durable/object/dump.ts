/**
 * Every row of the object, as `RawStorage` shows it: the record key the row
 * stands for (the `Keys` namespace its ciphertexts are bound to), then all its
 * columns as JSON. The same format as the SQLite backend's dump.
 */
import { Keys } from "../../../internal/keys.ts"
import type { Db, Row } from "./db.ts"
import { T } from "./schema.ts"

const text = (row: Row, column: string): string => String(row[column])

const keyed: ReadonlyArray<readonly [table: string, key: (row: Row) => string]> = [
  [T.transactions, (row) => Keys.transaction(text(row, "id"))],
  [T.codes, (row) => Keys.code(text(row, "hash"))],
  [T.accessTokens, (row) => Keys.accessToken(text(row, "hash"))],
  [T.refreshTokens, (row) => Keys.refreshToken(text(row, "hash"))],
  [T.grants, (row) => Keys.grant(text(row, "id"))],
  [T.providerTokens, (row) => Keys.providerTokens(text(row, "authorization_id"), text(row, "provider_id"))],
  [T.sessions, (row) => Keys.session(text(row, "id"))],
  [T.clients, (row) => Keys.client(text(row, "client_id"))],
  [T.signingKeys, (row) => text(row, "name")],
  [T.rateLimits, (row) => text(row, "key")],
  [T.replayIds, (row) => text(row, "key")],
  [T.meta, (row) => `${T.meta}:${text(row, "key")}`]
]

export const dump = (db: Db): Array<string> =>
  keyed.flatMap(([table, key]) =>
    db.all<Row>(`SELECT * FROM ${table} ORDER BY rowid`).map((row) => `${key(row)} ${JSON.stringify(row)}`)
  )
