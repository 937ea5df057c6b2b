import { Clock, Effect, Option } from "effect"
import {
  mergeProviderTokens,
  openProviderTokens,
  resealProviderTokens,
  sealProviderTokens
} from "../../internal/providerTokenCodec.ts"
import type { ProviderTokenStoreOptions } from "../../schema/options.ts"
import { resolveProviderTokenStoreOptions } from "../../schema/options.ts"
import { Crypto } from "../../services/Crypto.ts"
import type { ProviderTokenStore } from "../../services/ProviderTokenStore.ts"
import { type Db, traced } from "./db.ts"
import type { Tables } from "./tables.ts"

interface SealedRow {
  readonly provider_id: string
  readonly envelope: string
  readonly expires_at: number
}

/**
 * The SQLite `ProviderTokenStore`: one envelope per (authorization, provider)
 * row, sealed by the shared codec and bound to that pair, beside its plaintext
 * expiry for the sweep. Lives in the same database as the `TokenStore`, so
 * revoking a grant deletes its provider tokens in the same transaction.
 */
export const makeProviderTokenStore = (db: Db, t: Tables, options: ProviderTokenStoreOptions = {}) =>
  Effect.gen(function*() {
    const crypto = yield* Crypto
    const { defaultTtl } = resolveProviderTokenStoreOptions(options)

    const getTokens = (authorizationId: string, providerId: string, method: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* db.all<{ readonly envelope: string }>(
          method,
          `SELECT envelope FROM ${t.providerTokens} WHERE authorization_id = ? AND provider_id = ? AND expires_at > ?`,
          [authorizationId, providerId, now]
        )
        return rows[0] === undefined
          ? Option.none()
          : Option.some(yield* openProviderTokens(crypto, authorizationId, providerId, rows[0].envelope))
      })

    const upsert = `INSERT INTO ${t.providerTokens} (authorization_id, provider_id, envelope, expires_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (authorization_id, provider_id) DO UPDATE SET envelope = excluded.envelope, expires_at = excluded.expires_at`

    const service: ProviderTokenStore.Service = {
      storeTokens: (authorizationId, providerId, tokens) =>
        Effect.gen(function*() {
          const method = "ProviderTokenStore.storeTokens"
          const previous = yield* getTokens(authorizationId, providerId, method)
          const now = yield* Clock.currentTimeMillis
          const merged = mergeProviderTokens(previous, tokens)
          const sealed = yield* sealProviderTokens(crypto, authorizationId, providerId, merged, now, defaultTtl)
          yield* db.run(method, upsert, [authorizationId, providerId, sealed.envelope, sealed.expiresAt])
        }).pipe(traced("ProviderTokenStore.storeTokens")),

      getTokens: (authorizationId, providerId) =>
        getTokens(authorizationId, providerId, "ProviderTokenStore.getTokens").pipe(
          traced("ProviderTokenStore.getTokens")
        ),

      deleteTokens: (authorizationId, providerId) =>
        Effect.map(
          db.run(
            "ProviderTokenStore.deleteTokens",
            `DELETE FROM ${t.providerTokens} WHERE authorization_id = ? AND provider_id = ?`,
            [authorizationId, providerId]
          ),
          (changes) => changes > 0
        ),

      getProviderIds: (authorizationId) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(
            db.all<{ readonly provider_id: string }>(
              "ProviderTokenStore.getProviderIds",
              `SELECT provider_id FROM ${t.providerTokens} WHERE authorization_id = ? AND expires_at > ? ORDER BY rowid`,
              [authorizationId, now]
            ),
            (rows) => rows.map((row) => row.provider_id)
          )),

      migrateTokens: (from, to) =>
        Effect.gen(function*() {
          const method = "ProviderTokenStore.migrateTokens"
          if (from === to) return
          const now = yield* Clock.currentTimeMillis
          const moving = yield* db.all<SealedRow>(
            method,
            `SELECT provider_id, envelope, expires_at FROM ${t.providerTokens} WHERE authorization_id = ? AND expires_at > ?`,
            [from, now]
          )
          if (moving.length === 0) return
          const resealed = yield* Effect.forEach(moving, (row) =>
            Effect.map(
              resealProviderTokens(crypto, from, to, row.provider_id, { envelope: row.envelope, expiresAt: row.expires_at }),
              (next) => [row, next] as const
            ))
          yield* db.write(
            method,
            Effect.forEach(resealed, ([row, next]) =>
              // Only what was read moves: a concurrent write under `from` stays there.
              Effect.flatMap(
                db.run(
                  method,
                  `DELETE FROM ${t.providerTokens} WHERE authorization_id = ? AND provider_id = ? AND envelope = ?`,
                  [from, row.provider_id, row.envelope]
                ),
                (deleted) =>
                  deleted === 0 ? Effect.void : db.run(method, upsert, [to, row.provider_id, next.envelope, next.expiresAt])
              ), { discard: true })
          )
        }).pipe(traced("ProviderTokenStore.migrateTokens")),

      deleteAll: (authorizationId) =>
        Effect.asVoid(
          db.run("ProviderTokenStore.deleteAll", `DELETE FROM ${t.providerTokens} WHERE authorization_id = ?`, [
            authorizationId
          ])
        )
    }

    return service
  })
