import { Clock, Effect, Either, Option, Redacted } from "effect"
import { Keys } from "../../internal/keys.ts"
import { withNow } from "../../internal/now.ts"
import { type Expiring, isLive, stamp, stampRefreshToken, successorOf } from "../../internal/records.ts"
import { open, seal, sealIssuedPair } from "../../internal/sealed.ts"
import { AuthorizationCode, type CodeConsumption } from "../../schema/code.ts"
import type { ResolvedTokenStoreOptions } from "../../schema/options.ts"
import { AccessTokenRecord, Grant, IssuedPair, type Rotation } from "../../schema/token.ts"
import { Transaction } from "../../schema/transaction.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import type { Redis } from "ioredis"
import { type RedisClient, traced, tracedWithNow } from "./client.ts"
import { corrupt, int, type JsonCodec, jsonCodec, refreshFields, refreshRecord, string } from "./codec.ts"
import * as Lua from "./lua.ts"

const codes = jsonCodec(AuthorizationCode)
const accessTokens = jsonCodec(AccessTokenRecord)
const grants = jsonCodec(Grant)
const notFound = Either.right({ _tag: "NotFound" } as const)
const ROTATE = "TokenStore.rotateRefreshToken"

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

    /** The reply of the `consumeCode` script. */
    const consumption = (reply: unknown): Either.Either<CodeConsumption, StoreError> => {
      const method = "TokenStore.consumeCode"
      if (!Array.isArray(reply)) return Either.left(corrupt(method))
      switch (reply[0]) {
        case "C":
          return Either.map(codes.decode(reply[1], method), (code) => ({ _tag: "Consumed", code }) as const)
        case "R":
          return Either.map(string(reply[1], method), (grantId) => ({ _tag: "Replayed", grantId }) as const)
        case "N":
          return notFound
        default:
          return Either.left(corrupt(method))
      }
    }

    /** A live record from a JSON reply (`null`: none), as a `Reply`. */
    const liveJson = <A extends Expiring>(codec: JsonCodec<A>, method: string, now: number) =>
    (json: string | null): Either.Either<Option.Option<A>, StoreError> =>
      json === null
        ? Either.right(Option.none())
        : Either.map(codec.decode(json, method), (record) => isLive(record, now) ? Option.some(record) : Option.none())

    /** Pending authorizations are sealed: they carry the upstream PKCE verifier. */
    const readTransaction = (id: string, method: string, read: (redis: Redis) => Promise<string | null>) =>
      Effect.flatMap(client.call(method, read), (envelope) =>
        envelope === null ? Effect.succeed(Option.none<Transaction>()) : Effect.flatMap(
          open(crypto, Transaction, envelope, Keys.transaction(id), method),
          (transaction) =>
            Effect.map(Clock.currentTimeMillis, (now) => isLive(transaction, now) ? Option.some(transaction) : Option.none())
        ))

    /** The reply of the `rotateRefresh` script. */
    const rotation = (reply: unknown, hash: string, now: number): Effect.Effect<Rotation, StoreError> => {
      if (!Array.isArray(reply)) return Either.left(corrupt(ROTATE))
      switch (reply[0]) {
        case "R":
          return Either.flatMap(refreshRecord(reply[1], reply[2], reply[3], reply[4], now, ROTATE), (previous) => {
            // The script wrote the successor by the same rule; its expiry says so.
            const current = successorOf(previous, now, options.refreshTokenTtl)
            return int(reply[5]) === current.expiresAt
              ? Either.right({ _tag: "Rotated", previous, current })
              : Either.left(corrupt(ROTATE))
          })
        case "G": {
          const envelope = string(reply[1], ROTATE)
          if (Either.isLeft(envelope)) return Either.left(envelope.left)
          return Effect.flatMap(open(crypto, IssuedPair, envelope.right, Keys.refreshSuccessor(hash), ROTATE), (pair) =>
            Either.map(
              refreshRecord(reply[2], reply[3], reply[4], reply[5], null, ROTATE),
              (current) => ({ _tag: "GraceReplay", current, pair }) satisfies Rotation
            ))
        }
        case "U":
          return Either.map(string(reply[1], ROTATE), (grantId) => ({ _tag: "ReuseDetected", grantId }) satisfies Rotation)
        case "N":
          return Either.right({ _tag: "NotFound" })
        default:
          return Either.left(corrupt(ROTATE))
      }
    }

    const getGrant = (id: string) =>
      withNow((now) =>
        client.call("TokenStore.getGrant", (r) => r.get(P + Keys.grant(id)), liveJson(grants, "TokenStore.getGrant", now))
      )

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

      // The hot paths: one step for the clock (and the tracer check), the hash, and the command with its
      // reply read in the callback (see `Reply`).
      saveCode: (code, input) =>
        tracedWithNow("TokenStore.saveCode", (now) =>
          Effect.flatMap(crypto.hash(code), (hash) => {
            const method = "TokenStore.saveCode"
            const record = stamp<AuthorizationCode>(input, now, options.codeTtl)
            const json = codes.encode(record, method)
            if (Either.isLeft(json)) return Either.left(json.left)
            return client.run(
              method,
              Lua.putMember,
              [Keys.code(hash), now, record.expiresAt, record.grantId, "r", json.right],
              () => Either.right(record)
            )
          })),

      consumeCode: (code) =>
        tracedWithNow("TokenStore.consumeCode", (now) =>
          Effect.flatMap(
            crypto.hash(code),
            (hash) => client.run("TokenStore.consumeCode", Lua.consumeCode, [Keys.code(hash), now], consumption)
          )),

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
        tracedWithNow("TokenStore.getAccessToken", (now) =>
          Effect.flatMap(crypto.hash(token), (hash) =>
            client.call(
              "TokenStore.getAccessToken",
              (r) => r.hget(P + Keys.accessToken(hash), "r"),
              liveJson(accessTokens, "TokenStore.getAccessToken", now)
            ))),

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

      // The hot path of every refresh: two hashes and the seal, then the script with its reply read in the callback.
      rotateRefreshToken: (presented, successor) =>
        tracedWithNow("TokenStore.rotateRefreshToken", (now) =>
          Effect.flatMap(crypto.hash(presented), (hash) =>
            Effect.flatMap(crypto.hash(Redacted.value(successor.refreshToken)), (successorHash) =>
              Effect.flatMap(
                // The pair's JSON built directly (what its Schema encodes, without Schema's Redacted round trips).
                sealIssuedPair(crypto, successor, Keys.refreshSuccessor(hash), ROTATE),
                (sealed) =>
                  client.run(ROTATE, Lua.rotateRefresh, [
                    Keys.refreshToken(hash),
                    Keys.refreshToken(successorHash),
                    now,
                    options.refreshGraceWindow,
                    options.refreshTokenTtl,
                    sealed
                  ], (reply) => rotation(reply, hash, now))
              )))),

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
