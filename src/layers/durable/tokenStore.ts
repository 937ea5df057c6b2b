import { Clock, Duration, Effect, Option, Redacted } from "effect"
import { jsonColumn } from "../../internal/jsonColumn.ts"
import { Keys } from "../../internal/keys.ts"
import { stamp } from "../../internal/records.ts"
import { open, seal, sealIssuedPair } from "../../internal/sealed.ts"
import { traced } from "../../internal/traced.ts"
import { AuthorizationCode, type CodeConsumption } from "../../schema/code.ts"
import type { ResolvedTokenStoreOptions } from "../../schema/options.ts"
import { AccessTokenRecord, Grant, IssuedPair, RefreshTokenRecord, type Rotation } from "../../schema/token.ts"
import { Transaction } from "../../schema/transaction.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import type { Channel } from "./binding.ts"
import type { RefreshRow } from "./protocol.ts"

const codeJson = jsonColumn(AuthorizationCode)
const accessJson = jsonColumn(AccessTokenRecord)
const refreshJson = jsonColumn(RefreshTokenRecord)
const grantJson = jsonColumn(Grant)

const decodeOptional = <A>(
  body: string | null,
  method: string,
  decode: (text: string, method: string) => Effect.Effect<A, StoreError>
): Effect.Effect<Option.Option<A>, StoreError> => body === null ? Effect.succeed(Option.none()) : Effect.asSome(decode(body, method))

const refreshRecord = (row: RefreshRow, method: string): Effect.Effect<RefreshTokenRecord, StoreError> =>
  Effect.map(refreshJson.decode(row.body, method), (record) => row.rotatedAt === null ? record : { ...record, rotatedAt: row.rotatedAt })

/**
 * The Durable Object `TokenStore`: hashing, sealing, stamping and decoding
 * here, in the Worker; each atomic step one call to the object (see
 * `object/tokens.ts`), which sees only hashes, envelopes and record bodies.
 */
export const makeTokenStore = (
  objects: Channel,
  crypto: Crypto.Service,
  options: ResolvedTokenStoreOptions
): TokenStore.Service => {
  const openTransaction = (id: string, envelope: string | null, method: string) =>
    envelope === null ? Effect.succeed(Option.none()) : Effect.asSome(open(crypto, Transaction, envelope, Keys.transaction(id), method))

  return {
    saveTransaction: (input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveTransaction"
        const now = yield* Clock.currentTimeMillis
        const transaction = stamp<Transaction>(input, now, options.transactionTtl)
        const envelope = yield* seal(crypto, Transaction, transaction, Keys.transaction(transaction.id), method)
        yield* objects.callAt(method, now, (stub, ctx) =>
          stub.saveTransaction(ctx, transaction.id, envelope, transaction.expiresAt))
        return transaction
      }).pipe(traced("TokenStore.saveTransaction")),

    getTransaction: (id) => {
      const method = "TokenStore.getTransaction"
      return Effect.flatMap(
        objects.call(method, (stub, ctx) => stub.getTransaction(ctx, id)),
        (envelope) => openTransaction(id, envelope, method)
      )
    },

    takeTransaction: (id) => {
      const method = "TokenStore.takeTransaction"
      return Effect.flatMap(
        objects.call(method, (stub, ctx) => stub.takeTransaction(ctx, id)),
        (envelope) => openTransaction(id, envelope, method)
      ).pipe(traced(method))
    },

    saveCode: (code, input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveCode"
        const hash = yield* crypto.hash(code)
        const now = yield* Clock.currentTimeMillis
        const record = stamp<AuthorizationCode>(input, now, options.codeTtl)
        const body = yield* codeJson.encode(record, method)
        yield* objects.callAt(method, now, (stub, ctx) => stub.saveCode(ctx, hash, record.grantId, body, record.expiresAt))
        return record
      }).pipe(traced("TokenStore.saveCode")),

    consumeCode: (code) =>
      Effect.gen(function*() {
        const method = "TokenStore.consumeCode"
        const hash = yield* crypto.hash(code)
        const reply = yield* objects.call(method, (stub, ctx) => stub.consumeCode(ctx, hash))
        switch (reply._tag) {
          case "Consumed":
            return { _tag: "Consumed", code: yield* codeJson.decode(reply.body, method) } satisfies CodeConsumption
          case "Replayed":
            return { _tag: "Replayed", grantId: reply.grantId } satisfies CodeConsumption
          case "NotFound":
            return { _tag: "NotFound" } satisfies CodeConsumption
        }
      }).pipe(traced("TokenStore.consumeCode")),

    saveAccessToken: (token, input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveAccessToken"
        const hash = yield* crypto.hash(token)
        const now = yield* Clock.currentTimeMillis
        const record = stamp<AccessTokenRecord>(input, now, options.accessTokenTtl)
        const body = yield* accessJson.encode(record, method)
        yield* objects.callAt(method, now, (stub, ctx) =>
          stub.saveAccessToken(ctx, hash, record.grantId, body, record.expiresAt))
        return record
      }).pipe(traced("TokenStore.saveAccessToken")),

    getAccessToken: (token) =>
      Effect.gen(function*() {
        const method = "TokenStore.getAccessToken"
        const hash = yield* crypto.hash(token)
        const body = yield* objects.call(method, (stub, ctx) => stub.getAccessToken(ctx, hash))
        return yield* decodeOptional(body, method, accessJson.decode)
      }).pipe(traced("TokenStore.getAccessToken")),

    revokeAccessToken: (token) =>
      Effect.flatMap(
        crypto.hash(token),
        (hash) => objects.call("TokenStore.revokeAccessToken", (stub, ctx) => stub.revokeAccessToken(ctx, hash))
      ),

    saveRefreshToken: (token, input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveRefreshToken"
        const hash = yield* crypto.hash(token)
        const { ttl, ...fields } = input
        const ttlMillis = ttl === undefined ? options.refreshTokenTtl : Duration.toMillis(Duration.decode(ttl))
        // Stamped inside the object: the chain's end defaults to the grant's expiry, read in the same step.
        const body = yield* objects.call(method, (stub, ctx) => stub.saveRefreshToken(ctx, hash, fields, ttlMillis))
        return yield* refreshJson.decode(body, method)
      }).pipe(traced("TokenStore.saveRefreshToken")),

    getRefreshToken: (token) =>
      Effect.gen(function*() {
        const method = "TokenStore.getRefreshToken"
        const hash = yield* crypto.hash(token)
        const row = yield* objects.call(method, (stub, ctx) => stub.getRefreshToken(ctx, hash))
        return row === null ? Option.none() : Option.some(yield* refreshRecord(row, method))
      }),

    rotateRefreshToken: (presented, successor) =>
      Effect.gen(function*() {
        const method = "TokenStore.rotateRefreshToken"
        const hash = yield* crypto.hash(presented)
        const successorHash = yield* crypto.hash(Redacted.value(successor.refreshToken))
        const envelope = yield* sealIssuedPair(crypto, successor, Keys.refreshSuccessor(hash), method)
        const now = yield* Clock.currentTimeMillis
        const reply = yield* objects.callAt(method, now, (stub, ctx) =>
          stub.rotateRefreshToken(ctx, hash, { hash: successorHash, envelope, ttl: options.refreshTokenTtl }))
        switch (reply._tag) {
          case "Rotated": {
            const previous = yield* refreshJson.decode(reply.previous, method)
            const current = yield* refreshJson.decode(reply.current, method)
            return { _tag: "Rotated", previous: { ...previous, rotatedAt: now }, current } satisfies Rotation
          }
          case "GraceReplay": {
            const current = yield* refreshRecord(reply.current, method)
            const pair = yield* open(crypto, IssuedPair, reply.envelope, Keys.refreshSuccessor(hash), method)
            return { _tag: "GraceReplay", current, pair } satisfies Rotation
          }
          case "ReuseDetected":
            return { _tag: "ReuseDetected", grantId: reply.grantId } satisfies Rotation
          case "NotFound":
            return { _tag: "NotFound" } satisfies Rotation
        }
      }).pipe(traced("TokenStore.rotateRefreshToken")),

    saveGrant: (input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveGrant"
        const now = yield* Clock.currentTimeMillis
        const grant = stamp<Grant>(input, now, options.grantTtl)
        const body = yield* grantJson.encode(grant, method)
        yield* objects.callAt(method, now, (stub, ctx) => stub.saveGrant(ctx, grant.id, body, grant.expiresAt))
        return grant
      }),

    getGrant: (id) => {
      const method = "TokenStore.getGrant"
      return Effect.flatMap(
        objects.call(method, (stub, ctx) => stub.getGrant(ctx, id)),
        (body) => decodeOptional(body, method, grantJson.decode)
      )
    },

    revokeGrant: (id) =>
      objects.call("TokenStore.revokeGrant", (stub, ctx) => stub.revokeGrant(ctx, id)).pipe(traced("TokenStore.revokeGrant"))
  }
}
