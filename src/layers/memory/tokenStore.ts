import { Clock, Effect, Option, Redacted, Schema } from "effect"
import { Keys } from "../../internal/keys.ts"
import { LruMap } from "../../internal/lruMap.ts"
import { withNow } from "../../internal/now.ts"
import { decideRotation, isLive, stamp, stampRefreshToken, successorOf } from "../../internal/records.ts"
import { open, sealIssuedPair } from "../../internal/sealed.ts"
import { AuthorizationCode, type CodeConsumption } from "../../schema/code.ts"
import type { ResolvedTokenStoreOptions } from "../../schema/options.ts"
import { AccessTokenRecord, Grant, IssuedPair, RefreshTokenRecord, type Rotation } from "../../schema/token.ts"
import { Transaction } from "../../schema/transaction.ts"
import { Crypto } from "../../services/Crypto.ts"
import { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import type { TokenStore } from "../../services/TokenStore.ts"
import { GrantIndex } from "./grantIndex.ts"

interface CodeEntry {
  readonly code: AuthorizationCode
  /** Set once consumed: the entry stays as a tombstone until it expires, so replays are detected. */
  consumed: boolean
}

interface RefreshEntry {
  record: RefreshTokenRecord
  /** Set on rotation: the successor's hash and the sealed pair handed out with it. */
  successorHash?: string
  sealedSuccessor?: string
}

/**
 * The whole state of a memory `TokenStore`, for a wrapper that persists it
 * (the file backend). Bounded maps are listed least recent first, so a
 * restore rebuilds the same LRU order; the grant indexes are rebuilt from the
 * records. The encoded form is plain JSON.
 */
export const TokenStoreState = Schema.Struct({
  transactions: Schema.Array(Transaction),
  /** `[code hash, code, consumed]` */
  codes: Schema.Array(Schema.Tuple(Schema.String, AuthorizationCode, Schema.Boolean)),
  /** `[token hash, record]` */
  accessTokens: Schema.Array(Schema.Tuple(Schema.String, AccessTokenRecord)),
  refreshTokens: Schema.Array(Schema.Struct({
    hash: Schema.String,
    record: RefreshTokenRecord,
    successorHash: Schema.optional(Schema.String),
    sealedSuccessor: Schema.optional(Schema.String)
  })),
  grants: Schema.Array(Grant)
})
export type TokenStoreState = typeof TokenStoreState.Type
export type TokenStoreStateJson = typeof TokenStoreState.Encoded

/** A transaction in its encoded (JSON) form: the upstream PKCE verifier is its only non-JSON field. */
const transactionJson = ({ upstream, ...t }: Transaction): typeof Transaction.Encoded =>
  upstream === undefined ? t : { ...t, upstream: { state: upstream.state, codeVerifier: Redacted.value(upstream.codeVerifier) } }

/**
 * The memory `TokenStore`. Every read-check-write runs inside one
 * `Effect.sync`, so no other fiber runs between the check and the write: that
 * is what makes `takeTransaction`, `consumeCode` and rotation atomic here.
 * Hashing and encryption happen before entering those sections.
 */
export const makeTokenStore = (options: ResolvedTokenStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const providers = yield* ProviderTokenStore

    const transactions = new LruMap<string, Transaction>()
    const codes = new LruMap<string, CodeEntry>()
    const accessTokens = new LruMap<string, AccessTokenRecord>()
    const refreshTokens = new LruMap<string, RefreshEntry>()
    const grants = new Map<string, Grant>()
    const codesByGrant = new GrantIndex()
    const accessByGrant = new GrantIndex()
    const refreshByGrant = new GrantIndex()
    /** Grows on every change of the state (recency bumps on read excepted). */
    let changes = 0

    const dropCode = (hash: string, entry: CodeEntry) => {
      changes++
      codes.delete(hash)
      codesByGrant.remove(entry.code.grantId, hash)
    }
    const dropAccess = (hash: string, record: AccessTokenRecord) => {
      changes++
      accessTokens.delete(hash)
      accessByGrant.remove(record.grantId, hash)
    }
    const dropRefresh = (hash: string, entry: RefreshEntry) => {
      changes++
      refreshTokens.delete(hash)
      refreshByGrant.remove(entry.record.grantId, hash)
    }

    /** Insert into a bounded map, evicting its least recent entries (and their index entries). */
    const insertBounded = <V>(
      map: LruMap<string, V>,
      capacity: number,
      key: string,
      value: V,
      onEvict: (key: string, value: V) => void
    ) => {
      changes++
      map.set(key, value)
      while (map.size > capacity) {
        const evicted = map.evictOldest()
        if (evicted === undefined) break
        onEvict(evicted[0], evicted[1])
      }
    }

    const revokeInMemory = (grantId: string): boolean => {
      const existed = grants.delete(grantId)
      let removed = false
      for (const hash of codesByGrant.take(grantId)) removed = codes.delete(hash) || removed
      for (const hash of accessByGrant.take(grantId)) removed = accessTokens.delete(hash) || removed
      for (const hash of refreshByGrant.take(grantId)) removed = refreshTokens.delete(hash) || removed
      if (existed || removed) changes++
      return existed || removed
    }

    const revokeGrant = (grantId: string) =>
      Effect.sync(() => revokeInMemory(grantId)).pipe(
        Effect.zipLeft(providers.deleteAll(grantId))
      )

    const dropTransaction = (id: string) => {
      changes++
      transactions.delete(id)
    }

    /** Read a live value, dropping it if it has expired. */
    const readLive = <V>(
      map: LruMap<string, V>,
      key: string,
      expiresAt: (value: V) => number,
      now: number,
      drop: (key: string, value: V) => void
    ): V | undefined => {
      const value = map.get(key)
      if (value === undefined) return undefined
      if (now < expiresAt(value)) return value
      drop(key, value)
      return undefined
    }

    /**
     * The rotation's decision and its write, in one step (nothing yields between them): rotate to the
     * successor, answer a grace-window retry with the sealed pair, or revoke the grant on reuse.
     */
    const rotateAt = (hash: string, successorHash: string, sealedSuccessor: string, now: number): Effect.Effect<Rotation, StoreError> => {
      const entry = readLive(refreshTokens, hash, (e) => e.record.expiresAt, now, dropRefresh)
      const current = entry?.successorHash === undefined ? undefined : refreshTokens.get(entry.successorHash)
      switch (decideRotation(entry?.record, current?.record, now, options.refreshGraceWindow)) {
        case "NotFound":
          return Effect.succeed({ _tag: "NotFound" })
        case "Rotate": {
          const live = entry as RefreshEntry
          const next = successorOf(live.record, now, options.refreshTokenTtl)
          changes++
          live.record = { ...live.record, rotatedAt: now }
          live.successorHash = successorHash
          live.sealedSuccessor = sealedSuccessor
          insertBounded(refreshTokens, options.maxTokenRecords, successorHash, { record: next }, (k, e) =>
            refreshByGrant.remove(e.record.grantId, k))
          refreshByGrant.add(next.grantId, successorHash)
          return Effect.succeed({ _tag: "Rotated", previous: live.record, current: next })
        }
        case "GraceReplay":
          return Effect.map(
            open(crypto, IssuedPair, (entry as RefreshEntry).sealedSuccessor as string, Keys.refreshSuccessor(hash), "TokenStore.rotateRefreshToken"),
            (pair): Rotation => ({ _tag: "GraceReplay", current: (current as RefreshEntry).record, pair })
          )
        case "Reuse": {
          const grantId = (entry as RefreshEntry).record.grantId
          return Effect.as(revokeGrant(grantId), { _tag: "ReuseDetected", grantId })
        }
      }
    }

    const service: TokenStore.Service = {
      saveTransaction: (input) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const transaction = stamp<Transaction>(input, now, options.transactionTtl)
          insertBounded(transactions, options.maxTransactions, transaction.id, transaction, () => {})
          return transaction
        }),

      getTransaction: (id) =>
        Effect.map(Clock.currentTimeMillis, (now) =>
          Option.fromNullable(readLive(transactions, id, (t) => t.expiresAt, now, dropTransaction))
        ),

      takeTransaction: (id) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const transaction = readLive(transactions, id, (t) => t.expiresAt, now, dropTransaction)
          if (transaction !== undefined) dropTransaction(id)
          return Option.fromNullable(transaction)
        }),

      saveCode: (code, input) =>
        Effect.flatMap(crypto.hash(code), (hash) =>
          withNow((now) => {
            const record = stamp<AuthorizationCode>(input, now, options.codeTtl)
            insertBounded(codes, options.maxCodes, hash, { code: record, consumed: false }, (k, e) =>
              codesByGrant.remove(e.code.grantId, k))
            codesByGrant.add(record.grantId, hash)
            return Effect.succeed(record)
          })),

      consumeCode: (code) =>
        Effect.flatMap(crypto.hash(code), (hash) =>
          withNow((now): Effect.Effect<CodeConsumption> => {
            const entry = readLive(codes, hash, (e) => e.code.expiresAt, now, dropCode)
            if (entry === undefined) return Effect.succeed({ _tag: "NotFound" })
            if (entry.consumed) return Effect.succeed({ _tag: "Replayed", grantId: entry.code.grantId })
            changes++
            entry.consumed = true
            return Effect.succeed({ _tag: "Consumed", code: entry.code })
          })),

      saveAccessToken: (token, input) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          withNow((now) => {
            const record = stamp<AccessTokenRecord>(input, now, options.accessTokenTtl)
            insertBounded(accessTokens, options.maxTokenRecords, hash, record, (k, r) => accessByGrant.remove(r.grantId, k))
            accessByGrant.add(record.grantId, hash)
            return Effect.succeed(record)
          })),

      getAccessToken: (token) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          withNow((now) => {
            const record = readLive(accessTokens, hash, (r) => r.expiresAt, now, dropAccess)
            if (record !== undefined) accessTokens.promote(hash)
            return Effect.succeed(Option.fromNullable(record))
          })),

      revokeAccessToken: (token) =>
        Effect.map(crypto.hash(token), (hash) => {
          const record = accessTokens.get(hash)
          if (record === undefined) return false
          dropAccess(hash, record)
          return true
        }),

      saveRefreshToken: (token, input) =>
        Effect.gen(function*() {
          const hash = yield* crypto.hash(token)
          const now = yield* Clock.currentTimeMillis
          const grant = grants.get(input.grantId)
          const record = stampRefreshToken(input, now, options.refreshTokenTtl, grant?.expiresAt)
          insertBounded(refreshTokens, options.maxTokenRecords, hash, { record }, (k, e) =>
            refreshByGrant.remove(e.record.grantId, k))
          refreshByGrant.add(record.grantId, hash)
          return record
        }),

      getRefreshToken: (token) =>
        Effect.flatMap(crypto.hash(token), (hash) =>
          withNow((now) => Effect.succeed(Option.fromNullable(readLive(refreshTokens, hash, (e) => e.record.expiresAt, now, dropRefresh)?.record)))),

      // Chained steps, not a generator: every refresh rotates. The hashes and the seal come first; from the
      // clock read on, nothing yields before the decision is written: the check and the write are one step.
      rotateRefreshToken: (presented, successor) =>
        Effect.flatMap(crypto.hash(presented), (hash) =>
          Effect.flatMap(crypto.hash(Redacted.value(successor.refreshToken)), (successorHash) =>
            Effect.flatMap(
              sealIssuedPair(crypto, successor, Keys.refreshSuccessor(hash), "TokenStore.rotateRefreshToken"),
              (sealedSuccessor) => withNow((now) => rotateAt(hash, successorHash, sealedSuccessor, now))
            ))),

      saveGrant: (input) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const grant = stamp<Grant>(input, now, options.grantTtl)
          changes++
          grants.set(grant.id, grant)
          return grant
        }),

      getGrant: (id) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const grant = grants.get(id)
          if (grant === undefined) return Option.none()
          if (isLive(grant, now)) return Option.some(grant)
          changes++
          grants.delete(id)
          return Option.none()
        }),

      revokeGrant: (id) => revokeGrant(id)
    }

    /** Remove every expired record; the number removed. */
    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      let removed = 0
      for (const [id, t] of transactions.entries()) if (!isLive(t, now)) removed += Number(transactions.delete(id))
      for (const [hash, e] of codes.entries()) if (!isLive(e.code, now)) (dropCode(hash, e), removed++)
      for (const [hash, r] of accessTokens.entries()) if (!isLive(r, now)) (dropAccess(hash, r), removed++)
      for (const [hash, e] of refreshTokens.entries()) if (!isLive(e.record, now)) (dropRefresh(hash, e), removed++)
      for (const [id, g] of grants) if (!isLive(g, now)) removed += Number(grants.delete(id))
      if (removed > 0) changes++
      return removed
    })

    /** Everything held, as storage keys and JSON values. */
    const dump = (): ReadonlyArray<string> => [
      ...[...transactions.entries()].map(([id, t]) => `${Keys.transaction(id)} ${JSON.stringify(t)}`),
      ...[...codes.entries()].map(([hash, e]) => `${Keys.code(hash)} ${JSON.stringify(e)}`),
      ...[...accessTokens.entries()].map(([hash, r]) => `${Keys.accessToken(hash)} ${JSON.stringify(r)}`),
      ...[...refreshTokens.entries()].map(([hash, e]) => `${Keys.refreshToken(hash)} ${JSON.stringify(e)}`),
      ...[...grants.entries()].map(([id, g]) => `${Keys.grant(id)} ${JSON.stringify(g)}`)
    ]

    /**
     * The whole state in its encoded (JSON) form, least recent first in each
     * bounded map, taken in one synchronous step. Records are immutable (a
     * change replaces the object), so the snapshot can be serialized later.
     */
    const snapshot = (): TokenStoreStateJson => ({
      transactions: Array.from(transactions.values(), transactionJson),
      codes: [...codes.entries()].map(([hash, e]) => [hash, e.code, e.consumed] as const),
      accessTokens: [...accessTokens.entries()],
      refreshTokens: [...refreshTokens.entries()].map(([hash, e]) => ({
        hash,
        record: e.record,
        ...(e.successorHash === undefined ? {} : { successorHash: e.successorHash }),
        ...(e.sealedSuccessor === undefined ? {} : { sealedSuccessor: e.sealedSuccessor })
      })),
      grants: [...grants.values()]
    })

    /**
     * Replace the state with a snapshot: same records, same LRU order, indexes
     * rebuilt. Limits apply: a snapshot larger than the configured maximum
     * keeps its most recent entries. Expired records stay until read or swept,
     * each by its own expiry.
     */
    const restore = (state: TokenStoreState): void => {
      for (const [id] of [...transactions.entries()]) transactions.delete(id)
      for (const [hash, e] of [...codes.entries()]) dropCode(hash, e)
      for (const [hash, r] of [...accessTokens.entries()]) dropAccess(hash, r)
      for (const [hash, e] of [...refreshTokens.entries()]) dropRefresh(hash, e)
      grants.clear()
      for (const t of state.transactions) insertBounded(transactions, options.maxTransactions, t.id, t, () => {})
      for (const [hash, code, consumed] of state.codes) {
        insertBounded(codes, options.maxCodes, hash, { code, consumed }, (k, e) => codesByGrant.remove(e.code.grantId, k))
        codesByGrant.add(code.grantId, hash)
      }
      for (const [hash, record] of state.accessTokens) {
        insertBounded(accessTokens, options.maxTokenRecords, hash, record, (k, r) => accessByGrant.remove(r.grantId, k))
        accessByGrant.add(record.grantId, hash)
      }
      for (const { hash, record, sealedSuccessor, successorHash } of state.refreshTokens) {
        const entry: RefreshEntry = {
          record,
          ...(successorHash === undefined ? {} : { successorHash }),
          ...(sealedSuccessor === undefined ? {} : { sealedSuccessor })
        }
        insertBounded(refreshTokens, options.maxTokenRecords, hash, entry, (k, e) => refreshByGrant.remove(e.record.grantId, k))
        refreshByGrant.add(record.grantId, hash)
      }
      for (const grant of state.grants) grants.set(grant.id, grant)
      changes++
    }

    return { service, sweep, dump, snapshot, restore, changes: () => changes } as const
  })
