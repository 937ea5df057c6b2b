import { Clock, Effect, Option, Redacted } from "effect"
import { Keys } from "../../internal/keys.ts"
import { withNow } from "../../internal/now.ts"
import { type Expiring, isLive, stamp, stampRefreshToken, successorOf } from "../../internal/records.ts"
import { open, seal } from "../../internal/sealed.ts"
import { AuthorizationCode, type CodeConsumption } from "../../schema/code.ts"
import type { ResolvedTokenStoreOptions } from "../../schema/options.ts"
import { AccessTokenRecord, Grant, IssuedPair, type Rotation } from "../../schema/token.ts"
import { Transaction } from "../../schema/transaction.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import type { Redis } from "ioredis"
import { type RedisClient, traced } from "./client.ts"
import { array, corrupt, int, type JsonCodec, jsonCodec, refreshFields, refreshRecord, string } from "./codec.ts"
import * as Lua from "./lua.ts"

const codes = jsonCodec(AuthorizationCode)
const accessTokens = jsonCodec(AccessTokenRecord)
const grants = jsonCodec(Grant)

/**
 * The Redis `TokenStore`. Transactions are sealed envelopes, grants JSON strings; codes,
 * access and refresh tokens are hashes under their lookup hash, indexed by
 * grant. `takeTransaction` is one `GETDEL`; `consumeCode`, rotation and grant
 * revocation are one Lua script each (see `lua.ts`).
 */
export const makeTokenStore = (client: RedisClient, options: ResolvedTokenStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const P = client.prefix

    /** A live JSON record by key, or `None`. */
    const readJson = <A extends Expiring>(
      codec: JsonCodec<A>,
      method: string,
      read: Effect.Effect<string | null, StoreError>
    ): Effect.Effect<Option.Option<A>, StoreError> =>
      Effect.flatMap(read, (json) =>
        json === null ? Effect.succeed(Option.none<A>()) : Effect.flatMap(
          codec.decode(json, method),
          (record) => withNow((now) => Effect.succeed(isLive(record, now) ? Option.some(record) : Option.none()))
        ))

    /** The reply of the `consumeCode` script. */
    const consumption = (reply: unknown): Effect.Effect<CodeConsumption, StoreError> => {
      const method = "TokenStore.consumeCode"
      if (!Array.isArray(reply)) return Effect.fail(corrupt(method))
      switch (reply[0]) {
        case "C":
          return Effect.map(codes.decode(reply[1], method), (code) => ({ _tag: "Consumed", code }) as const)
        case "R":
          return Effect.map(string(reply[1], method), (grantId) => ({ _tag: "Replayed", grantId }) as const)
        case "N":
          return Effect.succeed({ _tag: "NotFound" })
        default:
          return Effect.fail(corrupt(method))
      }
    }

    /** Pending authorizations are sealed: they carry the upstream PKCE verifier. */
    const readTransaction = (id: string, method: string, read: (redis: Redis) => Promise<string | null>) =>
      Effect.flatMap(client.call(method, read), (envelope) =>
        envelope === null ? Effect.succeed(Option.none<Transaction>()) : Effect.flatMap(
          open(crypto, Transaction, envelope, Keys.transaction(id), method),
          (transaction) =>
            Effect.map(Clock.currentTimeMillis, (now) => isLive(transaction, now) ? Option.some(transaction) : Option.none())
        ))

    const getGrant = (id: string) =>
      readJson(grants, "TokenStore.getGrant", client.call("TokenStore.getGrant", (r) => r.get(P + Keys.grant(id))))

    const service: TokenStore.Service = {
      saveTransaction: (input) =>
        Effect.gen(function*() {
          const method = "TokenStore.saveTransaction"
          const now = yield* Clock.currentTimeMillis
          const transaction = stamp<Transaction>(input, now, options.transactionTtl)
          const envelope = yield* seal(crypto, Transaction, transaction, Keys.transaction(transaction.id), method)
          yield* client.run(method, Lua.putString, [Keys.transaction(transaction.id), envelope, now, transaction.expiresAt])
          return transaction
        }).pipe(traced("TokenStore.saveTransaction")),

      getTransaction: (id) =>
        readTransaction(id, "TokenStore.getTransaction", (r) => r.get(P + Keys.transaction(id))),

      takeTransaction: (id) =>
        readTransaction(id, "TokenStore.takeTransaction", (r) => r.getdel(P + Keys.transaction(id))).pipe(
          traced("TokenStore.takeTransaction")
        ),

      // The hot paths are flatMap chains rather than generators (a few µs per call).
      saveCode: (code, input) =>
        Effect.flatMap(crypto.hash(code), (hash) =>
          withNow((now) => {
            const method = "TokenStore.saveCode"
            const record = stamp<AuthorizationCode>(input, now, options.codeTtl)
            return Effect.flatMap(codes.encode(record, method), (json) =>
              Effect.as(
                client.run(method, Lua.putMember, [Keys.code(hash), now, record.expiresAt, record.grantId, "r", json]),
                record
              ))
          })).pipe(traced("TokenStore.saveCode")),

      consumeCode: (code) =>
        Effect.flatMap(crypto.hash(code), (hash) =>
          withNow((now) =>
            Effect.flatMap(
              client.run("TokenStore.consumeCode", Lua.consumeCode, [Keys.code(hash), now]),
              consumption
            ))).pipe(traced("TokenStore.consumeCode")),

      saveAccessToken: (token, input) =>
        Effect.gen(function*() {
          const method = "TokenStore.saveAccessToken"
          const hash = yield* crypto.hash(token)
          const now = yield* Clock.currentTimeMillis
          const record = stamp<AccessTokenRecord>(input, now, options.accessTokenTtl)
          const json = yield* accessTokens.encode(record, method)
          yield* client.run(method, Lua.putMember, [Keys.accessToken(hash), now, record.expiresAt, record.grantId, "r", json])
          return record
        }).pipe(traced("TokenStore.saveAccessToken")),

      getAccessToken: (token) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          readJson(
            accessTokens,
            "TokenStore.getAccessToken",
            client.call("TokenStore.getAccessToken", (r) => r.hget(P + Keys.accessToken(hash), "r"))
          )).pipe(traced("TokenStore.getAccessToken")),

      revokeAccessToken: (token) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          Effect.map(
            client.run("TokenStore.revokeAccessToken", Lua.dropMember, [Keys.accessToken(hash)]),
            (removed) => int(removed) > 0
          )),

      saveRefreshToken: (token, input) =>
        Effect.gen(function*() {
          const method = "TokenStore.saveRefreshToken"
          const hash = yield* crypto.hash(token)
          // The chain ends with the grant unless the caller says otherwise.
          const grantExpiresAt = input.absoluteExpiresAt === undefined
            ? Option.getOrUndefined(Option.map(yield* getGrant(input.grantId), (grant) => grant.expiresAt))
            : undefined
          const now = yield* Clock.currentTimeMillis
          const record = stampRefreshToken(input, now, options.refreshTokenTtl, grantExpiresAt)
          const fields = yield* refreshFields(record, method)
          yield* client.run(method, Lua.putMember, [Keys.refreshToken(hash), now, record.expiresAt, record.grantId, ...fields])
          return record
        }).pipe(traced("TokenStore.saveRefreshToken")),

      getRefreshToken: (token) =>
        Effect.gen(function*() {
          const method = "TokenStore.getRefreshToken"
          const hash = yield* crypto.hash(token)
          const [b, n, c, x, rot] = yield* client.call(
            method,
            (r) => r.hmget(P + Keys.refreshToken(hash), "b", "n", "c", "x", "rot")
          )
          if (b === null || b === undefined) return Option.none()
          const record = yield* refreshRecord(b, n, c, x, rot, method)
          const now = yield* Clock.currentTimeMillis
          return isLive(record, now) ? Option.some(record) : Option.none()
        }).pipe(traced("TokenStore.getRefreshToken")),

      rotateRefreshToken: (presented, successor) =>
        Effect.gen(function*() {
          const method = "TokenStore.rotateRefreshToken"
          const hash = yield* crypto.hash(presented)
          const successorHash = yield* crypto.hash(Redacted.value(successor.refreshToken))
          const sealed = yield* seal(crypto, IssuedPair, successor, Keys.refreshSuccessor(hash), method)
          const now = yield* Clock.currentTimeMillis
          const reply = yield* array(
            yield* client.run(method, Lua.rotateRefresh, [
              Keys.refreshToken(hash),
              Keys.refreshToken(successorHash),
              now,
              options.refreshGraceWindow,
              options.refreshTokenTtl,
              sealed
            ]),
            method
          )
          switch (reply[0]) {
            case "R": {
              const previous = yield* refreshRecord(reply[1], reply[2], reply[3], reply[4], now, method)
              // The script wrote the successor by the same rule; its expiry says so.
              const current = successorOf(previous, now, options.refreshTokenTtl)
              if (int(reply[5]) !== current.expiresAt) return yield* Effect.fail(corrupt(method))
              return { _tag: "Rotated", previous, current } satisfies Rotation
            }
            case "G": {
              const pair = yield* open(crypto, IssuedPair, yield* string(reply[1], method), Keys.refreshSuccessor(hash), method)
              const current = yield* refreshRecord(reply[2], reply[3], reply[4], reply[5], null, method)
              return { _tag: "GraceReplay", current, pair } satisfies Rotation
            }
            case "U":
              return { _tag: "ReuseDetected", grantId: yield* string(reply[1], method) } satisfies Rotation
            case "N":
              return { _tag: "NotFound" } satisfies Rotation
            default:
              return yield* Effect.fail(corrupt(method))
          }
        }).pipe(traced("TokenStore.rotateRefreshToken")),

      saveGrant: (input) =>
        Effect.gen(function*() {
          const method = "TokenStore.saveGrant"
          const now = yield* Clock.currentTimeMillis
          const grant = stamp<Grant>(input, now, options.grantTtl)
          const json = yield* grants.encode(grant, method)
          yield* client.run(method, Lua.putString, [Keys.grant(grant.id), json, now, grant.expiresAt])
          return grant
        }),

      getGrant,

      revokeGrant: (id) =>
        Effect.map(client.run("TokenStore.revokeGrant", Lua.revokeGrant, [id]), (removed) => int(removed) > 0).pipe(
          traced("TokenStore.revokeGrant")
        )
    }

    return service
  })
