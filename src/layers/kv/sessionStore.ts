import { Clock, Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import type { KeyedLock } from "../../internal/keyedLock.ts"
import { LruMap } from "../../internal/lruMap.ts"
import { open } from "../../internal/sealed.ts"
import {
  isSessionLive,
  leastRecentlyAccessed,
  newSession,
  patchSession,
  sessionExpiresAt,
  touchSession
} from "../../internal/sessionRecord.ts"
import type { ResolvedSessionStoreOptions } from "../../schema/options.ts"
import { Session, type SessionEviction } from "../../schema/session.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import { isLiveMeta, type Meta } from "./namespace.ts"
import type { KvTier, Listed } from "./tier.ts"
import { traced } from "../../internal/traced.ts"

/** KV accepts at most one write per second to one key: touches are never more frequent. */
export const MIN_TOUCH_INTERVAL_MS = 1_000

/** Sessions whose last write time this instance remembers (the most recently written). */
const TRACKED_WRITES = 10_000

/** The prefix of every session key (`session:{id}`). */
const SESSIONS = Keys.session("")

const sessionMeta = (s: Session): Meta => ({
  e: sessionExpiresAt(s),
  a: s.lastAccessedAt,
  c: s.createdAt,
  k: s.apiKeyHash
})

/**
 * The KV `SessionStore`: one sealed session per `session:{id}` (its expiry,
 * last access, creation and API-key hash in the metadata), and seed 000's
 * API-key index as one key per session, `apikey:{hash}:{id}`, listed by
 * prefix (a shared list value would lose ids to concurrent creates and hit
 * KV's one-write-per-second limit).
 *
 * - Per key, at most `maxPerKey` sessions (seed 000: 5): a create evicts the
 *   key's least recently accessed.
 * - In all, at most `maxSessions` (10,000): a create lists `session:` keys
 *   (their metadata carries last access), one `list` call per 1,000
 *   sessions; `maxSessions: Infinity` skips it.
 * - A read writes the last access at most once per touch interval, which is
 *   never under 1 s here (a smaller setting is raised to 1 s), and never
 *   twice within it from this instance, so one key is written at most once a
 *   second (KV's limit).
 *
 * The limits are read-then-write: serialized per API key within this
 * instance, not across instances.
 */
export const makeSessionStore = (
  tier: KvTier,
  crypto: Crypto.Service,
  lock: KeyedLock,
  configured: ResolvedSessionStoreOptions
) => {
  const options: ResolvedSessionStoreOptions = {
    ...configured,
    touchInterval: Math.max(MIN_TOUCH_INTERVAL_MS, configured.touchInterval)
  }
  /** When this instance last wrote each session: the touch throttle does not trust a possibly stale read. */
  const lastWrites = new LruMap<string, number>()

  const noteWrite = (id: string, now: number) => {
    lastWrites.set(id, now)
    while (lastWrites.size > TRACKED_WRITES) lastWrites.evictOldest()
  }

  const writeSession = (method: string, session: Session) =>
    tier.write(method, Session, Keys.session(session.id), session, sessionMeta(session))

  const readSession = (method: string, id: string) =>
    Effect.gen(function*() {
      const session = yield* tier.read(method, Session, Keys.session(id))
      const now = yield* Clock.currentTimeMillis
      return Option.filter(session, (s) => isSessionLive(s, now))
    })

  const removeSession = (method: string, session: Session) =>
    Effect.gen(function*() {
      lastWrites.delete(session.id)
      // The session before its index key: if the first fails, the index still leads to it.
      yield* tier.delete(method, Keys.session(session.id))
      yield* tier.delete(method, Keys.sessionOfKey(session.apiKeyHash, session.id))
    })

  /** The key's live sessions, and the index keys whose session is gone. */
  const sessionsOfKey = (method: string, apiKeyHash: string) =>
    Effect.gen(function*() {
      const prefix = Keys.sessionsOfKey(apiKeyHash)
      const ids = (yield* tier.list(method, prefix)).map((m) => m.key.slice(prefix.length))
      const entries = yield* tier.getMany(method, ids.map(Keys.session))
      const now = yield* Clock.currentTimeMillis
      const live: Array<Session> = []
      const orphans: Array<string> = []
      for (const id of ids) {
        const entry = entries.get(Keys.session(id))
        const session = entry === undefined ? undefined : yield* open(crypto, Session, entry.value, Keys.session(id), method)
        if (session !== undefined && isSessionLive(session, now)) live.push(session)
        else orphans.push(Keys.sessionOfKey(apiKeyHash, id))
      }
      return { live, orphans }
    })

  /**
   * Evict the least recently accessed sessions anywhere (from a listing of
   * every session key) until a new one fits under `maxSessions`.
   */
  const evictGlobally = (method: string, listed: ReadonlyArray<Listed>, already: ReadonlySet<string>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const candidates = listed
        .filter((l) => isLiveMeta(l.meta, now) && !already.has(l.key.slice(SESSIONS.length)))
        .sort((x, y) => (x.meta.a ?? 0) - (y.meta.a ?? 0) || (x.meta.c ?? 0) - (y.meta.c ?? 0))
      const evicted: Array<SessionEviction> = []
      let count = candidates.length
      for (const candidate of candidates) {
        if (count < options.maxSessions) break
        count--
        const victim = yield* readSession(method, candidate.key.slice(SESSIONS.length))
        if (Option.isNone(victim)) continue
        yield* removeSession(method, victim.value)
        evicted.push({ session: victim.value, reason: "GlobalLimit" })
      }
      return evicted
    })

  const service: SessionStore.Service = {
    create: (input) =>
      Effect.gen(function*() {
        const method = "SessionStore.create"
        const apiKeyHash = yield* crypto.hash(input.apiKey)
        const id = yield* crypto.randomToken()
        return yield* lock.withLock(Keys.sessionsByKey(apiKeyHash))(Effect.gen(function*() {
          const global = Number.isFinite(options.maxSessions)
          const [{ live, orphans }, everySession] = yield* Effect.all([
            sessionsOfKey(method, apiKeyHash),
            global ? tier.list(method, SESSIONS) : Effect.succeed([])
          ], { concurrency: 2 })
          yield* Effect.forEach(orphans, (key) => tier.delete(method, key), { concurrency: 8, discard: true })
          const evicted: Array<SessionEviction> = []
          let ofKey = live
          while (ofKey.length >= options.maxPerKey) {
            const victim = leastRecentlyAccessed(ofKey) as Session
            yield* removeSession(method, victim)
            evicted.push({ session: victim, reason: "PerKeyLimit" })
            ofKey = ofKey.filter((s) => s !== victim)
          }
          if (global) {
            evicted.push(...(yield* evictGlobally(method, everySession, new Set(evicted.map((e) => e.session.id)))))
          }
          const now = yield* Clock.currentTimeMillis
          const session = newSession(input, id, apiKeyHash, now, options)
          noteWrite(id, now)
          yield* writeSession(method, session)
          yield* tier.put(method, Keys.sessionOfKey(apiKeyHash, id), "", { e: session.absoluteExpiresAt })
          return { session, evicted }
        }))
      }).pipe(traced("SessionStore.create")),

    get: (id) =>
      Effect.gen(function*() {
        const method = "SessionStore.get"
        const session = yield* readSession(method, id)
        if (Option.isNone(session)) return session
        const now = yield* Clock.currentTimeMillis
        const due = (s: Session) => touchSession({ ...s, lastAccessedAt: Math.max(s.lastAccessedAt, lastWrites.get(id) ?? 0) }, now, options)
        if (due(session.value) === undefined) return session
        // A touch rewrites the session: under its lock, from a fresh read, so a concurrent update is not lost.
        return yield* lock.withLock(Keys.session(id))(Effect.gen(function*() {
          const fresh = yield* readSession(method, id)
          const touched = Option.isNone(fresh) ? undefined : due(fresh.value)
          if (touched === undefined) return fresh
          noteWrite(id, now)
          yield* writeSession(method, touched)
          return Option.some(touched)
        }))
      }).pipe(traced("SessionStore.get")),

    update: (id, patch) =>
      lock.withLock(Keys.session(id))(Effect.gen(function*() {
        const method = "SessionStore.update"
        const session = yield* readSession(method, id)
        if (Option.isNone(session)) return session
        const patched = patchSession(session.value, patch)
        noteWrite(id, yield* Clock.currentTimeMillis)
        yield* writeSession(method, patched)
        return Option.some(patched)
      })),

    delete: (id) =>
      Effect.gen(function*() {
        const method = "SessionStore.delete"
        const entry = yield* tier.get(method, Keys.session(id))
        if (Option.isNone(entry)) return false
        lastWrites.delete(id)
        yield* tier.delete(method, Keys.session(id))
        const apiKeyHash = entry.value.meta.k
        if (apiKeyHash !== undefined) yield* tier.delete(method, Keys.sessionOfKey(apiKeyHash, id))
        return true
      }),

    listByApiKey: (apiKey) =>
      Effect.gen(function*() {
        const { live } = yield* sessionsOfKey("SessionStore.listByApiKey", yield* crypto.hash(apiKey))
        return live.sort((a, b) => a.lastAccessedAt - b.lastAccessedAt)
      })
  }

  /** For the sweep: an expired session takes its index key with it. */
  const related = (key: string, meta: Meta): ReadonlyArray<string> =>
    key.startsWith(SESSIONS) && meta.k !== undefined ? [Keys.sessionOfKey(meta.k, key.slice(SESSIONS.length))] : []

  return { service, related, options } as const
}
