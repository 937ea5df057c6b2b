import { Clock, Effect, Option, Redacted, Schema } from "effect"
import { Keys } from "../../internal/keys.ts"
import type { KeyedLock } from "../../internal/keyedLock.ts"
import { decideRotation, stamp, stampRefreshToken, successorOf } from "../../internal/records.ts"
import { AuthorizationCode, type CodeConsumption } from "../../schema/code.ts"
import type { ResolvedTokenStoreOptions } from "../../schema/options.ts"
import { AccessTokenRecord, Grant, IssuedPair, RefreshTokenRecord, type Rotation } from "../../schema/token.ts"
import { Transaction } from "../../schema/transaction.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import type { KvTier } from "./tier.ts"
import { traced } from "../../internal/traced.ts"

/** Two independent KV calls at once (a record and its index key). */
const both = <E>(a: Effect.Effect<void, E>, b: Effect.Effect<void, E>) =>
  Effect.all([a, b], { concurrency: 2, discard: true })

/** A code's stored value: it stays, marked consumed, until it expires, so a replay is detected. */
const CodeEntry = Schema.Struct({ code: AuthorizationCode, consumed: Schema.Boolean })

/**
 * A refresh token's stored value. Once rotated it also holds its successor's
 * hash and the pair handed out with it (inside the same envelope), for a
 * replay within the grace window.
 */
const RefreshEntry = Schema.Struct({
  record: RefreshTokenRecord,
  successorHash: Schema.optional(Schema.String),
  successor: Schema.optional(IssuedPair)
})
type RefreshEntry = typeof RefreshEntry.Type

/**
 * The KV `TokenStore`. Records are sealed values under `Keys.*` (bearer
 * secrets only as their lookup hashes), each with its expiry in the metadata.
 * Revoking a grant finds its records through `grant-members:{grant}:{key}`
 * keys, one per record, listed by prefix.
 *
 * `takeTransaction`, `consumeCode` and `rotateRefreshToken` read, decide and
 * write: KV has no compare-and-set, so they are serialized per key inside
 * this instance only. Two instances racing on one code can both consume it.
 */
export const makeTokenStore = (
  tier: KvTier,
  crypto: Crypto.Service,
  providers: ProviderTokenStore.Service,
  lock: KeyedLock,
  options: ResolvedTokenStoreOptions
): TokenStore.Service => {
  /** Index a record under its grant, expiring with it. */
  const addMember = (method: string, grantId: string, key: string, expiresAt: number) =>
    tier.put(method, Keys.grantMember(grantId, key), "", { e: expiresAt })

  const revokeGrant = (grantId: string) =>
    Effect.gen(function*() {
      const method = "TokenStore.revokeGrant"
      const grant = yield* tier.get(method, Keys.grant(grantId))
      const members = yield* tier.list(method, Keys.grantMembersOf(grantId))
      const prefixLength = Keys.grantMembersOf(grantId).length
      const removeAll = (keys: ReadonlyArray<string>) =>
        Effect.forEach(keys, (key) => tier.delete(method, key), { concurrency: 8, discard: true })
      // Records before their index keys, the grant last: if a deletion fails, a retry still finds the rest.
      yield* removeAll(members.map((m) => m.key.slice(prefixLength)))
      yield* removeAll(members.map((m) => m.key))
      yield* providers.deleteAll(grantId)
      yield* tier.delete(method, Keys.grant(grantId))
      return Option.isSome(grant) || members.length > 0
    })

  const saveRefreshEntry = (method: string, hash: string, entry: RefreshEntry) =>
    tier.write(method, RefreshEntry, Keys.refreshToken(hash), entry, { e: entry.record.expiresAt })

  return {
    saveTransaction: (input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const transaction = stamp<Transaction>(input, now, options.transactionTtl)
        yield* tier.write("TokenStore.saveTransaction", Transaction, Keys.transaction(transaction.id), transaction, {
          e: transaction.expiresAt
        })
        return transaction
      }).pipe(traced("TokenStore.saveTransaction")),

    getTransaction: (id) => tier.read("TokenStore.getTransaction", Transaction, Keys.transaction(id)),

    takeTransaction: (id) =>
      lock.withLock(Keys.transaction(id))(Effect.gen(function*() {
        const method = "TokenStore.takeTransaction"
        const transaction = yield* tier.read(method, Transaction, Keys.transaction(id))
        if (Option.isSome(transaction)) yield* tier.delete(method, Keys.transaction(id))
        return transaction
      })).pipe(traced("TokenStore.takeTransaction")),

    saveCode: (code, input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveCode"
        const hash = yield* crypto.hash(code)
        const now = yield* Clock.currentTimeMillis
        const record = stamp<AuthorizationCode>(input, now, options.codeTtl)
        yield* both(
          tier.write(method, CodeEntry, Keys.code(hash), { code: record, consumed: false }, { e: record.expiresAt }),
          addMember(method, record.grantId, Keys.code(hash), record.expiresAt)
        )
        return record
      }).pipe(traced("TokenStore.saveCode")),

    consumeCode: (code) =>
      Effect.gen(function*() {
        const method = "TokenStore.consumeCode"
        const key = Keys.code(yield* crypto.hash(code))
        return yield* lock.withLock(key)(Effect.gen(function*() {
          const entry = yield* tier.read(method, CodeEntry, key)
          if (Option.isNone(entry)) return { _tag: "NotFound" } satisfies CodeConsumption
          const { code: record, consumed } = entry.value
          if (consumed) return { _tag: "Replayed", grantId: record.grantId } satisfies CodeConsumption
          yield* tier.write(method, CodeEntry, key, { code: record, consumed: true }, { e: record.expiresAt })
          return { _tag: "Consumed", code: record } satisfies CodeConsumption
        }))
      }).pipe(traced("TokenStore.consumeCode")),

    saveAccessToken: (token, input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveAccessToken"
        const hash = yield* crypto.hash(token)
        const now = yield* Clock.currentTimeMillis
        const record = stamp<AccessTokenRecord>(input, now, options.accessTokenTtl)
        yield* both(
          tier.write(method, AccessTokenRecord, Keys.accessToken(hash), record, { e: record.expiresAt }),
          addMember(method, record.grantId, Keys.accessToken(hash), record.expiresAt)
        )
        return record
      }).pipe(traced("TokenStore.saveAccessToken")),

    getAccessToken: (token) =>
      Effect.flatMap(crypto.hash(token), (hash) =>
        tier.read("TokenStore.getAccessToken", AccessTokenRecord, Keys.accessToken(hash))).pipe(
          traced("TokenStore.getAccessToken")
        ),

    revokeAccessToken: (token) =>
      Effect.gen(function*() {
        const method = "TokenStore.revokeAccessToken"
        const key = Keys.accessToken(yield* crypto.hash(token))
        const record = yield* tier.read(method, AccessTokenRecord, key)
        if (Option.isNone(record)) return false
        yield* tier.delete(method, key)
        yield* tier.delete(method, Keys.grantMember(record.value.grantId, key))
        return true
      }),

    saveRefreshToken: (token, input) =>
      Effect.gen(function*() {
        const method = "TokenStore.saveRefreshToken"
        const hash = yield* crypto.hash(token)
        const grant = yield* tier.read(method, Grant, Keys.grant(input.grantId))
        const now = yield* Clock.currentTimeMillis
        const record = stampRefreshToken(
          input,
          now,
          options.refreshTokenTtl,
          Option.getOrUndefined(Option.map(grant, (g) => g.expiresAt))
        )
        yield* both(
          saveRefreshEntry(method, hash, { record }),
          addMember(method, record.grantId, Keys.refreshToken(hash), record.expiresAt)
        )
        return record
      }).pipe(traced("TokenStore.saveRefreshToken")),

    getRefreshToken: (token) =>
      Effect.flatMap(crypto.hash(token), (hash) =>
        tier.read("TokenStore.getRefreshToken", RefreshEntry, Keys.refreshToken(hash))).pipe(
          Effect.map(Option.map((entry) => entry.record))
        ),

    rotateRefreshToken: (presented, successor) =>
      Effect.gen(function*() {
        const method = "TokenStore.rotateRefreshToken"
        const hash = yield* crypto.hash(presented)
        const successorHash = yield* crypto.hash(Redacted.value(successor.refreshToken))
        return yield* lock.withLock(Keys.refreshToken(hash))(Effect.gen(function*() {
          const entry = Option.getOrUndefined(yield* tier.read(method, RefreshEntry, Keys.refreshToken(hash)))
          const current = entry?.successorHash === undefined
            ? undefined
            : Option.getOrUndefined(yield* tier.read(method, RefreshEntry, Keys.refreshToken(entry.successorHash)))
          const now = yield* Clock.currentTimeMillis
          switch (decideRotation(entry?.record, current?.record, now, options.refreshGraceWindow)) {
            case "NotFound":
              return { _tag: "NotFound" } satisfies Rotation
            case "Rotate": {
              const previous = { ...(entry as RefreshEntry).record, rotatedAt: now }
              const next = successorOf(previous, now, options.refreshTokenTtl)
              // The successor first: a failure in between leaves an unused successor, never a rotated
              // predecessor without one.
              yield* both(
                saveRefreshEntry(method, successorHash, { record: next }),
                addMember(method, next.grantId, Keys.refreshToken(successorHash), next.expiresAt)
              )
              yield* saveRefreshEntry(method, hash, { record: previous, successorHash, successor })
              return { _tag: "Rotated", previous, current: next } satisfies Rotation
            }
            case "GraceReplay": {
              const pair = (entry as RefreshEntry).successor
              if (pair === undefined) {
                return yield* Effect.fail(
                  new StoreError({ reason: "Corrupt", method, description: "a rotated refresh token has no successor pair" })
                )
              }
              return { _tag: "GraceReplay", current: (current as RefreshEntry).record, pair } satisfies Rotation
            }
            case "Reuse": {
              const grantId = (entry as RefreshEntry).record.grantId
              yield* revokeGrant(grantId)
              return { _tag: "ReuseDetected", grantId } satisfies Rotation
            }
          }
        }))
      }).pipe(traced("TokenStore.rotateRefreshToken")),

    saveGrant: (input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const grant = stamp<Grant>(input, now, options.grantTtl)
        yield* tier.write("TokenStore.saveGrant", Grant, Keys.grant(grant.id), grant, { e: grant.expiresAt })
        return grant
      }),

    getGrant: (id) => tier.read("TokenStore.getGrant", Grant, Keys.grant(id)),

    revokeGrant: (id) => revokeGrant(id).pipe(traced("TokenStore.revokeGrant"))
  }
}
