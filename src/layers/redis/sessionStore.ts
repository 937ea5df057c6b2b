import { Clock, Effect, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import { withNow } from "../../internal/now.ts"
import { isSessionLive, newSession, sessionExpiresAt, touchSession } from "../../internal/sessionRecord.ts"
import type { ResolvedSessionStoreOptions } from "../../schema/options.ts"
import type { EvictionReason, SessionEviction } from "../../schema/session.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import { type RedisClient, traced } from "./client.ts"
import { array, corrupt, int, patchFields, SESSION_FIELDS, sessionFields, sessionFromFields } from "./codec.ts"
import * as Lua from "./lua.ts"

const isReason = (value: unknown): value is EvictionReason => value === "PerKeyLimit" || value === "GlobalLimit"

/**
 * The Redis `SessionStore`: a hash per session, a sorted set of each API key's
 * sessions and one of all sessions, both scored by last access. Creation
 * (with the per-key and global limits and their LRU evictions) is one script;
 * a read is one `HMGET`, and the throttled touch a conditional script.
 */
export const makeSessionStore = (client: RedisClient, options: ResolvedSessionStoreOptions) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const P = client.prefix

    const service: SessionStore.Service = {
      create: (input) =>
        Effect.gen(function*() {
          const method = "SessionStore.create"
          const apiKeyHash = yield* crypto.hash(input.apiKey)
          const id = yield* crypto.randomToken()
          const now = yield* Clock.currentTimeMillis
          const session = newSession(input, id, apiKeyHash, now, options)
          const fields = yield* sessionFields(session, method)
          const reply = yield* array(
            yield* client.run(method, Lua.createSession, [
              id,
              now,
              options.maxPerKey,
              options.maxSessions,
              apiKeyHash,
              sessionExpiresAt(session),
              ...fields
            ]),
            method
          )
          const evicted = yield* Effect.forEach(reply, (entry) =>
            Effect.gen(function*() {
              const [reason, stored] = yield* array(entry, method)
              if (!isReason(reason)) return yield* Effect.fail(corrupt(method))
              return { session: yield* sessionFromFields(stored, method), reason } satisfies SessionEviction
            }))
          return { session, evicted }
        }).pipe(traced("SessionStore.create")),

      // The hot path: a flatMap chain rather than a generator (a few µs per call).
      get: (id) =>
        Effect.flatMap(
          client.call("SessionStore.get", (r) => r.hmget(P + Keys.session(id), ...SESSION_FIELDS)),
          (stored) =>
            stored[0] === null || stored[0] === undefined
              ? Effect.succeed(Option.none())
              : Effect.flatMap(sessionFromFields(stored, "SessionStore.get"), (session) =>
                withNow((now) => {
                  if (!isSessionLive(session, now)) return Effect.succeed(Option.none())
                  const touched = touchSession(session, now, options)
                  if (touched === undefined) return Effect.succeed(Option.some(session))
                  return Effect.as(
                    client.run("SessionStore.get", Lua.touchSession, [
                      id,
                      now,
                      touched.idleExpiresAt,
                      sessionExpiresAt(touched)
                    ]),
                    Option.some(touched)
                  )
                }))
        ).pipe(traced("SessionStore.get")),

      update: (id, patch) =>
        Effect.gen(function*() {
          const method = "SessionStore.update"
          const now = yield* Clock.currentTimeMillis
          const fields = yield* patchFields(patch, method)
          const reply = yield* client.run(method, Lua.updateSession, [id, now, ...fields])
          return reply === null ? Option.none() : Option.some(yield* sessionFromFields(reply, method))
        }),

      delete: (id) =>
        Effect.map(client.run("SessionStore.delete", Lua.deleteSession, [id]), (removed) => int(removed) > 0),

      listByApiKey: (apiKey) =>
        Effect.gen(function*() {
          const method = "SessionStore.listByApiKey"
          const apiKeyHash = yield* crypto.hash(apiKey)
          const now = yield* Clock.currentTimeMillis
          const reply = yield* array(yield* client.run(method, Lua.listSessions, [apiKeyHash, now]), method)
          return yield* Effect.forEach(reply, (stored) => sessionFromFields(stored, method))
        })
    }

    return service
  })
