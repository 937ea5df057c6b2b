import { Clock, Duration, Effect, Option, Schema } from "effect"
import { makeKeyedLock } from "../../internal/keyedLock.ts"
import { Keys } from "../../internal/keys.ts"
import { open, seal } from "../../internal/sealed.ts"
import { isSessionLive, sessionExpiresAt } from "../../internal/sessionRecord.ts"
import { EpochMillis } from "../../schema/common.ts"
import { Session } from "../../schema/session.ts"
import type { CacheAdapter } from "../../services/CacheAdapter.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { traced } from "../../internal/traced.ts"

/** What the cache holds per session (sealed): the session as the durable store last returned it, and when. */
const CachedSession = Schema.Struct({ session: Session, cachedAt: EpochMillis })

/** How long a cached session is served before the durable store is read again. */
export interface TieredOptions {
  /**
   * How long a cached copy is served before the next read goes to the
   * durable store again (default 10 s, the default touch interval). That
   * durable read slides the idle TTL (the durable store's throttled touch)
   * and re-checks that the session still exists, so it is also the longest
   * an instance can serve a session that was deleted or evicted through
   * another instance with a cache of its own. Keep it at or under the
   * durable store's touch interval. Zero sends every read to the durable
   * store.
   */
  readonly revalidateAfter?: Duration.DurationInput
}

const tolerate = (what: string) => <A>(effect: Effect.Effect<A, StoreError>, fallback: A): Effect.Effect<A> =>
  Effect.catchAll(effect, (error) =>
    Effect.as(
      Effect.logWarning(`${what}; continuing without the cache`).pipe(
        Effect.annotateLogs({ module: "TieredSessionStore", method: error.method, reason: error.reason })
      ),
      fallback
    ))

/**
 * Seed 001's tiered session store: a cache in front of a durable
 * `SessionStore` (SQLite, Redis, ...).
 *
 * - `get` reads the cache first; a miss, an expired session, or a copy older
 *   than `revalidateAfter` goes to the durable store, and a hit there is
 *   cached again for the session's remaining lifetime.
 * - `delete`, the evictions `create` reports, and an `update` that finds
 *   nothing remove the cache entry (this is how a session is revoked).
 *   `create` and `update` cache what they wrote.
 * - Within one instance a read that fills the cache and a write that empties
 *   it never interleave for one session (a per-session lock), so a deleted
 *   session is never cached again by a read that raced with the delete.
 * - Across instances: with a shared cache (KV, Redis) a deletion is seen by
 *   every instance at once; with per-instance caches (memory), another
 *   instance may serve its cached copy for at most `revalidateAfter`.
 *
 * Cached values are sealed with the one record codec (they hold only the API
 * key's hash, but no second format is kept). A failing cache read or write is
 * logged and the durable store answers; a failing invalidation on `delete` is
 * an error (the caller must know the session may still be served).
 */
export const makeTieredSessionStore = (
  durable: SessionStore.Service,
  cache: CacheAdapter.Service,
  crypto: Crypto.Service,
  options: TieredOptions = {}
): SessionStore.Service => {
  const revalidateAfter = Duration.toMillis(Duration.decode(options.revalidateAfter ?? "10 seconds"))
  const lock = makeKeyedLock()
  const readFailed = tolerate("session cache read failed")
  const writeFailed = tolerate("session cache write failed")

  const remember = (session: Session) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const ttlSeconds = Math.ceil((sessionExpiresAt(session) - now) / 1000)
      if (ttlSeconds <= 0) return
      const key = Keys.session(session.id)
      const sealed = yield* seal(crypto, CachedSession, { session, cachedAt: now }, key, "SessionStore.get")
      yield* cache.set(key, sealed, ttlSeconds)
    }).pipe((effect) => writeFailed(effect, undefined))

  const forget = (id: string) => cache.delete(Keys.session(id))

  /** The cached session when it is live and fresh enough; whether the cache held anything for it. */
  const fromCache = (id: string) =>
    Effect.gen(function*() {
      const key = Keys.session(id)
      const stored = yield* readFailed(cache.get(key), Option.none())
      if (Option.isNone(stored)) return { hit: Option.none<Session>(), present: false }
      const cached = yield* Effect.option(open(crypto, CachedSession, stored.value, key, "SessionStore.get"))
      const now = yield* Clock.currentTimeMillis
      const hit = Option.filter(cached, (c) => isSessionLive(c.session, now) && now - c.cachedAt < revalidateAfter)
      return { hit: Option.map(hit, (c) => c.session), present: true }
    })

  return {
    create: (input) =>
      Effect.gen(function*() {
        const created = yield* durable.create(input)
        yield* Effect.forEach(
          created.evicted,
          (eviction) => lock.withLock(eviction.session.id)(writeFailed(forget(eviction.session.id), undefined)),
          { discard: true }
        )
        yield* lock.withLock(created.session.id)(remember(created.session))
        return created
      }).pipe(traced("TieredSessionStore.create")),

    get: (id) =>
      Effect.gen(function*() {
        const cached = yield* fromCache(id)
        if (Option.isSome(cached.hit)) return cached.hit
        return yield* lock.withLock(id)(Effect.gen(function*() {
          const found = yield* durable.get(id)
          if (Option.isSome(found)) yield* remember(found.value)
          else if (cached.present) yield* writeFailed(forget(id), undefined)
          return found
        }))
      }).pipe(traced("TieredSessionStore.get")),

    update: (id, patch) =>
      lock.withLock(id)(Effect.gen(function*() {
        const updated = yield* durable.update(id, patch)
        if (Option.isSome(updated)) yield* remember(updated.value)
        else yield* forget(id)
        return updated
      })),

    delete: (id) =>
      lock.withLock(id)(Effect.gen(function*() {
        const existed = yield* durable.delete(id)
        yield* forget(id)
        return existed
      })),

    listByApiKey: (apiKey) => durable.listByApiKey(apiKey)
  }
}
