import { Clock, Effect, Either, Option } from "effect"
import { Keys } from "../../internal/keys.ts"
import { isSessionLive, newSession, sessionExpiresAt, touchSession } from "../../internal/sessionRecord.ts"
import type { ResolvedSessionStoreOptions } from "../../schema/options.ts"
import type { EvictionReason, Session, SessionEviction } from "../../schema/session.ts"
import type { StoreError } from "../../services/StoreError.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import { type RedisClient, tracedWithNow } from "./client.ts"
import { array, corrupt, int, patchFields, SESSION_FIELDS, sessionFields, sessionFromFields } from "./codec.ts"
import * as Lua from "./lua.ts"

const isReason = (value: unknown): value is EvictionReason => value === "PerKeyLimit" || value === "GlobalLimit"

const none = Either.right(Option.none<Session>())

/** The sessions a create evicted: `[reason, fields]` per session, read from the script's reply. */
const evictions = (reply: unknown, method: string): Either.Either<Array<SessionEviction>, StoreError> => {
  if (!Array.isArray(reply)) return Either.left(corrupt(method))
  const evicted: Array<SessionEviction> = []
  for (const entry of reply) {
    if (!Array.isArray(entry)) return Either.left(corrupt(method))
    const reason: unknown = entry[0]
    if (!isReason(reason)) return Either.left(corrupt(method))
    const session = sessionFromFields(entry[1], method)
    if (Either.isLeft(session)) return Either.left(session.left)
    evicted.push({ session: session.right, reason })
  }
  return Either.right(evicted)
}

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
        tracedWithNow("SessionStore.create", (now) =>
          Effect.flatMap(crypto.hash(input.apiKey), (apiKeyHash) =>
            Effect.flatMap(crypto.randomToken(), (id) => {
              const method = "SessionStore.create"
              const session = newSession(input, id, apiKeyHash, now, options)
              const fields = sessionFields(session, method)
              if (Either.isLeft(fields)) return Either.left(fields.left)
              return client.run(method, Lua.createSession, [
                id,
                now,
                options.maxPerKey,
                options.maxSessions,
                apiKeyHash,
                sessionExpiresAt(session),
                ...fields.right
              ], (reply) => Either.map(evictions(reply, method), (evicted) => ({ session, evicted })))
            }))),

      // The hot path: one step for the clock, the HMGET with its reply read in the callback (see `Reply`),
      // and the touch script only when the interval has passed.
      get: (id) =>
        tracedWithNow("SessionStore.get", (now) =>
          client.call("SessionStore.get", (r) => r.hmget(P + Keys.session(id), ...SESSION_FIELDS), (stored) => {
            if (stored[0] === null || stored[0] === undefined) return none
            const decoded = sessionFromFields(stored, "SessionStore.get")
            if (Either.isLeft(decoded)) return Either.left(decoded.left)
            const session = decoded.right
            if (!isSessionLive(session, now)) return none
            const touched = touchSession(session, now, options)
            if (touched === undefined) return Either.right(Option.some(session))
            return client.run(
              "SessionStore.get",
              Lua.touchSession,
              [id, now, touched.idleExpiresAt, sessionExpiresAt(touched)],
              () => Either.right(Option.some(touched))
            )
          })),

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
