import { Clock, Effect, Option, Redacted } from "effect"
import { Keys } from "../../internal/keys.ts"
import { withNow } from "../../internal/now.ts"
import { decideRotation, stamp, stampRefreshToken, successorOf } from "../../internal/records.ts"
import { open, seal, sealIssuedPair } from "../../internal/sealed.ts"
import { AuthorizationCode, type CodeConsumption } from "../../schema/code.ts"
import type { ResolvedTokenStoreOptions } from "../../schema/options.ts"
import { AccessTokenRecord, Grant, IssuedPair, RefreshTokenRecord, type Rotation } from "../../schema/token.ts"
import { Transaction } from "../../schema/transaction.ts"
import { Crypto } from "../../services/Crypto.ts"
import { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import { changes, type Db, type Program, rows, traced } from "./db.ts"
import { jsonColumn } from "../../internal/jsonColumn.ts"
import type { Tables } from "./tables.ts"

const codeJson = jsonColumn(AuthorizationCode)
const accessJson = jsonColumn(AccessTokenRecord)
const refreshJson = jsonColumn(RefreshTokenRecord)
const grantJson = jsonColumn(Grant)

const noRecord = Effect.succeed(Option.none<never>())

const SAVE_CODE = "TokenStore.saveCode"
const CONSUME_CODE = "TokenStore.consumeCode"
const SAVE_ACCESS = "TokenStore.saveAccessToken"
const GET_ACCESS = "TokenStore.getAccessToken"
const ROTATE = "TokenStore.rotateRefreshToken"
const GET_GRANT = "TokenStore.getGrant"

interface BodyRow {
  readonly body: string
}
interface EnvelopeRow {
  readonly envelope: string
}
interface RefreshRow {
  readonly body: string
  readonly rotated_at: number | null
}
/** What rotation's transaction decided; a grace replay's pair is opened after it, outside. */
type RotationOutcome =
  | Rotation
  | { readonly _tag: "OpenPair"; readonly current: RefreshTokenRecord; readonly envelope: string }

interface PresentedRow extends RefreshRow {
  readonly successor_envelope: string | null
  readonly s_body: string | null
  readonly s_rotated_at: number | null
}

/**
 * Remove a grant and everything issued under it (codes, access and refresh
 * tokens, provider tokens), through the `grant_id` / `authorization_id`
 * indexes. Run inside a write transaction. `true` when the grant or any token
 * of it existed.
 */
export function* grantRowsDeleted(t: Tables, grantId: string): Program<boolean> {
  const grants = yield* changes(`DELETE FROM ${t.grants} WHERE id = ?`, [grantId])
  const codes = yield* changes(`DELETE FROM ${t.codes} WHERE grant_id = ?`, [grantId])
  const access = yield* changes(`DELETE FROM ${t.accessTokens} WHERE grant_id = ?`, [grantId])
  const refresh = yield* changes(`DELETE FROM ${t.refreshTokens} WHERE grant_id = ?`, [grantId])
  yield* changes(`DELETE FROM ${t.providerTokens} WHERE authorization_id = ?`, [grantId])
  return grants + codes + access + refresh > 0
}

/**
 * The SQLite `TokenStore`. Each atomic step is one SQL statement or one
 * `BEGIN IMMEDIATE` transaction, so it holds across processes sharing the file:
 * - `takeTransaction`: `DELETE ... RETURNING`;
 * - `consumeCode`: `UPDATE ... SET consumed_at WHERE consumed_at IS NULL ... RETURNING`,
 *   then a read tells a replay from an unknown code;
 * - rotation: a conditional `UPDATE` of the presented row (`WHERE rotated_at IS NULL`)
 *   and the successor's `INSERT` in one transaction; a presented row already
 *   rotated is judged (grace replay or reuse) from the rows in that same transaction;
 * - `revokeGrant`: every row of the grant, provider tokens included, in one transaction.
 * Hashing, sealing and opening happen outside the transactions.
 */
export const makeTokenStore = (db: Db, t: Tables, options: ResolvedTokenStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto

    // The hot statements, their text built once.
    const insertCode =
      `INSERT OR REPLACE INTO ${t.codes} (hash, grant_id, body, expires_at, consumed_at) VALUES (?, ?, ?, ?, NULL)`
    const consumeCodeRow =
      `UPDATE ${t.codes} SET consumed_at = ? WHERE hash = ? AND consumed_at IS NULL AND expires_at > ? RETURNING body`
    const replayedCode = `SELECT grant_id FROM ${t.codes} WHERE hash = ? AND expires_at > ?`
    const insertAccess = `INSERT OR REPLACE INTO ${t.accessTokens} (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`
    const selectAccess = `SELECT body FROM ${t.accessTokens} WHERE hash = ? AND expires_at > ?`
    const selectGrant = `SELECT body FROM ${t.grants} WHERE id = ? AND expires_at > ?`

    const openTransaction = (id: string, envelope: string, method: string) =>
      open(crypto, Transaction, envelope, Keys.transaction(id), method)

    const refreshRecordSync = (body: string, rotatedAt: number | null, method: string): RefreshTokenRecord | StoreError => {
      const record = refreshJson.decodeSync(body, method)
      return record instanceof StoreError || rotatedAt === null ? record : { ...record, rotatedAt }
    }
    const refreshRecord = (body: string, rotatedAt: number | null, method: string) => {
      const record = refreshRecordSync(body, rotatedAt, method)
      return record instanceof StoreError ? Effect.fail(record) : Effect.succeed(record)
    }

    const revokeGrant = (grantId: string, method: string) => db.transact(method, () => grantRowsDeleted(t, grantId))

    const rotateRow = `UPDATE ${t.refreshTokens} SET rotated_at = ?, successor_hash = ?, successor_envelope = ?
      WHERE hash = ? AND rotated_at IS NULL AND expires_at > ? RETURNING body`
    const insertRefresh = `INSERT OR REPLACE INTO ${t.refreshTokens} (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`
    const presentedRows = `SELECT p.body, p.rotated_at, p.successor_envelope, s.body AS s_body, s.rotated_at AS s_rotated_at
      FROM ${t.refreshTokens} p LEFT JOIN ${t.refreshTokens} s ON s.hash = p.successor_hash
      WHERE p.hash = ?`

    /** A presented token that did not rotate: unknown, expired, or rotated before. Judged from the rows, in the transaction. */
    function* judgeRotated(hash: string, now: number): Program<RotationOutcome> {
      const method = ROTATE
      const row = (yield* rows<PresentedRow>(presentedRows, [hash]))[0]
      if (row === undefined || row.rotated_at === null) return { _tag: "NotFound" }
      const record = refreshRecordSync(row.body, row.rotated_at, method)
      if (record instanceof StoreError) return record
      const current = row.s_body === null ? undefined : refreshRecordSync(row.s_body, row.s_rotated_at, method)
      if (current instanceof StoreError) return current
      switch (decideRotation(record, current, now, options.refreshGraceWindow)) {
        case "GraceReplay":
          if (row.successor_envelope !== null && current !== undefined) {
            return { _tag: "OpenPair", current, envelope: row.successor_envelope }
          }
          return new StoreError({ reason: "Corrupt", method, description: "the sealed successor pair is missing" })
        case "Reuse":
          yield* grantRowsDeleted(t, record.grantId)
          return { _tag: "ReuseDetected", grantId: record.grantId }
        default:
          return { _tag: "NotFound" }
      }
    }

    /** Rotation's transaction: the conditional update of the presented row and the successor's insert. */
    function* rotation(hash: string, successorHash: string, sealedSuccessor: string, now: number): Program<RotationOutcome> {
      const rotated = (yield* rows<BodyRow>(rotateRow, [now, successorHash, sealedSuccessor, hash, now]))[0]
      if (rotated === undefined) return yield* judgeRotated(hash, now)
      const previous = refreshJson.decodeSync(rotated.body, ROTATE)
      if (previous instanceof StoreError) return previous
      const next = successorOf(previous, now, options.refreshTokenTtl)
      const body = refreshJson.encodeSync(next, ROTATE)
      if (body instanceof StoreError) return body
      yield* changes(insertRefresh, [successorHash, next.grantId, body, next.expiresAt])
      return { _tag: "Rotated", previous: { ...previous, rotatedAt: now }, current: next }
    }

    const service: TokenStore.Service = {
      saveTransaction: (input) =>
        Effect.gen(function*() {
          const method = "TokenStore.saveTransaction"
          const now = yield* Clock.currentTimeMillis
          const transaction = stamp<Transaction>(input, now, options.transactionTtl)
          const envelope = yield* seal(crypto, Transaction, transaction, Keys.transaction(transaction.id), method)
          yield* db.run(method, `INSERT OR REPLACE INTO ${t.transactions} (id, envelope, expires_at) VALUES (?, ?, ?)`, [
            transaction.id,
            envelope,
            transaction.expiresAt
          ])
          return transaction
        }).pipe(traced("TokenStore.saveTransaction")),

      getTransaction: (id) =>
        Effect.gen(function*() {
          const method = "TokenStore.getTransaction"
          const now = yield* Clock.currentTimeMillis
          const rows = yield* db.all<EnvelopeRow>(
            method,
            `SELECT envelope FROM ${t.transactions} WHERE id = ? AND expires_at > ?`,
            [id, now]
          )
          return rows[0] === undefined ? Option.none() : Option.some(yield* openTransaction(id, rows[0].envelope, method))
        }),

      takeTransaction: (id) =>
        Effect.gen(function*() {
          const method = "TokenStore.takeTransaction"
          const now = yield* Clock.currentTimeMillis
          const rows = yield* db.all<EnvelopeRow>(
            method,
            `DELETE FROM ${t.transactions} WHERE id = ? AND expires_at > ? RETURNING envelope`,
            [id, now]
          )
          return rows[0] === undefined ? Option.none() : Option.some(yield* openTransaction(id, rows[0].envelope, method))
        }).pipe(traced("TokenStore.takeTransaction")),

      saveCode: (code, input) =>
        Effect.flatMap(crypto.hash(code), (hash) =>
          withNow((now) => {
            const record = stamp<AuthorizationCode>(input, now, options.codeTtl)
            return Effect.flatMap(codeJson.encode(record, SAVE_CODE), (body) =>
              Effect.as(db.run(SAVE_CODE, insertCode, [hash, record.grantId, body, record.expiresAt]), record))
          })).pipe(traced(SAVE_CODE)),

      consumeCode: (code) =>
        Effect.flatMap(crypto.hash(code), (hash) =>
          withNow((now) =>
            Effect.flatMap(db.all<BodyRow>(CONSUME_CODE, consumeCodeRow, [now, hash, now]), (consumed) => {
              if (consumed[0] !== undefined) {
                return Effect.map(
                  codeJson.decode(consumed[0].body, CONSUME_CODE),
                  (record): CodeConsumption => ({ _tag: "Consumed", code: record })
                )
              }
              return Effect.map(
                db.all<{ readonly grant_id: string }>(CONSUME_CODE, replayedCode, [hash, now]),
                (replayed): CodeConsumption =>
                  replayed[0] === undefined ? { _tag: "NotFound" } : { _tag: "Replayed", grantId: replayed[0].grant_id }
              )
            }))).pipe(traced(CONSUME_CODE)),

      saveAccessToken: (token, input) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          withNow((now) => {
            const record = stamp<AccessTokenRecord>(input, now, options.accessTokenTtl)
            return Effect.flatMap(accessJson.encode(record, SAVE_ACCESS), (body) =>
              Effect.as(db.run(SAVE_ACCESS, insertAccess, [hash, record.grantId, body, record.expiresAt]), record))
          })).pipe(traced(SAVE_ACCESS)),

      // The hot path: the hash, then the clock, the statement and the record's check in one step (`Db.read`).
      getAccessToken: (token) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          db.read<BodyRow, Option.Option<AccessTokenRecord>, StoreError>(GET_ACCESS, selectAccess, hash, (row) => {
            if (row === undefined) return noRecord
            const record = accessJson.decodeSync(row.body, GET_ACCESS)
            return record instanceof StoreError ? Effect.fail(record) : Effect.succeed(Option.some(record))
          })).pipe(traced(GET_ACCESS)),

      revokeAccessToken: (token) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          Effect.map(
            db.run("TokenStore.revokeAccessToken", `DELETE FROM ${t.accessTokens} WHERE hash = ?`, [hash]),
            (changes) => changes > 0
          )),

      saveRefreshToken: (token, input) =>
        Effect.gen(function*() {
          const method = "TokenStore.saveRefreshToken"
          const hash = yield* crypto.hash(token)
          const now = yield* Clock.currentTimeMillis
          const grant = yield* db.all<{ readonly expires_at: number }>(
            method,
            `SELECT expires_at FROM ${t.grants} WHERE id = ?`,
            [input.grantId]
          )
          const record = stampRefreshToken(input, now, options.refreshTokenTtl, grant[0]?.expires_at)
          const body = yield* refreshJson.encode(record, method)
          yield* db.run(
            method,
            `INSERT OR REPLACE INTO ${t.refreshTokens} (hash, grant_id, body, expires_at) VALUES (?, ?, ?, ?)`,
            [hash, record.grantId, body, record.expiresAt]
          )
          return record
        }).pipe(traced("TokenStore.saveRefreshToken")),

      getRefreshToken: (token) =>
        Effect.gen(function*() {
          const method = "TokenStore.getRefreshToken"
          const hash = yield* crypto.hash(token)
          const now = yield* Clock.currentTimeMillis
          const rows = yield* db.all<RefreshRow>(
            method,
            `SELECT body, rotated_at FROM ${t.refreshTokens} WHERE hash = ? AND expires_at > ?`,
            [hash, now]
          )
          return rows[0] === undefined
            ? Option.none()
            : Option.some(yield* refreshRecord(rows[0].body, rows[0].rotated_at, method))
        }),

      // The hashes and the seal before the transaction; inside it, the rotating path is chained steps (no generator).
      rotateRefreshToken: (presented, successor) =>
        Effect.flatMap(crypto.hash(presented), (hash) =>
          Effect.flatMap(crypto.hash(Redacted.value(successor.refreshToken)), (successorHash) =>
            Effect.flatMap(sealIssuedPair(crypto, successor, Keys.refreshSuccessor(hash), ROTATE), (sealedSuccessor) =>
              Effect.flatMap(
                db.transact(ROTATE, (now) => rotation(hash, successorHash, sealedSuccessor, now)),
                (outcome): Effect.Effect<Rotation, StoreError> =>
                  outcome._tag !== "OpenPair" ? Effect.succeed(outcome) : Effect.map(
                    open(crypto, IssuedPair, outcome.envelope, Keys.refreshSuccessor(hash), ROTATE),
                    (pair): Rotation => ({ _tag: "GraceReplay", current: outcome.current, pair })
                  )
              )))).pipe(traced(ROTATE)),

      saveGrant: (input) =>
        Effect.gen(function*() {
          const method = "TokenStore.saveGrant"
          const now = yield* Clock.currentTimeMillis
          const grant = stamp<Grant>(input, now, options.grantTtl)
          const body = yield* grantJson.encode(grant, method)
          yield* db.run(method, `INSERT OR REPLACE INTO ${t.grants} (id, body, expires_at) VALUES (?, ?, ?)`, [
            grant.id,
            body,
            grant.expiresAt
          ])
          return grant
        }),

      // The clock, the statement and the record's check in one step (`Db.read`).
      getGrant: (id) =>
        db.read<BodyRow, Option.Option<Grant>, StoreError>(GET_GRANT, selectGrant, id, (row) => {
          if (row === undefined) return noRecord
          const grant = grantJson.decodeSync(row.body, GET_GRANT)
          return grant instanceof StoreError ? Effect.fail(grant) : Effect.succeed(Option.some(grant))
        }),

      revokeGrant: (id) => revokeGrant(id, "TokenStore.revokeGrant").pipe(traced("TokenStore.revokeGrant"))
    }

    return service
  })
