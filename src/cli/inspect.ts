/**
 * Grants and sessions, for the operator: list them by user or key and revoke
 * them. Revocation goes through the stores' own operations (`revokeGrant`
 * removes everything issued under a grant atomically; `SessionStore.delete`).
 * Lookups without an index (grants by subject, sessions by hash prefix) read
 * the records once.
 */
import { Clock, Effect, Stream } from "effect"
import type { Grant } from "../schema/token.ts"
import type { Session } from "../schema/session.ts"
import { SessionStore } from "../services/SessionStore.ts"
import { StoreMaintenance } from "../services/StoreMaintenance.ts"
import type { StoreError } from "../services/StoreError.ts"
import { TokenStore } from "../services/TokenStore.ts"
import { HASH_PREFIX } from "./stats.ts"

/** A grant and what is still issued under it. */
export interface GrantSummary {
  readonly grant: Grant
  readonly refreshTokens: number
  readonly accessTokens: number
  readonly providers: ReadonlyArray<string>
}

/** The live grants of a subject, oldest first, with what was issued under each. */
export const grantsOf = (subject: string): Effect.Effect<ReadonlyArray<GrantSummary>, StoreError, StoreMaintenance> =>
  Effect.gen(function*() {
    const maintenance = yield* StoreMaintenance
    const grants = new Map<string, Grant>()
    const refresh = new Map<string, number>()
    const access = new Map<string, number>()
    const providers = new Map<string, Array<string>>()
    const bump = (counts: Map<string, number>, id: string) => counts.set(id, (counts.get(id) ?? 0) + 1)
    yield* Stream.runForEach(maintenance.records(), (record) =>
      Effect.sync(() => {
        switch (record._tag) {
          case "Grant":
            if (record.record.subject === subject) grants.set(record.record.id, record.record)
            return
          case "RefreshToken":
            // Only the head of a chain can still be used.
            if (record.record.subject === subject && record.record.rotatedAt === undefined) bump(refresh, record.record.grantId)
            return
          case "AccessToken":
            if (record.record.subject === subject) bump(access, record.record.grantId)
            return
          case "ProviderTokens":
            providers.set(record.authorizationId, [...(providers.get(record.authorizationId) ?? []), record.providerId])
            return
        }
      }))
    return [...grants.values()]
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((grant) => ({
        grant,
        refreshTokens: refresh.get(grant.id) ?? 0,
        accessTokens: access.get(grant.id) ?? 0,
        providers: providers.get(grant.id) ?? []
      }))
  })

/** Revoke grants by id; the ids that existed. */
export const revokeGrants = (ids: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<string>, StoreError, TokenStore> =>
  Effect.flatMap(TokenStore, (tokens) =>
    Effect.map(
      Effect.forEach(ids, (id) => Effect.map(tokens.revokeGrant(id), (existed) => [id, existed] as const)),
      (results) => results.filter(([, existed]) => existed).map(([id]) => id)
    ))

/** How sessions are chosen: by the key itself, by a user's principal key, or by a prefix of the key's hash. */
export type SessionSelector =
  | { readonly _tag: "Key"; readonly key: string }
  | { readonly _tag: "HashPrefix"; readonly prefix: string }

/** The live sessions selected, least recently accessed first. */
export const sessionsOf = (selector: SessionSelector): Effect.Effect<ReadonlyArray<Session>, StoreError, SessionStore | StoreMaintenance> =>
  selector._tag === "Key"
    ? Effect.flatMap(SessionStore, (sessions) => sessions.listByApiKey(selector.key))
    : Effect.gen(function*() {
      const maintenance = yield* StoreMaintenance
      const now = yield* Clock.currentTimeMillis
      const found: Array<Session> = []
      yield* Stream.runForEach(maintenance.records(), (record) =>
        Effect.sync(() => {
          if (record._tag === "Session" && record.session.apiKeyHash.startsWith(selector.prefix)) found.push(record.session)
        }))
      return found
        .filter((session) => now < Math.min(session.idleExpiresAt, session.absoluteExpiresAt))
        .sort((a, b) => a.lastAccessedAt - b.lastAccessedAt)
    })

/** End sessions by id; the ids that existed. */
export const revokeSessions = (ids: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<string>, StoreError, SessionStore> =>
  Effect.flatMap(SessionStore, (sessions) =>
    Effect.map(
      Effect.forEach(ids, (id) => Effect.map(sessions.delete(id), (existed) => [id, existed] as const)),
      (results) => results.filter(([, existed]) => existed).map(([id]) => id)
    ))

/** A session's key as it may be shown: a prefix of its lookup hash. */
export const keyPrefixOf = (session: Session): string => session.apiKeyHash.slice(0, HASH_PREFIX)
