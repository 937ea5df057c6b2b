/**
 * `StoreMaintenance` for Redis: records listed by `SCAN` over the prefix
 * (never `KEYS`), a page of keys read back in one pipeline; a re-seal batch
 * is one script comparing each envelope before replacing it; an import
 * writes each record with the scripts the stores use (so the grant, expiry
 * and session indexes are kept), sessions with a script of their own that
 * skips the limits (the records are already as stored).
 */
import { Chunk, Clock, Effect, Either, Option, Stream } from "effect"
import type { Redis } from "ioredis"
import { Keys } from "../../internal/keys.ts"
import { emptyCounts, isStoredLive } from "../../internal/storedRecords.ts"
import { sessionExpiresAt } from "../../internal/sessionRecord.ts"
import { RegisteredClient } from "../../schema/client.ts"
import { AuthorizationCode } from "../../schema/code.ts"
import type { RecordKind, Reseal, SealedRef, StoredRecord } from "../../schema/storedRecord.ts"
import { AccessTokenRecord, Grant } from "../../schema/token.ts"
import type { StoreMaintenance } from "../../services/StoreMaintenance.ts"
import { StoreError } from "../../services/StoreError.ts"
import { type RedisClient, traced } from "./client.ts"
import { array, corrupt, int, jsonCodec, refreshFields, refreshRecord, SESSION_FIELDS, sessionFields, sessionFromFields, string } from "./codec.ts"
import * as Lua from "./lua.ts"
import { prefixPattern } from "./rawStorage.ts"

const codes = jsonCodec(AuthorizationCode)
const accessTokens = jsonCodec(AccessTokenRecord)
const grants = jsonCodec(Grant)
const clients = jsonCodec(RegisteredClient)

const lit = (s: string): string => JSON.stringify(s)

/**
 * ARGV: P, then (key, field, expected, next) per item; `field` empty for a
 * string key. Each value is replaced only while it still holds `expected`
 * (a string keeps its TTL); 1 or 0 per item.
 */
const resealBatch = Lua.script("resealBatch", [], `
local out = {}
for i = 2, #ARGV, 4 do
  local key, field, expected = P .. ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current
  if field == '' then current = redis.call('GET', key) else current = redis.call('HGET', key, field) end
  if current == expected then
    if field == '' then redis.call('SET', key, ARGV[i + 3], 'KEEPTTL') else redis.call('HSET', key, field, ARGV[i + 3]) end
    table.insert(out, 1)
  else
    table.insert(out, 0)
  end
end
return out
`)

/**
 * ARGV: P, id, now, apiKeyHash, expiry, last access, then the session's
 * field/value pairs. Writes a session as stored, with its indexes (per key,
 * global LRU, expiry), without the creation limits.
 */
const importSession = Lua.script("importSession", [], `
local id, now, k, x, la = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]
local key = P .. ${lit(Keys.session(""))} .. id
local old = redis.call('HGET', key, 'k')
if old and old ~= k then redis.call('ZREM', P .. ${lit(Keys.sessionsByKey(""))} .. old, id) end
redis.call('DEL', key)
redis.call('HSET', key, unpack(ARGV, 7))
redis.call('PEXPIRE', key, ttl(x, now))
redis.call('ZADD', P .. ${lit(Keys.sessionsByAccess)}, la, id)
local ak = P .. ${lit(Keys.sessionsByKey(""))} .. k
redis.call('ZADD', ak, la, id)
extend(ak, x, now)
redis.call('ZADD', P .. ${lit(Keys.expiries)}, int(x), ${lit(Keys.session(""))} .. id)
return 1
`)

/** The maintenance scripts, defined when the layer connects like the stores' own. */
export const maintenanceScripts: ReadonlyArray<Lua.Script> = [resealBatch, importSession]

/** The record namespaces, as they start a key after the prefix. */
const NS = {
  transaction: Keys.transaction(""),
  code: Keys.code(""),
  access: Keys.accessToken(""),
  refresh: Keys.refreshToken(""),
  grant: Keys.grant(""),
  provider: Keys.providerTokensOf("").slice(0, -1),
  session: Keys.session(""),
  client: Keys.client("")
} as const

/** Which record kind a key (without the prefix) holds; `undefined` for indexes and leases. */
const kindOf = (m: string): RecordKind | undefined => {
  if (m === Keys.signingKeys) return "SigningKeys"
  if (m.startsWith(NS.transaction)) return "Transaction"
  if (m.startsWith(NS.code)) return "Code"
  if (m.startsWith(NS.access)) return "AccessToken"
  if (m.startsWith(NS.refresh)) return "RefreshToken"
  if (m.startsWith(NS.grant)) return "Grant"
  if (m.startsWith(NS.provider)) return "ProviderTokens"
  if (m.startsWith(NS.session)) return "Session"
  if (m.startsWith(NS.client)) return "Client"
  return undefined
}

/** The provider id as the indexes hold it (`Keys.providerTokens` minus the authorization's fragment). */
const encodedProvider = (authorizationId: string, providerId: string): string =>
  Keys.providerTokens(authorizationId, providerId).slice(Keys.providerTokensOf(authorizationId).length)

const LIST = "StoreMaintenance.records"
const DEFAULT_PAGE = 500

type Reply = ReadonlyArray<unknown>

/** What to read for one key of a page, and how its reply becomes a record. */
const readCommand = (pipeline: ReturnType<Redis["pipeline"]>, prefix: string, m: string, kind: RecordKind): void => {
  const key = prefix + m
  switch (kind) {
    case "Transaction":
      pipeline.get(key)
      pipeline.zscore(prefix + Keys.expiries, m)
      pipeline.pttl(key)
      return
    case "Code":
      pipeline.hmget(key, "r", "u")
      return
    case "AccessToken":
      pipeline.hmget(key, "r")
      return
    case "RefreshToken":
      pipeline.hmget(key, "b", "n", "c", "x", "rot", "s", "p")
      return
    case "Grant":
    case "Client":
      pipeline.get(key)
      return
    case "ProviderTokens":
      pipeline.hmget(key, "e", "x", "a", "p")
      return
    case "Session":
      pipeline.hmget(key, ...SESSION_FIELDS)
      return
    case "SigningKeys":
      pipeline.hmget(key, "v", "e")
      return
  }
}

/** How many replies `readCommand` queues for a kind. */
const repliesOf = (kind: RecordKind): number => kind === "Transaction" ? 3 : 1

const present = (value: unknown): boolean => value !== null && value !== undefined

/** A record from its replies; `undefined` when the key vanished between the scan and the read. */
const decodeRecord = (
  m: string,
  kind: RecordKind,
  replies: Reply,
  now: number
): Either.Either<StoredRecord | undefined, StoreError> => {
  const [first] = replies
  switch (kind) {
    case "Transaction": {
      if (!present(first)) return Either.right(undefined)
      const [, score, pttl] = replies
      const expiresAt = present(score) ? int(score) : now + Math.max(0, int(pttl))
      return Either.map(string(first, LIST), (envelope) => ({
        _tag: "Transaction",
        id: m.slice(NS.transaction.length),
        envelope,
        expiresAt
      }))
    }
    case "Code": {
      const [r, u] = first as Reply
      if (!present(r)) return Either.right(undefined)
      return Either.map(codes.decode(r, LIST), (record) => ({ _tag: "Code", hash: m.slice(NS.code.length), record, consumed: present(u) }))
    }
    case "AccessToken": {
      const [r] = first as Reply
      if (!present(r)) return Either.right(undefined)
      return Either.map(accessTokens.decode(r, LIST), (record) => ({ _tag: "AccessToken", hash: m.slice(NS.access.length), record }))
    }
    case "RefreshToken": {
      const [b, n, c, x, rot, s, p] = first as Reply
      if (!present(b)) return Either.right(undefined)
      return Either.map(refreshRecord(b, n, c, x, rot, LIST), (record): StoredRecord => ({
        _tag: "RefreshToken",
        hash: m.slice(NS.refresh.length),
        record,
        ...(typeof s === "string" ? { successorHash: s.slice(NS.refresh.length) } : {}),
        ...(typeof p === "string" ? { sealedSuccessor: p } : {})
      }))
    }
    case "Grant":
      return present(first) ? Either.map(grants.decode(first, LIST), (record) => ({ _tag: "Grant", record })) : Either.right(undefined)
    case "Client":
      return present(first) ? Either.map(clients.decode(first, LIST), (client) => ({ _tag: "Client", client })) : Either.right(undefined)
    case "ProviderTokens": {
      const [e, x, a, p] = first as Reply
      if (!present(e)) return Either.right(undefined)
      return Either.gen(function*() {
        const envelope = yield* string(e, LIST)
        const authorizationId = yield* string(a, LIST)
        const encoded = yield* string(p, LIST)
        const providerId = yield* Either.try({ try: () => decodeURIComponent(encoded), catch: (cause) => corrupt(LIST, cause) })
        return { _tag: "ProviderTokens", authorizationId, providerId, envelope, expiresAt: int(x) } satisfies StoredRecord
      })
    }
    case "Session":
      return present((first as Reply)[0])
        ? Either.map(sessionFromFields(first, LIST), (session) => ({ _tag: "Session", session }))
        : Either.right(undefined)
    case "SigningKeys": {
      const [v, e] = first as Reply
      if (!present(e)) return Either.right(undefined)
      return Either.map(string(e, LIST), (envelope) => ({ _tag: "SigningKeys", version: int(v), envelope }))
    }
  }
}

/** Where a sealed value lives: its key (without the prefix) and hash field (`""` for a string key). */
const location = (ref: SealedRef): readonly [string, string] => {
  switch (ref._tag) {
    case "Transaction":
      return [Keys.transaction(ref.id), ""]
    case "RefreshSuccessor":
      return [Keys.refreshToken(ref.hash), "p"]
    case "ProviderTokens":
      return [Keys.providerTokens(ref.authorizationId, ref.providerId), "e"]
    case "SigningKeys":
      return [Keys.signingKeys, "e"]
  }
}

/** `StoreMaintenance` over one Redis connection and prefix. */
export const makeMaintenance = (client: RedisClient): StoreMaintenance.Service => {
  const P = client.prefix
  const { db, host, port } = client.redis.options
  const description = `redis ${host ?? "127.0.0.1"}:${port ?? 6379}/${db ?? 0} (prefix ${P})`

  /** One `SCAN` step: the next cursor and the keys (without the prefix) of this page. */
  const scan = (method: string, cursor: string, count: number) =>
    client.call(method, (r) => r.scan(cursor, "MATCH", prefixPattern(P), "COUNT", count)).pipe(
      Effect.map(([next, keys]) => [next, keys.map((key) => key.slice(P.length))] as const)
    )

  const readPage = (keys: ReadonlyArray<string>, now: number) =>
    Effect.gen(function*() {
      const wanted = keys.flatMap((m) => {
        const kind = kindOf(m)
        return kind === undefined ? [] : [[m, kind] as const]
      })
      if (wanted.length === 0) return []
      const replies = yield* client.call(LIST, async (redis) => {
        const pipeline = redis.pipeline()
        for (const [m, kind] of wanted) readCommand(pipeline, P, m, kind)
        const results = (await pipeline.exec()) ?? []
        return results.map(([error, value]) => {
          if (error !== null) throw error
          return value
        })
      })
      const records: Array<StoredRecord> = []
      let at = 0
      for (const [m, kind] of wanted) {
        const count = repliesOf(kind)
        const own = replies.slice(at, at + count)
        at += count
        // Transactions are replied to flat (three commands); the others as one array.
        const decoded = yield* decodeRecord(m, kind, kind === "Transaction" ? own : [own[0]], now)
        if (decoded !== undefined && isStoredLive(decoded, now)) records.push(decoded)
      }
      return records
    })

  const records = (options?: { readonly pageSize?: number }) =>
    Stream.unwrap(Effect.map(Clock.currentTimeMillis, (now) => {
      const count = Math.max(1, options?.pageSize ?? DEFAULT_PAGE)
      // SCAN may return a key twice: each is listed once.
      const seen = new Set<string>()
      return Stream.paginateChunkEffect("0", (cursor: string) =>
        Effect.flatMap(scan(LIST, cursor, count), ([next, keys]) =>
          Effect.map(readPage(keys.filter((m) => !seen.has(m) && seen.add(m) !== undefined), now), (page) =>
            [Chunk.unsafeFromArray(page), next === "0" ? Option.none() : Option.some(next)] as const)))
    }))

  /**
   * Keys present, less those whose expiry (by `Clock`, in the `expiry`
   * index) has passed but which Redis has not dropped yet (`PX` runs on real
   * time): normally none, as the sweep clears them every minute.
   */
  const counts = Effect.gen(function*() {
    const method = "StoreMaintenance.counts"
    const now = yield* Clock.currentTimeMillis
    const seen = new Set<string>()
    let cursor = "0"
    do {
      const [next, keys] = yield* scan(method, cursor, 1_000)
      for (const m of keys) if (kindOf(m) !== undefined) seen.add(m)
      cursor = next
    } while (cursor !== "0")
    const expired = yield* client.call(method, (r) => r.zrangebyscore(P + Keys.expiries, "-inf", now))
    for (const m of expired) seen.delete(m)
    const result = emptyCounts()
    for (const m of seen) {
      const kind = kindOf(m)
      if (kind !== undefined) result[kind]++
    }
    return result
  })

  const reseal = (batch: ReadonlyArray<Reseal>) =>
    Effect.gen(function*() {
      const method = "StoreMaintenance.reseal"
      if (batch.length === 0) return []
      const args = batch.flatMap(({ expected, next, ref }) => [...location(ref), expected, next])
      const reply = yield* array(yield* client.run(method, resealBatch, args), method)
      if (reply.length !== batch.length) return yield* Effect.fail(corrupt(method))
      return reply.map((applied) => int(applied) === 1)
    }).pipe(traced("StoreMaintenance.reseal"))

  const importOne = (record: StoredRecord, now: number, method: string): Effect.Effect<unknown, StoreError> => {
    switch (record._tag) {
      case "Transaction":
        return client.run(method, Lua.putString, [Keys.transaction(record.id), record.envelope, now, record.expiresAt])
      case "Grant":
        return Effect.flatMap(
          grants.encode(record.record, method),
          (json) => client.run(method, Lua.putString, [Keys.grant(record.record.id), json, now, record.record.expiresAt])
        )
      case "Code":
        return Effect.flatMap(codes.encode(record.record, method), (json) =>
          client.run(method, Lua.putMember, [
            Keys.code(record.hash),
            now,
            record.record.expiresAt,
            record.record.grantId,
            "r",
            json,
            ...(record.consumed ? ["u", now] : [])
          ]))
      case "AccessToken":
        return Effect.flatMap(accessTokens.encode(record.record, method), (json) =>
          client.run(method, Lua.putMember, [
            Keys.accessToken(record.hash),
            now,
            record.record.expiresAt,
            record.record.grantId,
            "r",
            json
          ]))
      case "RefreshToken":
        return Effect.flatMap(refreshFields(record.record, method), (fields) =>
          client.run(method, Lua.putMember, [
            Keys.refreshToken(record.hash),
            now,
            record.record.expiresAt,
            record.record.grantId,
            ...fields,
            ...(record.record.rotatedAt === undefined ? [] : ["rot", record.record.rotatedAt]),
            ...(record.successorHash === undefined ? [] : ["s", Keys.refreshToken(record.successorHash)]),
            ...(record.sealedSuccessor === undefined ? [] : ["p", record.sealedSuccessor])
          ]))
      case "ProviderTokens":
        return client.run(method, Lua.putProvider, [
          Keys.providerTokens(record.authorizationId, record.providerId),
          now,
          record.expiresAt,
          record.authorizationId,
          encodedProvider(record.authorizationId, record.providerId),
          record.envelope
        ])
      case "Session": {
        const s = record.session
        return Effect.flatMap(sessionFields(s, method), (fields) =>
          client.run(method, importSession, [s.id, now, s.apiKeyHash, sessionExpiresAt(s), s.lastAccessedAt, ...fields]))
      }
      case "Client":
        return Effect.flatMap(
          clients.encode(record.client, method),
          (json) => client.call(method, (r) => r.set(P + Keys.client(record.client.clientId), json))
        )
      case "SigningKeys":
        return client.call(method, (r) => r.hset(P + Keys.signingKeys, "v", String(record.version), "e", record.envelope))
    }
  }

  const importRecords = (batch: ReadonlyArray<StoredRecord>) =>
    Effect.gen(function*() {
      const method = "StoreMaintenance.importRecords"
      const now = yield* Clock.currentTimeMillis
      const live = batch.filter((record) => isStoredLive(record, now))
      // Issued together: the connection pipelines them (auto-pipelining), each one atomic on its own.
      yield* Effect.forEach(live, (record) => importOne(record, now, method), { concurrency: "unbounded", discard: true })
    }).pipe(traced("StoreMaintenance.importRecords"))

  const size = Effect.gen(function*() {
    const method = "StoreMaintenance.size"
    let total = 0
    let cursor = "0"
    do {
      const [next, keys] = yield* scan(method, cursor, 1_000)
      if (keys.length > 0) {
        const usages = yield* client.call(method, async (redis) => {
          const pipeline = redis.pipeline()
          for (const m of keys) pipeline.memory("USAGE", P + m)
          return ((await pipeline.exec()) ?? []).map(([, value]) => int(value))
        })
        for (const usage of usages) if (Number.isFinite(usage)) total += usage
      }
      cursor = next
    } while (cursor !== "0")
    return Option.some(total)
  })

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
