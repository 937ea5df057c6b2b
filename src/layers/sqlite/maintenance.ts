/**
 * `StoreMaintenance` for SQLite: every table read in pages by `rowid` (a
 * keyset, so a page never rescans what came before), re-seals as
 * conditional `UPDATE ... WHERE <envelope column> = ?` and imports as
 * `INSERT OR REPLACE`, each batch one `BEGIN IMMEDIATE` transaction: atomic
 * against every process sharing the file.
 */
import { Chunk, Clock, Effect, Option, Stream } from "effect"
import { Keys } from "../../internal/keys.ts"
import { isStoredLive } from "../../internal/storedRecords.ts"
import { sessionValues } from "../../internal/sessionRow.ts"
import { emptyCounts } from "../../internal/storedRecords.ts"
import { RegisteredClient } from "../../schema/client.ts"
import { AuthorizationCode } from "../../schema/code.ts"
import type { RecordKind, Reseal, StoredRecord } from "../../schema/storedRecord.ts"
import { AccessTokenRecord, Grant, RefreshTokenRecord } from "../../schema/token.ts"
import type { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { type Db, traced } from "./db.ts"
import { jsonColumn } from "../../internal/jsonColumn.ts"
import { COLUMNS, type SessionRow, toSession } from "./sessionStore.ts"
import type { Tables } from "./tables.ts"

const codeJson = jsonColumn(AuthorizationCode)
const accessJson = jsonColumn(AccessTokenRecord)
const refreshJson = jsonColumn(RefreshTokenRecord)
const grantJson = jsonColumn(Grant)
const clientJson = jsonColumn(RegisteredClient)

const LIST = "StoreMaintenance.records"
const DEFAULT_PAGE = 500

interface Paged {
  readonly rowid: number
}

/** `StoreMaintenance` over the backend's tables. */
export const makeMaintenance = (db: Db, t: Tables, description: string): StoreMaintenance.Service => {
  /** One table as a stream of records, `pageSize` rows per query, live rows only (as of `now`). */
  const table = <Row extends Paged>(
    select: string,
    from: string,
    live: boolean,
    now: number,
    pageSize: number,
    decode: (row: Row) => Effect.Effect<StoredRecord, StoreError>
  ): Stream.Stream<StoredRecord, StoreError> =>
    Stream.paginateChunkEffect(0, (after: number) =>
      Effect.flatMap(
        db.all<Row>(
          LIST,
          `SELECT rowid, ${select} FROM ${from} WHERE rowid > ?${live ? " AND expires_at > ?" : ""} ORDER BY rowid LIMIT ?`,
          live ? [after, now, pageSize] : [after, pageSize]
        ),
        (rows) =>
          Effect.map(Effect.forEach(rows, decode), (records) => {
            const last = rows[rows.length - 1]
            return [Chunk.unsafeFromArray(records), rows.length < pageSize || last === undefined ? Option.none() : Option.some(last.rowid)] as const
          })
      ))

  const records = (options?: { readonly pageSize?: number }) =>
    Stream.unwrap(Effect.map(Clock.currentTimeMillis, (now) => {
      const size = Math.max(1, options?.pageSize ?? DEFAULT_PAGE)
      return Stream.concatAll(Chunk.make(
        table<Paged & { id: string; envelope: string; expires_at: number }>(
          "id, envelope, expires_at",
          t.transactions,
          true,
          now,
          size,
          (row) => Effect.succeed({ _tag: "Transaction", id: row.id, envelope: row.envelope, expiresAt: row.expires_at })
        ),
        table<Paged & { hash: string; body: string; consumed_at: number | null }>(
          "hash, body, consumed_at",
          t.codes,
          true,
          now,
          size,
          (row) => Effect.map(codeJson.decode(row.body, LIST), (record) => ({ _tag: "Code", hash: row.hash, record, consumed: row.consumed_at !== null }))
        ),
        table<Paged & { hash: string; body: string }>(
          "hash, body",
          t.accessTokens,
          true,
          now,
          size,
          (row) => Effect.map(accessJson.decode(row.body, LIST), (record) => ({ _tag: "AccessToken", hash: row.hash, record }))
        ),
        table<
          Paged & {
            hash: string
            body: string
            rotated_at: number | null
            successor_hash: string | null
            successor_envelope: string | null
          }
        >(
          "hash, body, rotated_at, successor_hash, successor_envelope",
          t.refreshTokens,
          true,
          now,
          size,
          (row) =>
            Effect.map(refreshJson.decode(row.body, LIST), (record): StoredRecord => ({
              _tag: "RefreshToken",
              hash: row.hash,
              record: row.rotated_at === null ? record : { ...record, rotatedAt: row.rotated_at },
              ...(row.successor_hash === null ? {} : { successorHash: row.successor_hash }),
              ...(row.successor_envelope === null ? {} : { sealedSuccessor: row.successor_envelope })
            }))
        ),
        table<Paged & { body: string }>(
          "body",
          t.grants,
          true,
          now,
          size,
          (row) => Effect.map(grantJson.decode(row.body, LIST), (record) => ({ _tag: "Grant", record }))
        ),
        table<Paged & { authorization_id: string; provider_id: string; envelope: string; expires_at: number }>(
          "authorization_id, provider_id, envelope, expires_at",
          t.providerTokens,
          true,
          now,
          size,
          (row) =>
            Effect.succeed({
              _tag: "ProviderTokens",
              authorizationId: row.authorization_id,
              providerId: row.provider_id,
              envelope: row.envelope,
              expiresAt: row.expires_at
            })
        ),
        table<Paged & SessionRow>(
          COLUMNS,
          t.sessions,
          true,
          now,
          size,
          (row) => Effect.map(toSession(row, LIST), (session) => ({ _tag: "Session", session }))
        ),
        table<Paged & { body: string }>(
          "body",
          t.clients,
          false,
          now,
          size,
          (row) => Effect.map(clientJson.decode(row.body, LIST), (client) => ({ _tag: "Client", client }))
        ),
        table<Paged & { version: number; envelope: string }>(
          "version, envelope",
          t.signingKeys,
          false,
          now,
          size,
          (row) => Effect.succeed({ _tag: "SigningKeys", version: row.version, envelope: row.envelope })
        )
      ))
    }))

  const counted: ReadonlyArray<readonly [RecordKind, string, boolean]> = [
    ["Transaction", t.transactions, true],
    ["Code", t.codes, true],
    ["AccessToken", t.accessTokens, true],
    ["RefreshToken", t.refreshTokens, true],
    ["Grant", t.grants, true],
    ["ProviderTokens", t.providerTokens, true],
    ["Session", t.sessions, true],
    ["Client", t.clients, false],
    ["SigningKeys", t.signingKeys, false]
  ]

  const counts = Effect.gen(function*() {
    const method = "StoreMaintenance.counts"
    const now = yield* Clock.currentTimeMillis
    const result = emptyCounts()
    for (const [kind, name, live] of counted) {
      const rows = yield* db.all<{ readonly n: number }>(
        method,
        `SELECT count(*) AS n FROM ${name}${live ? " WHERE expires_at > ?" : ""}`,
        live ? [now] : []
      )
      result[kind] = rows[0]?.n ?? 0
    }
    return result
  })

  const resealOne = ({ expected, next, ref }: Reseal, method: string): Effect.Effect<boolean, StoreError> => {
    const run = (text: string, params: ReadonlyArray<unknown>) => Effect.map(db.run(method, text, params), (n) => n === 1)
    switch (ref._tag) {
      case "Transaction":
        return run(`UPDATE ${t.transactions} SET envelope = ? WHERE id = ? AND envelope = ?`, [next, ref.id, expected])
      case "RefreshSuccessor":
        return run(`UPDATE ${t.refreshTokens} SET successor_envelope = ? WHERE hash = ? AND successor_envelope = ?`, [
          next,
          ref.hash,
          expected
        ])
      case "ProviderTokens":
        return run(
          `UPDATE ${t.providerTokens} SET envelope = ? WHERE authorization_id = ? AND provider_id = ? AND envelope = ?`,
          [next, ref.authorizationId, ref.providerId, expected]
        )
      case "SigningKeys":
        return run(`UPDATE ${t.signingKeys} SET envelope = ? WHERE name = ? AND envelope = ?`, [next, Keys.signingKeys, expected])
    }
  }

  const reseal = (batch: ReadonlyArray<Reseal>) =>
    batch.length === 0
      ? Effect.succeed([])
      : db.write("StoreMaintenance.reseal", Effect.forEach(batch, (item) => resealOne(item, "StoreMaintenance.reseal"))).pipe(
        traced("StoreMaintenance.reseal")
      )

  const importOne = (record: StoredRecord, now: number, method: string): Effect.Effect<void, StoreError> => {
    const run = (text: string, params: ReadonlyArray<unknown>) => Effect.asVoid(db.run(method, text, params))
    switch (record._tag) {
      case "Transaction":
        return run(`INSERT OR REPLACE INTO ${t.transactions} (id, envelope, expires_at) VALUES (?, ?, ?)`, [
          record.id,
          record.envelope,
          record.expiresAt
        ])
      case "Code":
        return Effect.flatMap(codeJson.encode(record.record, method), (body) =>
          run(
            `INSERT OR REPLACE INTO ${t.codes} (hash, grant_id, body, expires_at, consumed_at) VALUES (?, ?, ?, ?, ?)`,
            [record.hash, record.record.grantId, body, record.record.expiresAt, record.consumed ? now : null]
          ))
      case "AccessToken":
        return Effect.flatMap(accessJson.encode(record.record, method), (body) =>
          run(`INSERT OR REPLACE INTO ${t.accessTokens} (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`, [
            record.hash,
            record.record.grantId,
            body,
            record.record.expiresAt
          ]))
      case "RefreshToken": {
        // The body is the record as first saved; rotation lives in its own columns.
        const { rotatedAt, ...unrotated } = record.record
        return Effect.flatMap(refreshJson.encode(unrotated, method), (body) =>
          run(
            `INSERT OR REPLACE INTO ${t.refreshTokens}
              (hash, grant_id, body, expires_at, rotated_at, successor_hash, successor_envelope) VALUES (?, ?, ?, ?, ?, ?, ?)`,
            [
              record.hash,
              unrotated.grantId,
              body,
              unrotated.expiresAt,
              rotatedAt ?? null,
              record.successorHash ?? null,
              record.sealedSuccessor ?? null
            ]
          ))
      }
      case "Grant":
        return Effect.flatMap(grantJson.encode(record.record, method), (body) =>
          run(`INSERT OR REPLACE INTO ${t.grants} (id, body, expires_at) VALUES (?, ?, ?)`, [
            record.record.id,
            body,
            record.record.expiresAt
          ]))
      case "ProviderTokens":
        return run(
          `INSERT OR REPLACE INTO ${t.providerTokens} (authorization_id, provider_id, envelope, expires_at) VALUES (?, ?, ?, ?)`,
          [record.authorizationId, record.providerId, record.envelope, record.expiresAt]
        )
      case "Session": {
        return run(
          `INSERT OR REPLACE INTO ${t.sessions} (${COLUMNS}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          sessionValues(record.session)
        )
      }
      case "Client":
        return Effect.flatMap(clientJson.encode(record.client, method), (body) =>
          run(`INSERT OR REPLACE INTO ${t.clients} (client_id, body) VALUES (?, ?)`, [record.client.clientId, body]))
      case "SigningKeys":
        return run(`INSERT OR REPLACE INTO ${t.signingKeys} (name, version, envelope) VALUES (?, ?, ?)`, [
          Keys.signingKeys,
          record.version,
          record.envelope
        ])
    }
  }

  const importRecords = (batch: ReadonlyArray<StoredRecord>) =>
    Effect.gen(function*() {
      const method = "StoreMaintenance.importRecords"
      const now = yield* Clock.currentTimeMillis
      const live = batch.filter((record) => isStoredLive(record, now))
      if (live.length === 0) return
      yield* db.write(method, Effect.forEach(live, (record) => importOne(record, now, method), { discard: true }))
    }).pipe(traced("StoreMaintenance.importRecords"))

  const size = Effect.map(
    Effect.all([
      db.all<{ readonly page_count: number }>("StoreMaintenance.size", "PRAGMA page_count", []),
      db.all<{ readonly page_size: number }>("StoreMaintenance.size", "PRAGMA page_size", [])
    ]),
    ([count, pageSize]) => Option.some((count[0]?.page_count ?? 0) * (pageSize[0]?.page_size ?? 0))
  )

  return {
    description,
    records,
    counts,
    reseal,
    importRecords,
    containers: Effect.succeed([]),
    resealContainers: Effect.void,
    size
  }
}
