import { Clock, Effect, Option } from "effect"
import { newSession } from "../../internal/sessionRecord.ts"
import { type SessionRow, sessionRowOf, toSession } from "../../internal/sessionRow.ts"
import { traced } from "../../internal/traced.ts"
import type { ResolvedSessionStoreOptions } from "../../schema/options.ts"
import type { Crypto } from "../../services/Crypto.ts"
import type { SessionStore } from "../../services/SessionStore.ts"
import type { Channel } from "./binding.ts"

const optionalSession = (row: SessionRow | null, method: string) =>
  row === null ? Effect.succeed(Option.none()) : Effect.asSome(toSession(row, method))

/**
 * The Durable Object `SessionStore`: ids drawn and API keys hashed here; the
 * object enforces the per-key and global limits in one step of its own (see
 * `object/sessions.ts`), so they hold however many requests race.
 */
export const makeSessionStore = (
  objects: Channel,
  crypto: Crypto.Service,
  options: ResolvedSessionStoreOptions
): SessionStore.Service => {
  const limits = { maxPerKey: options.maxPerKey, maxSessions: options.maxSessions }
  const touch = { touchInterval: options.touchInterval, idleTtl: options.idleTtl }

  return {
    create: (input) =>
      Effect.gen(function*() {
        const method = "SessionStore.create"
        const apiKeyHash = yield* crypto.hash(input.apiKey)
        const id = yield* crypto.randomToken()
        const now = yield* Clock.currentTimeMillis
        const session = newSession(input, id, apiKeyHash, now, options)
        const evicted = yield* objects.callAt(method, now, (stub, ctx) => stub.createSession(ctx, sessionRowOf(session), limits))
        return {
          session,
          evicted: yield* Effect.forEach(evicted, ({ reason, row }) =>
            Effect.map(toSession(row, method), (victim) => ({ session: victim, reason })))
        }
      }).pipe(traced("SessionStore.create")),

    get: (id) => {
      const method = "SessionStore.get"
      return Effect.flatMap(
        objects.call(method, (stub, ctx) => stub.getSession(ctx, id, touch)),
        (row) => optionalSession(row, method)
      ).pipe(traced(method))
    },

    update: (id, patch) => {
      const method = "SessionStore.update"
      return Effect.flatMap(
        objects.call(method, (stub, ctx) =>
          stub.updateSession(ctx, id, {
            initialized: patch.initialized === undefined ? null : patch.initialized ? 1 : 0,
            protocolVersion: patch.protocolVersion ?? null,
            clientInfo: patch.clientInfo === undefined ? null : JSON.stringify(patch.clientInfo)
          })),
        (row) => optionalSession(row, method)
      )
    },

    delete: (id) => objects.call("SessionStore.delete", (stub, ctx) => stub.deleteSession(ctx, id)),

    listByApiKey: (apiKey) =>
      Effect.gen(function*() {
        const method = "SessionStore.listByApiKey"
        const apiKeyHash = yield* crypto.hash(apiKey)
        const rows = yield* objects.call(method, (stub, ctx) => stub.listSessions(ctx, apiKeyHash))
        return yield* Effect.forEach(rows, (row) => toSession(row, method))
      })
  }
}
