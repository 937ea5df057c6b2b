import { Clock, Effect, Option, Schema } from "effect"
import { Keys } from "../../internal/keys.ts"
import { LruMap } from "../../internal/lruMap.ts"
import { withNow } from "../../internal/now.ts"
import {
  isSessionLive,
  leastRecentlyAccessed,
  newSession,
  patchSession,
  touchSession
} from "../../internal/sessionRecord.ts"
import type { ResolvedSessionStoreOptions } from "../../schema/options.ts"
import { Session, type SessionEviction } from "../../schema/session.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import { KeyIndex } from "./keyIndex.ts"

const noSession = Effect.succeed(Option.none<Session>())

/**
 * The whole state of a memory `SessionStore`: its sessions, least recently
 * accessed first (the API-key index is rebuilt from them).
 */
export const SessionStoreState = Schema.Array(Session)
export type SessionStoreState = typeof SessionStoreState.Type
export type SessionStoreStateJson = typeof SessionStoreState.Encoded

/**
 * The memory `SessionStore`. Sessions sit in an `LruMap` in last-access order
 * (a touch moves a session to the back), so the global limit evicts the front
 * in O(1); the per-key limit looks at the key's few sessions (at most
 * `maxPerKey`).
 */
export const makeSessionStore = (options: ResolvedSessionStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const sessions = new LruMap<string, Session>()
    const byKey = new KeyIndex()
    /** Grows on every change of the state, touches included. */
    let changes = 0

    const remove = (session: Session) => {
      changes++
      sessions.delete(session.id)
      byKey.remove(session.apiKeyHash, session.id)
    }

    const readLive = (id: string, now: number): Session | undefined => {
      const session = sessions.get(id)
      if (session === undefined) return undefined
      if (isSessionLive(session, now)) return session
      remove(session)
      return undefined
    }

    /** The key's live sessions, dropping expired ones on the way. */
    const liveOfKey = (apiKeyHash: string, now: number): Array<Session> => {
      const live: Array<Session> = []
      for (const id of byKey.of(apiKeyHash)) {
        const session = readLive(id, now)
        if (session !== undefined) live.push(session)
      }
      return live
    }

    const service: SessionStore.Service = {
      create: (input) =>
        Effect.flatMap(crypto.hash(input.apiKey), (apiKeyHash) =>
          Effect.flatMap(crypto.randomToken(), (id) =>
            withNow((now) => {
              const evicted: Array<SessionEviction> = []
              let ofKey = liveOfKey(apiKeyHash, now)
              while (ofKey.length >= options.maxPerKey) {
                const victim = leastRecentlyAccessed(ofKey) as Session
                remove(victim)
                evicted.push({ session: victim, reason: "PerKeyLimit" })
                ofKey = ofKey.filter((s) => s !== victim)
              }
              while (sessions.size >= options.maxSessions) {
                const oldest = sessions.evictOldest()
                if (oldest === undefined) break
                remove(oldest[1])
                if (isSessionLive(oldest[1], now)) evicted.push({ session: oldest[1], reason: "GlobalLimit" })
              }
              const session = newSession(input, id, apiKeyHash, now, options)
              changes++
              sessions.set(id, session)
              byKey.add(apiKeyHash, id)
              return Effect.succeed({ session, evicted })
            }))),

      // The hot path: the clock read and the lookup in one step.
      get: (id) =>
        withNow((now) => {
          const session = readLive(id, now)
          if (session === undefined) return noSession
          const touched = touchSession(session, now, options)
          if (touched === undefined) return Effect.succeed(Option.some(session))
          changes++
          sessions.set(id, touched)
          return Effect.succeed(Option.some(touched))
        }),

      update: (id, patch) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const session = readLive(id, now)
          if (session === undefined) return Option.none()
          const patched = patchSession(session, patch)
          changes++
          sessions.replace(id, patched)
          return Option.some(patched)
        }),

      delete: (id) =>
        Effect.sync(() => {
          const session = sessions.get(id)
          if (session === undefined) return false
          remove(session)
          return true
        }),

      listByApiKey: (apiKey) =>
        Effect.gen(function*() {
          const apiKeyHash = yield* crypto.hash(apiKey)
          const now = yield* Clock.currentTimeMillis
          return liveOfKey(apiKeyHash, now).sort((a, b) => a.lastAccessedAt - b.lastAccessedAt)
        })
    }

    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      let removed = 0
      for (const session of sessions.values()) if (!isSessionLive(session, now)) (remove(session), removed++)
      return removed
    })

    const dump = (): ReadonlyArray<string> => [
      ...[...sessions.entries()].map(([id, s]) => `${Keys.session(id)} ${JSON.stringify(s)}`),
      ...Array.from(byKey.entries(), ([hash, ids]) => `${Keys.sessionsByKey(hash)} ${JSON.stringify(ids)}`)
    ]

    /** Every session, least recently accessed first, in its encoded (JSON) form. */
    const snapshot = (): SessionStoreStateJson => [...sessions.values()]

    /** Replace the state with a snapshot, in its order; past `maxSessions`, the most recent are kept. */
    const restore = (state: SessionStoreState): void => {
      for (const session of [...sessions.values()]) remove(session)
      for (const session of state) {
        sessions.set(session.id, session)
        byKey.add(session.apiKeyHash, session.id)
      }
      while (sessions.size > options.maxSessions) {
        const oldest = sessions.evictOldest()
        if (oldest === undefined) break
        remove(oldest[1])
      }
      changes++
    }

    return { service, sweep, dump, snapshot, restore, changes: () => changes } as const
  })
